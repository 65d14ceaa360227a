//! The runner: consumes a stage's input topic and applies the delivery rules around
//! [`Stage::process`]. See the crate documentation for the rules.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use selfheal_events::{Codec, CodecError, Record};
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

/// Runs one stage against Kafka.
pub struct Runner<S: Stage> {
    stage: Arc<S>,
    consumer: StreamConsumer<LagContext>,
    publisher: Publisher,
    topics: Topics,
    runtime: RuntimeArgs,
    metrics: Arc<Metrics>,
    health: Health,
}

/// How one record ended.
enum Finished {
    Done {
        outputs: u64,
    },
    DeadLettered(String),
    /// Shutdown or grace period ran out before the record finished: do not store its offset.
    Abandoned,
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
            consumer,
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
        let mut in_a_row = 0u32;
        let result = loop {
            let msg = tokio::select! {
                biased;
                _ = shutdown.wait() => break Ok(()),
                m = self.consumer.recv() => m,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    // Broker gone, rebalance in progress…: librdkafka reconnects by itself.
                    tracing::warn!(stage = name, error = %e, "consume error; the client keeps reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            self.metrics.records_in.with_label_values(&[name]).inc();
            let started = Instant::now();
            let finished = self.handle(&msg, &shutdown, &mut summary).await;
            self.metrics
                .processing
                .with_label_values(&[name])
                .observe(started.elapsed().as_secs_f64());
            match finished {
                Finished::Abandoned => break Ok(()),
                Finished::Done { outputs } => {
                    in_a_row = 0;
                    summary.outputs += outputs;
                }
                Finished::DeadLettered(error) => {
                    in_a_row += 1;
                    summary.dead_letters += 1;
                    if in_a_row >= self.runtime.max_consecutive_dead_letters {
                        self.store(&msg);
                        summary.records += 1;
                        break Err(RunnerError::TooManyDeadLetters {
                            stage: name.to_string(),
                            count: in_a_row,
                            last_error: error,
                        });
                    }
                }
            }
            self.store(&msg);
            summary.records += 1;
        };
        self.health.set_ready(false);
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

    /// Stores the offset of a finished record (librdkafka stores offset + 1 from a message).
    fn store(&self, msg: &BorrowedMessage<'_>) {
        if let Err(e) = self.consumer.store_offset_from_message(msg) {
            // A partition revoked mid-record cannot be stored; its new owner redoes the record.
            tracing::warn!(stage = self.stage.name(), error = %e, "cannot store offset (partition revoked?)");
        }
    }

    async fn handle(&self, msg: &BorrowedMessage<'_>, shutdown: &Shutdown, summary: &mut RunSummary) -> Finished {
        let name = self.stage.name();
        let payload = msg.payload().unwrap_or_default();
        let hdrs = headers::to_map(msg.headers());
        let mut ctx = RecordContext {
            topic: msg.topic().to_string(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            headers: hdrs,
            attempt: 0,
        };
        let span = tracing::info_span!("process", stage = name, topic = %ctx.topic, partition = ctx.partition, offset = ctx.offset);
        let _ = span.set_parent(headers::extract_context(&ctx.headers));

        let mut backoff = self.runtime.backoff();
        // Decode, retrying while the registry is down.
        let input = loop {
            match self.codec().decode::<S::Input>(payload).await {
                Ok(v) => break v,
                Err(e) if e.is_transient() => {
                    if !self.retry_wait(&e.to_string(), &mut backoff, shutdown, summary).await {
                        return Finished::Abandoned;
                    }
                }
                Err(e) => {
                    let kind = match e {
                        CodecError::TooLarge(_) => DeadLetterKind::TooLarge,
                        _ => DeadLetterKind::Decode,
                    };
                    return self.dead_letter(msg, kind, &e.to_string(), shutdown, summary).await;
                }
            }
        };

        // Process and publish, retrying transient failures; the whole record is redone so
        // outputs are complete (a duplicate output is recognised downstream by its key).
        loop {
            let grace = async {
                shutdown.wait().await;
                tokio::time::sleep(self.runtime.grace_period()).await;
            };
            let work = async {
                let outputs = self.stage.process(input.clone(), &ctx).await?;
                let trace = headers::outgoing_trace_headers(&ctx.headers);
                let mut n = 0u64;
                for out in &outputs {
                    self.publisher
                        .publish(&self.topics.output, out, &trace)
                        .await
                        .map_err(|e| match e {
                            PublishError::Transient(t) => StageError::Transient(t),
                            PublishError::Encode(t) => StageError::Invalid(format!("output does not encode: {t}")),
                        })?;
                    n += 1;
                }
                Ok::<u64, StageError>(n)
            }
            .instrument(span.clone());
            let result = tokio::select! {
                r = work => r,
                _ = grace => {
                    tracing::warn!(stage = name, offset = ctx.offset, "grace period over: abandoning the record in hand; it will be redone");
                    return Finished::Abandoned;
                }
            };
            match result {
                Ok(n) => {
                    self.metrics.records_out.with_label_values(&[name]).inc_by(n);
                    return Finished::Done { outputs: n };
                }
                Err(StageError::Invalid(reason)) => {
                    return self
                        .dead_letter(msg, DeadLetterKind::Invalid, &reason, shutdown, summary)
                        .await;
                }
                Err(StageError::Transient(reason)) => {
                    ctx.attempt += 1;
                    if !self.retry_wait(&reason, &mut backoff, shutdown, summary).await {
                        return Finished::Abandoned;
                    }
                }
                Err(StageError::Fatal(reason)) => {
                    tracing::error!(stage = name, %reason, "fatal stage error");
                    shutdown.trigger();
                    return Finished::Abandoned;
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
        msg: &BorrowedMessage<'_>,
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
                    return Finished::DeadLettered(error.to_string());
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
