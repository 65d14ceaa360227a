//! The runner: consumes a stage's input topic and applies the delivery rules around
//! [`Stage::process`]. See the crate documentation for the rules.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::DeliveryFuture;
use selfheal_events::{Codec, CodecError, Record};
use tokio::sync::mpsc;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::{KafkaArgs, RuntimeArgs};
use crate::dead_letter::{self, DeadLetterKind, Original};
use crate::headers;
use crate::http::Health;
use crate::kafka::{self, LagContext};
use crate::metrics::Metrics;
use crate::publisher::{PublishError, Publisher};
use crate::shutdown::Shutdown;
use crate::stage::{RecordContext, Stage, StageError};

/// Why the runner stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// Kafka could not be configured or reached.
    #[error(transparent)]
    Kafka(#[from] kafka::KafkaError),
    /// Too many records in a row could not be processed: something is systematically wrong.
    #[error("stage {stage} stopped after {count} dead letters in a row (last: {last_error})")]
    TooManyDeadLetters {
        /// The stage.
        stage: String,
        /// How many in a row.
        count: u32,
        /// The last error.
        last_error: String,
    },
    /// The stage reported a fatal error.
    #[error("stage {stage} failed fatally: {reason}")]
    Fatal {
        /// The stage.
        stage: String,
        /// Why.
        reason: String,
    },
}

/// What a run did, for tests and the shutdown log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Records whose offsets were stored.
    pub records: u64,
    /// Outputs produced.
    pub outputs: u64,
    /// Records dead-lettered.
    pub dead_letters: u64,
    /// Transient failures retried.
    pub retries: u64,
}

/// Topics and group of one runner.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Input topic.
    pub input: String,
    /// Output topic.
    pub output: String,
    /// Dead-letter topic.
    pub dead_letter: String,
}

impl Topics {
    /// The standard topics of a stage: its input and output records' topics, `<stage>.dlq`.
    pub fn for_stage<S: Stage>(stage: &S, kafka: &KafkaArgs) -> Self {
        Topics {
            input: kafka.topic(S::Input::TOPIC),
            output: kafka.topic(S::Output::TOPIC),
            dead_letter: kafka.topic(&selfheal_events::dead_letter_topic(stage.name())),
        }
    }
}

/// Records decoded ahead of the stage, waiting for it in a bounded queue.
const DECODE_AHEAD: usize = 256;

/// Records processed whose outputs may still be in flight before the runner waits for the
/// oldest: enough to keep a producer's batches full, few enough that a restart after a crash
/// redoes little. A record counts once however many outputs it has.
const MAX_IN_FLIGHT: usize = 4096;

/// How often the offsets of finished records are stored when nothing else forces it (the
/// commit itself runs every `auto.commit.interval.ms`).
const STORE_EVERY: Duration = Duration::from_millis(100);

/// Runs one stage against Kafka.
///
/// Three things overlap (as rust-arroyo's run-task strategies and Vector's Kafka sink do):
/// a task polls and decodes records ahead of the stage; the stage processes one record at a
/// time, in order, and hands its outputs to the producer without waiting; the delivery
/// reports are awaited together, oldest first, and a record's offset is stored only once
/// every output of it and of every record before it on its partition is acknowledged.
pub struct Runner<S: Stage> {
    stage: Arc<S>,
    consumer: Arc<StreamConsumer<LagContext>>,
    publisher: Publisher,
    topics: Topics,
    runtime: RuntimeArgs,
    metrics: Arc<Metrics>,
    health: Health,
}

/// How one record ended.
enum Finished {
    /// Processed; its outputs are with the producer.
    Done {
        partition: i32,
        offset: i64,
        deliveries: Vec<DeliveryFuture>,
    },
    /// Sent to the dead-letter topic (delivery awaited: dead letters are rare).
    DeadLettered { partition: i32, offset: i64, error: String },
    /// Shutdown or grace period ran out before the record finished: do not store its offset.
    Abandoned,
}

/// A record read and decoded ahead of the stage.
struct Polled<I> {
    /// The record as consumed: its position, and its bytes and headers for a dead letter.
    msg: OwnedMessage,
    ctx: RecordContext,
    /// The decoded value, or why it can never decode (transient failures are retried first).
    input: Result<I, CodecError>,
}

/// A processed record whose outputs may not all be acknowledged yet.
struct InFlight {
    topic: String,
    partition: i32,
    offset: i64,
    outputs: u64,
    deliveries: Vec<DeliveryFuture>,
}

