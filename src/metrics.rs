//! Prometheus metrics: what the service counts, and their text exposition.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Static strings: recording a call allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: &'static str,
    /// A configured caller's name, or anonymous / unauthenticated /
    /// certificate: bounded by the API keys file.
    pub caller: &'static str,
    pub code: &'static str,
}

/// Latency is kept per method and code only: per caller it would multiply
/// the histogram's series for little insight.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub method: &'static str,
    pub code: &'static str,
}

/// The canonical name of a status code, as Prometheus labels carry it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "Ok",
        Cancelled => "Cancelled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

/// Every metric the service exports. Cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    pub rpc_requests: Family<RpcLabels, Counter>,
    pub rpc_latency: Family<LatencyLabels, Histogram>,
    /// Confirmation links followed, by outcome (confirmed, TOKEN_INVALID, …).
    pub http_confirmations: Family<OutcomeLabels, Counter>,
    pub registrations: Counter,
    pub confirmations: Counter,
    /// Delivery attempts by outcome: sent, retry, dead_letter.
    pub deliveries: Family<OutcomeLabels, Counter>,
    /// Outbox rows by state, from a snapshot refreshed every METRICS_REFRESH.
    pub outbox: Family<StateLabels, Gauge>,
    /// Media objects the cleanup worker dealt with, by outcome (deleted,
    /// still_used, failed).
    pub media_deletions: Family<OutcomeLabels, Counter>,
    /// Registrations waiting for a password hashing thread, refreshed at each scrape.
    pub hash_queue: Gauge,
    /// Password hashes computed or checked (Register, CheckPassword), brought
    /// up to date at each scrape.
    password_hashes: Counter,
    password_hashes_sync: std::sync::Mutex<()>,
    /// Bumped whenever the outbox may have changed (mail queued here or
    /// announced by another instance, a batch delivered), so that the gauges
    /// are read from the database only when there is something new.
    outbox_changes: std::sync::atomic::AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Brings the password hash counter up to `total` (the hasher's count).
    pub fn set_password_hashes(&self, total: u64) {
        let _one_at_a_time = self
            .password_hashes_sync
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let seen = self.password_hashes.get();
        if total > seen {
            self.password_hashes.inc_by(total - seen);
        }
    }

    /// The outbox may have changed: the next gauge refresh reads it.
    pub fn outbox_changed(&self) {
        self.outbox_changes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("account");
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        // 0.5 ms to ~16 s: confirmations are sub-millisecond, registrations
        // tens of milliseconds, an overloaded service seconds.
        let rpc_latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let http_confirmations = Family::<OutcomeLabels, Counter>::default();
        let registrations = Counter::default();
        let confirmations = Counter::default();
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        let outbox = Family::<StateLabels, Gauge>::default();
        let media_deletions = Family::<OutcomeLabels, Counter>::default();
        let hash_queue = Gauge::default();
        let password_hashes = Counter::default();
        registry.register(
            "rpc_requests",
            "gRPC calls handled, by method, caller and status code",
            rpc_requests.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "gRPC call latency, by method and status code",
            rpc_latency.clone(),
        );
        registry.register(
            "http_confirmations",
            "Confirmation links followed, by outcome",
            http_confirmations.clone(),
        );
        registry.register(
            "registrations",
            "Accounts registered",
            registrations.clone(),
        );
        registry.register(
            "confirmations",
            "Confirmations that verified an account or found it verified",
            confirmations.clone(),
        );
        registry.register(
            "mail_deliveries",
            "Mail delivery attempts, by outcome (sent, retry, dead_letter)",
            deliveries.clone(),
        );
        registry.register(
            "outbox_messages",
            "Outbox messages, by state",
            outbox.clone(),
        );
        registry.register(
            "media_deletions",
            "Media objects queued for deletion and dealt with, by outcome",
            media_deletions.clone(),
        );
        registry.register(
            "hash_queue_length",
            "Registrations waiting for a password hashing thread",
            hash_queue.clone(),
        );
        registry.register(
            "password_hashes",
            "Password hashes computed or checked",
            password_hashes.clone(),
        );
        Metrics {
            registry,
            rpc_requests,
            rpc_latency,
            http_confirmations,
            registrations,
            confirmations,
            deliveries,
            outbox,
            media_deletions,
            hash_queue,
            password_hashes,
            password_hashes_sync: std::sync::Mutex::new(()),
            outbox_changes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn observe_rpc(
        &self,
        method: &'static str,
        caller: &'static str,
        code: tonic::Code,
        latency: Duration,
    ) {
        let code = code_name(code);
        self.rpc_requests
            .get_or_create(&RpcLabels {
                method,
                caller,
                code,
            })
            .inc();
        self.rpc_latency
            .get_or_create(&LatencyLabels { method, code })
            .observe(latency.as_secs_f64());
    }

    pub fn count_http_confirmation(&self, outcome: &str) {
        self.http_confirmations
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn count_delivery(&self, outcome: &str) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn count_media_deletion(&self, outcome: &str) {
        self.media_deletions
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn set_outbox(&self, state: &str, count: i64) {
        self.outbox
            .get_or_create(&StateLabels {
                state: state.to_owned(),
            })
            .set(count);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Keeps the outbox gauges current from one aggregate query every `every`
/// while the outbox changes, and at least every `idle_every` while it does
/// not (an idle instance leaves the database alone), until `stop`. A scrape
/// reads the last snapshot and never touches the database, so scraping
/// often costs nothing.
pub async fn refresh_outbox_gauges(
    storage: std::sync::Arc<dyn crate::storage::Storage>,
    metrics: std::sync::Arc<Metrics>,
    every: Duration,
    idle_every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = None;
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let changes = metrics
            .outbox_changes
            .load(std::sync::atomic::Ordering::Relaxed);
        if seen == Some(changes) && last.elapsed() < idle_every {
            continue;
        }
        seen = Some(changes);
        last = tokio::time::Instant::now();
        match storage.outbox_status(chrono::Utc::now()).await {
            Ok(outbox) => {
                metrics.set_outbox("pending", outbox.pending - outbox.in_flight);
                metrics.set_outbox("in_flight", outbox.in_flight);
                metrics.set_outbox("sent", outbox.sent);
                metrics.set_outbox("failed", outbox.failed);
            }
            Err(e) => tracing::warn!(
                error = %crate::telemetry::error_chain(&e),
                "cannot read the outbox for metrics"
            ),
        }
    }
}
