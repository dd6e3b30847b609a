//! `GET /metrics`: Prometheus text exposition (prometheus-client crate).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// The daemon's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    bytes: Family<ProtocolLabel, Counter>,
    uploaded: Counter,
    failures: Family<KindLabel, Counter>,
    active: Gauge,
    queued: Gauge,
    throughput: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("dlm");
        let bytes = Family::<ProtocolLabel, Counter>::default();
        let uploaded = Counter::default();
        let failures = Family::<KindLabel, Counter>::default();
        let active = Gauge::default();
        let queued = Gauge::default();
        let throughput = Gauge::default();
        registry.register(
            "downloaded_bytes",
            "Bytes downloaded, by protocol",
            bytes.clone(),
        );
        registry.register(
            "uploaded_bytes",
            "Payload bytes uploaded to peers (swarms)",
            uploaded.clone(),
        );
        registry.register(
            "job_failures",
            "Jobs failed, by error kind",
            failures.clone(),
        );
        registry.register("jobs_active", "Jobs downloading now", active.clone());
        registry.register("jobs_queued", "Jobs waiting for a worker", queued.clone());
        registry.register(
            "throughput_bytes_per_second",
            "Receive rate of all running jobs, bytes/s",
            throughput.clone(),
        );
        Self {
            registry,
            bytes,
            uploaded,
            failures,
            active,
            queued,
            throughput,
        }
    }

    pub(crate) fn add_bytes(&self, protocol: &str, n: u64) {
        self.bytes
            .get_or_create(&ProtocolLabel {
                protocol: protocol.to_string(),
            })
            .inc_by(n);
    }

    pub(crate) fn add_uploaded(&self, n: u64) {
        self.uploaded.inc_by(n);
    }

    pub(crate) fn failed(&self, kind: &str) {
        self.failures
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// The text exposition, with the gauges set from `(active, queued, bytes/s)`.
    pub(crate) fn render(&self, (active, queued, rate): (u64, u64, u64)) -> String {
        self.active.set(active as i64);
        self.queued.set(queued as i64);
        self.throughput.set(rate as i64);
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
