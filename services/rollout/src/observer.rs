//! The canary's samples, read from `telemetry.raw` through `selfheal_observe`'s tap.
//!
//! [`KafkaErrorRates`] (the name is older than its samples) runs a consumer in a group of its
//! own from the latest offset and keeps a bounded window of recent requests per service:
//! version, route, failure, latency and fingerprint of each.

use std::sync::Arc;

use async_trait::async_trait;
use selfheal_core::{KafkaArgs, Shutdown};
use selfheal_events::Codec;
use selfheal_observe::{Sample, TelemetryTap};

use crate::analysis::CanarySamples;

/// [`CanarySamples`] from a consumer of `telemetry.raw`.
#[derive(Clone, Debug)]
pub struct KafkaErrorRates {
    tap: TelemetryTap,
}

impl KafkaErrorRates {
    /// Starts consuming `topic` (full, prefixed name) until `shutdown`; undecodable records are skipped.
    pub fn start(
        kafka: &KafkaArgs,
        codec: Arc<Codec>,
        topic: &str,
        shutdown: Shutdown,
    ) -> Result<Self, selfheal_core::kafka::KafkaError> {
        let tap = TelemetryTap::start(kafka, codec, topic, "selfheal-rollout-observer", shutdown)?;
        Ok(KafkaErrorRates { tap })
    }

    /// The window this observer fills.
    pub fn tap(&self) -> &TelemetryTap {
        &self.tap
    }
}

#[async_trait]
impl CanarySamples for KafkaErrorRates {
    async fn sample(&self, service: &str, version: &str, since_ms: i64) -> Sample {
        CanarySamples::sample(&self.tap, service, version, since_ms).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use selfheal_events::{SignalKind, SpanStatus};

    use super::*;

    #[tokio::test]
    async fn samples_server_spans_per_version_since() {
        let failing = selfheal_events::examples::telemetry_event();
        let mut ok = failing.clone();
        ok.exception = None;
        ok.status = SpanStatus::Unset;
        ok.attributes.insert("http.response.status_code".into(), "200".into());
        let mut canary = ok.clone();
        canary.service_version = Some("e4f5a6b".into());
        let mut log_record = failing.clone();
        log_record.kind = SignalKind::Log;
        let tap = TelemetryTap::new();
        for e in [&failing, &ok, &canary, &log_record] {
            tap.record(e);
        }
        let t = failing.timestamp_ms;
        let stable = CanarySamples::sample(&tap, "pricing-api", "a1b2c3d", t).await;
        assert_eq!((stable.errors, stable.requests), (1, 2));
        let c = CanarySamples::sample(&tap, "pricing-api", "e4f5a6b", t).await;
        assert_eq!((c.errors, c.requests), (0, 1));
        assert_eq!(
            CanarySamples::sample(&tap, "pricing-api", "a1b2c3d", t + 1).await,
            Sample::default()
        );
    }
}