/// Processed records in the order they were consumed, and the offsets ready to store.
#[derive(Default)]
struct Window {
    records: VecDeque<InFlight>,
    /// The next offset to store per (topic, partition): every record before it is finished.
    ready: HashMap<(String, i32), i64>,
    last_store: Option<Instant>,
    /// Outputs of the oldest record whose delivery failed: to be produced again.
    failed: Vec<(OwnedMessage, String)>,
    /// A delivery report that will never come (the producer was closed).
    lost: bool,
}

impl Window {
    fn len(&self) -> usize {
        self.records.len()
    }

    /// Pops every record at the front whose outputs are all acknowledged, without waiting.
    /// A failed delivery is left in `failed` for the runner to produce again.
    fn settle(&mut self, summary: &mut RunSummary, out: &prometheus::IntCounter) {
        while let Some(front) = self.records.front_mut() {
            if !self.failed.is_empty() || self.lost {
                return;
            }
            while let Some(delivery) = front.deliveries.last_mut() {
                let Some(report) = delivery.now_or_never() else {
                    return;
                };
                front.deliveries.pop();
                match report {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, msg))) => self.failed.push((msg, e.to_string())),
                    Err(_) => self.lost = true,
                }
            }
            if !self.failed.is_empty() || self.lost {
                return;
            }
            if let Some(done) = self.records.pop_front() {
                summary.records += 1;
                summary.outputs += done.outputs;
                out.inc_by(done.outputs);
                self.ready.insert((done.topic, done.partition), done.offset);
            }
        }
    }

    /// Waits for the oldest record's next delivery report and takes it in.
    async fn wait_oldest(&mut self) {
        let Some(front) = self.records.front_mut() else {
            return;
        };
        let Some(delivery) = front.deliveries.last_mut() else {
            return;
        };
        let report = delivery.await;
        front.deliveries.pop();
        match report {
            Ok(Ok(_)) => {}
            Ok(Err((e, msg))) => self.failed.push((msg, e.to_string())),
            Err(_) => self.lost = true,
        }
    }

    /// Stores the offsets of finished records (librdkafka stores offset + 1).
    fn store(&mut self, consumer: &StreamConsumer<LagContext>, stage: &str) {
        for ((topic, partition), offset) in self.ready.drain() {
            if let Err(e) = consumer.store_offset(&topic, partition, offset) {
                // A partition revoked mid-record cannot be stored; its new owner redoes the record.
                tracing::warn!(stage, %topic, partition, error = %e, "cannot store offset (partition revoked?)");
            }
        }
        self.last_store = Some(Instant::now());
    }

    /// Offsets are stored every `STORE_EVERY` while records flow, and at once when the window
    /// empties (the stream paused: nothing will come to trigger a later store).
    fn store_due(&self) -> bool {
        !self.ready.is_empty()
            && (self.records.is_empty() || self.last_store.is_none_or(|t| t.elapsed() >= STORE_EVERY))
    }
}

impl<S: Stage> Runner<S> {
    /// A runner for `stage`, consuming `topics.input` in group `group_id`.
    #[allow(clippy::too_many_arguments)] // each is a distinct collaborator; `service::prepare_stage` is the usual entry
    pub fn new(
        stage: Arc<S>,
        kafka_args: &KafkaArgs,
        group_id: &str,
        topics: Topics,
        publisher: Publisher,
        runtime: RuntimeArgs,
        metrics: Arc<Metrics>,
        health: Health,
    ) -> Result<Self, RunnerError> {
        let ctx = LagContext {
            stage: stage.name().to_string(),
            metrics: metrics.clone(),
        };
        // Statistics feed the consumer-lag gauge through LagContext; other consumers leave
        // them off (librdkafka's default context would log every statistics report).
        let consumer: StreamConsumer<LagContext> = kafka::consumer_config(kafka_args, group_id)?
            .set("statistics.interval.ms", "5000")
            .create_with_context(ctx)
            .map_err(|e| kafka::KafkaError::Config(e.to_string()))?;
        Ok(Runner {
            stage,
            consumer: Arc::new(consumer),
            publisher,
            topics,
            runtime,
            metrics,
            health,
        })
    }

    fn codec(&self) -> &Arc<Codec> {
        self.publisher.codec()
    }

    /// Consumes until shutdown (returns the summary) or until the stage cannot go on.
    pub async fn run(self, shutdown: Shutdown) -> Result<RunSummary, RunnerError> {
        let name = self.stage.name();
        self.consumer
            .subscribe(&[self.topics.input.as_str()])
            .map_err(|e| kafka::KafkaError::Config(e.to_string()))?;
        self.health.set_ready(true);
        tracing::info!(stage = name, input = %self.topics.input, output = %self.topics.output, "stage running");
        let mut summary = RunSummary::default();
        let decode_retries = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = mpsc::channel(DECODE_AHEAD);
        let poller = tokio::spawn(poll_ahead::<S::Input>(
            self.consumer.clone(),
            self.codec().clone(),
            tx,
            shutdown.clone(),
            self.runtime.clone(),
            self.metrics.clone(),
            name,
            decode_retries.clone(),
        ));
        let processing = self.metrics.processing.with_label_values(&[name]);
        let records_out = self.metrics.records_out.with_label_values(&[name]);
        let mut window = Window::default();
        let mut in_a_row = 0u32;
        let result = loop {
            // Take in what was acknowledged, produce again what failed, store offsets when
            // due; when the window is full, wait for its oldest record.
            let full = window.len() >= MAX_IN_FLIGHT;
            if self
                .settle(&mut window, &mut summary, &records_out, &shutdown, full)
                .await
                .is_err()
            {
                break Ok(());
            }
            let polled = tokio::select! {
                biased;
                _ = shutdown.wait() => break Ok(()),
                p = rx.recv() => match p {
                    Some(p) => p,
                    None => break Ok(()), // the poller stopped: shutdown
                },
                // Nothing to read: take in delivery reports meanwhile.
                _ = window.wait_oldest(), if window.len() > 0 => continue,
            };
            let started = Instant::now();
            let (finished, topic) = self.handle(polled, &shutdown, &mut summary).await;
            processing.observe(started.elapsed().as_secs_f64());
            let (partition, offset, deliveries, dead) = match finished {
                Finished::Abandoned => break Ok(()),
                Finished::Done {
                    partition,
                    offset,
                    deliveries,
                } => {
                    in_a_row = 0;
                    (partition, offset, deliveries, None)
                }
                Finished::DeadLettered {
                    partition,
                    offset,
                    error,
                } => {
                    in_a_row += 1;
                    summary.dead_letters += 1;
                    (partition, offset, Vec::new(), Some(error))
                }
            };
            window.records.push_back(InFlight {
                topic,
                partition,
                offset,
                outputs: deliveries.len() as u64,
                deliveries,
            });
            if let Some(error) = dead
                && in_a_row >= self.runtime.max_consecutive_dead_letters
            {
                break Err(RunnerError::TooManyDeadLetters {
                    stage: name.to_string(),
                    count: in_a_row,
                    last_error: error,
                });
            }
        };
        self.health.set_ready(false);
        // Stop reading ahead: what was read but not processed is not stored, so it is redone.
        drop(rx);
        poller.abort();
        let _ = poller.await;
        // Finish what is in flight, bounded by the grace period; then store, commit, flush.
        let drained = tokio::time::timeout(self.runtime.grace_period(), async {
            while window.len() > 0 {
                if self
                    .settle(&mut window, &mut summary, &records_out, &shutdown, true)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })
        .await;
        if drained.is_err() || window.len() > 0 {
            tracing::warn!(
                stage = name,
                in_flight = window.len(),
                "records with unacknowledged outputs at shutdown are not stored; they will be redone"
            );
        }
        window.store(&self.consumer, name);
        summary.retries += decode_retries.load(Ordering::Relaxed);
        // Commit what is stored, then flush: both bounded so SIGTERM exits within the grace period.
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(stage = name, error = %e, "final commit had nothing to commit");
        }
        self.publisher.flush(Duration::from_secs(5));
        tracing::info!(
            stage = name,
            records = summary.records,
            outputs = summary.outputs,
            dead_letters = summary.dead_letters,
            retries = summary.retries,
            "stage stopped"
        );
        result.map(|_| summary)
    }

    /// Settles the window: pops acknowledged records, produces failed outputs again (a
    /// record is never skipped), stores offsets when due. With `wait`, returns only once the
    /// oldest record is finished (or the window is empty). `Err` when the run must stop: shut
    /// down while retrying, or a delivery report that will never come.
    async fn settle(
        &self,
        window: &mut Window,
        summary: &mut RunSummary,
        records_out: &prometheus::IntCounter,
        shutdown: &Shutdown,
        wait: bool,
    ) -> Result<(), ()> {
        let name = self.stage.name();
        let target = if wait {
            window.len().saturating_sub(1)
        } else {
            usize::MAX
        };
        loop {
            window.settle(summary, records_out);
            if window.lost {
                tracing::error!(
                    stage = name,
                    "a delivery report was lost (producer closed); stopping without storing"
                );
                return Err(());
            }
            for (msg, error) in std::mem::take(&mut window.failed) {
                // The producer gave up after `message.timeout.ms`: produce it again, so the
                // record is finished only once this output is acknowledged.
                tracing::warn!(stage = name, topic = msg.topic(), %error, "output not delivered; producing it again");
                self.metrics.retries.with_label_values(&[name]).inc();
                summary.retries += 1;
                let mut backoff = self.runtime.backoff();
                let again = loop {
                    match self.publisher.resend(&msg).await {
                        Ok(d) => break d,
                        Err(e) => {
                            if !self.retry_wait(&e.to_string(), &mut backoff, shutdown, summary).await {
                                return Err(());
                            }
                        }
                    }
                };
                if let Some(front) = window.records.front_mut() {
                    front.deliveries.push(again);
                }
            }
            if window.store_due() {
                window.store(&self.consumer, name);
            }
            if window.len() <= target {
                return Ok(());
            }
            window.wait_oldest().await;
        }
    }

    async fn handle(
        &self,
        polled: Polled<S::Input>,
        shutdown: &Shutdown,
        summary: &mut RunSummary,
    ) -> (Finished, String) {
        let name = self.stage.name();
        let Polled { msg, mut ctx, input } = polled;
        let (partition, offset) = (ctx.partition, ctx.offset);
        let span = tracing::info_span!("process", stage = name, topic = %ctx.topic, partition, offset);
        let _ = span.set_parent(headers::extract_context(&ctx.headers));

        let input = match input {
            Ok(v) => v,
            Err(e) => {
                let kind = match e {
                    CodecError::TooLarge(_) => DeadLetterKind::TooLarge,
                    _ => DeadLetterKind::Decode,
                };
                let finished = self.dead_letter(&msg, kind, &e.to_string(), shutdown, summary).await;
                return (finished, ctx.topic);
            }
        };

        // Process and hand the outputs to the producer, retrying transient failures; the whole
        // record is redone so outputs are complete (a duplicate output is recognised
        // downstream by its key). Their delivery is awaited with the window, not here.
        let mut backoff = self.runtime.backoff();
        loop {
            let grace = async {
                shutdown.wait().await;
                tokio::time::sleep(self.runtime.grace_period()).await;
            };
            let work = async {
                let outputs = self.stage.process(input.clone(), &ctx).await?;
                let trace = headers::outgoing_trace_headers(&ctx.headers);
                let mut deliveries = Vec::with_capacity(outputs.len());
                for out in &outputs {
                    let delivery =
                        self.publisher
                            .enqueue(&self.topics.output, out, &trace)
                            .await
                            .map_err(|e| match e {
                                PublishError::Transient(t) => StageError::Transient(t),
                                PublishError::Encode(t) => StageError::Invalid(format!("output does not encode: {t}")),
                            })?;
                    deliveries.push(delivery);
                }
                Ok::<Vec<DeliveryFuture>, StageError>(deliveries)
            }
            .instrument(span.clone());
            let result = tokio::select! {
                r = work => Some(r),
                _ = grace => None,
            };
            let Some(result) = result else {
                tracing::warn!(
                    stage = name,
                    offset,
                    "grace period over: abandoning the record in hand; it will be redone"
                );
                return (Finished::Abandoned, ctx.topic);
            };
            match result {
                Ok(deliveries) => {
                    return (
                        Finished::Done {
                            partition,
                            offset,
                            deliveries,
                        },
                        ctx.topic,
                    );
                }
                Err(StageError::Invalid(reason)) => {
                    let finished = self
                        .dead_letter(&msg, DeadLetterKind::Invalid, &reason, shutdown, summary)
                        .await;
                    return (finished, ctx.topic);
                }
                Err(StageError::Transient(reason)) => {
                    ctx.attempt += 1;
                    if !self.retry_wait(&reason, &mut backoff, shutdown, summary).await {
                        return (Finished::Abandoned, ctx.topic);
                    }
                }
                Err(StageError::Fatal(reason)) => {
                    tracing::error!(stage = name, %reason, "fatal stage error");
                    shutdown.trigger();
                    return (Finished::Abandoned, ctx.topic);
                }
            }
        }
    }

    /// Sleeps before a retry; false when shutdown came first.
    async fn retry_wait(
        &self,
        reason: &str,
        backoff: &mut crate::backoff::Backoff,
        shutdown: &Shutdown,
        summary: &mut RunSummary,
    ) -> bool {
        let name = self.stage.name();
        self.metrics.retries.with_label_values(&[name]).inc();
        summary.retries += 1;
        let delay = backoff.next_delay();
        tracing::warn!(
            stage = name,
            attempt = backoff.attempts(),
            "{reason}; retrying in {:.1}s",
            delay.as_secs_f64()
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = shutdown.wait() => false,
        }
    }

    async fn dead_letter(
        &self,
        msg: &OwnedMessage,
        kind: DeadLetterKind,
        error: &str,
        shutdown: &Shutdown,
        summary: &mut RunSummary,
    ) -> Finished {
        let name = self.stage.name();
        let original_headers: Vec<(String, Option<Vec<u8>>)> = msg
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        let original = Original {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key(),
            payload: msg.payload().unwrap_or_default(),
            headers: original_headers,
        };
        tracing::warn!(stage = name, topic = original.topic, partition = original.partition, offset = original.offset,
            kind = kind.as_str(), %error, dlq = %self.topics.dead_letter, "dead-lettering record");
        let mut backoff = self.runtime.backoff();
        loop {
            match dead_letter::send(&self.publisher, &self.topics.dead_letter, name, kind, error, &original).await {
                Ok(()) => {
                    self.metrics
                        .dead_letters
                        .with_label_values(&[name, kind.as_str()])
                        .inc();
                    return Finished::DeadLettered {
                        partition: msg.partition(),
                        offset: msg.offset(),
                        error: error.to_string(),
                    };
                }
                Err(e) => {
                    // Never lose a record: if the dead-letter topic is unreachable, wait for it.
                    if !self
                        .retry_wait(
                            &format!("dead letter not delivered: {e}"),
                            &mut backoff,
                            shutdown,
                            summary,
                        )
                        .await
                    {
                        return Finished::Abandoned;
                    }
                }
            }
        }
    }
}

/// Reads and decodes records ahead of the stage, into a bounded queue (so a slow stage stops
/// the reading). A registry that is down is retried here, in order: no record is skipped.
#[allow(clippy::too_many_arguments)] // the pieces of the runner the task needs, passed once
async fn poll_ahead<I: Record>(
    consumer: Arc<StreamConsumer<LagContext>>,
    codec: Arc<Codec>,
    tx: mpsc::Sender<Polled<I>>,
    shutdown: Shutdown,
    runtime: RuntimeArgs,
    metrics: Arc<Metrics>,
    stage: &'static str,
    retries: Arc<AtomicU64>,
) {
    let records_in = metrics.records_in.with_label_values(&[stage]);
    let retried = metrics.retries.with_label_values(&[stage]);
    loop {
        let msg = tokio::select! {
            biased;
            _ = shutdown.wait() => return,
            _ = tx.closed() => return,
            m = consumer.recv() => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                // Broker gone, rebalance in progress…: librdkafka reconnects by itself.
                tracing::warn!(stage, error = %e, "consume error; the client keeps reconnecting");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        records_in.inc();
        let ctx = RecordContext {
            topic: msg.topic().to_string(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            headers: headers::to_map(msg.headers()),
            attempt: 0,
        };
        let owned = msg.detach();
        drop(msg);
        let msg = owned;
        let mut backoff = runtime.backoff();
        let input = loop {
            match codec.decode::<I>(msg.payload().unwrap_or_default()).await {
                Err(e) if e.is_transient() => {
                    retried.inc();
                    retries.fetch_add(1, Ordering::Relaxed);
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        stage,
                        attempt = backoff.attempts(),
                        "{e}; retrying in {:.1}s",
                        delay.as_secs_f64()
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.wait() => return,
                        _ = tx.closed() => return,
                    }
                }
                other => break other,
            }
        };
        if tx.send(Polled { msg, ctx, input }).await.is_err() {
            return;
        }
    }
}

/// Headers as a map, for tests that inspect produced records.
pub fn header_map(msg: &impl Message) -> HashMap<String, String> {
    let mut map = HashMap::new();
    if let Some(h) = msg.headers() {
        for i in 0..h.count() {
            let header = h.get(i);
            if let Some(v) = header.value.and_then(|v| std::str::from_utf8(v).ok()) {
                map.insert(header.key.to_string(), v.to_string());
            }
        }
    }
    map
}
