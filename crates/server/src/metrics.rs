//! Prometheus metrics (`/metrics`). Labels hold route templates and codes, never ids, personal
//! data or secrets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    pub message_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram>,
    pub sign_in_failures: Counter,
    pub sign_in_throttled: Counter,
    pub csrf_rejections: Counter,
    /// Copied from the doorbell's own atomic counters at each scrape (cumulative since start).
    pub heartbeat_datagrams: Family<ReasonLabels, Gauge>,
    /// Printers' sealed bodies refused, by protocol code (never their content).
    pub sealed_refused: Family<CodeLabels, Counter>,
    pub sealed_accepted: Family<TypeLabels, Counter>,
    /// Printers' session bodies (protocol §2.8) opened, by message type.
    pub session_accepted: Family<TypeLabels, Counter>,
    /// Check-ins by outcome: stored, duplicate, refused_<code>.
    pub check_ins: Family<ReasonLabels, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("printfleet");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        let sign_in_failures = Counter::default();
        let sign_in_throttled = Counter::default();
        let csrf_rejections = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_duration.clone(),
        );
        registry.register(
            "sign_in_failures",
            "Failed sign-ins",
            sign_in_failures.clone(),
        );
        registry.register(
            "sign_in_throttled",
            "Sign-ins refused while delayed",
            sign_in_throttled.clone(),
        );
        registry.register(
            "csrf_rejections",
            "Requests refused for a missing or bad CSRF token",
            csrf_rejections.clone(),
        );
        let heartbeat_datagrams = Family::<ReasonLabels, Gauge>::default();
        registry.register(
            "heartbeat_datagrams",
            "UDP heartbeat datagrams since start, by outcome (received, answered, held, rung, dropped_<reason>, key_lookups, window_commits, windows_saved); drops are silent to the sender",
            heartbeat_datagrams.clone(),
        );
        let sealed_refused = Family::<CodeLabels, Counter>::default();
        registry.register(
            "sealed_bodies_refused",
            "Printers' sealed bodies refused, by protocol error code",
            sealed_refused.clone(),
        );
        let sealed_accepted = Family::<TypeLabels, Counter>::default();
        registry.register(
            "sealed_bodies_accepted",
            "Printers' sealed bodies opened, by message type",
            sealed_accepted.clone(),
        );
        let session_accepted = Family::<TypeLabels, Counter>::default();
        registry.register(
            "session_bodies_accepted",
            "Printers' session bodies (after one sealed body opened a session) opened, by message type",
            session_accepted.clone(),
        );
        let check_ins = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "check_ins",
            "Printer check-ins by outcome (stored, duplicate, refused_<code>)",
            check_ins.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            sign_in_failures,
            sign_in_throttled,
            csrf_rejections,
            heartbeat_datagrams,
            sealed_refused,
            sealed_accepted,
            session_accepted,
            check_ins,
        }
    }

    pub fn sealed_refused(&self, code: &str) {
        self.sealed_refused
            .get_or_create(&CodeLabels { code: code.into() })
            .inc();
    }

    pub fn sealed_accepted(&self, kind: &str) {
        self.sealed_accepted
            .get_or_create(&TypeLabels {
                message_type: kind.into(),
            })
            .inc();
    }

    pub fn session_accepted(&self, kind: &str) {
        self.session_accepted
            .get_or_create(&TypeLabels {
                message_type: kind.into(),
            })
            .inc();
    }

    pub fn check_in(&self, outcome: &str) {
        self.check_ins
            .get_or_create(&ReasonLabels {
                reason: outcome.into(),
            })
            .inc();
    }

    /// Copies the doorbell's counters into the registry before a scrape.
    pub fn observe_doorbell(&self, c: &printfleet_doorbell::CounterSnapshot) {
        let rows: [(&str, u64); 16] = [
            ("received", c.received),
            ("answered", c.answered),
            ("held", c.held),
            ("rung", c.rung),
            ("ring_missed", c.ring_missed),
            ("dropped_malformed", c.dropped_malformed),
            ("dropped_unknown_key", c.dropped_unknown_key),
            ("dropped_bad_auth", c.dropped_bad_auth),
            ("dropped_replayed", c.dropped_replayed),
            ("dropped_unknown_type", c.dropped_unknown_type),
            ("dropped_backend", c.dropped_backend),
            ("dropped_busy", c.dropped_busy),
            ("send_errors", c.send_errors),
            ("key_lookups", c.key_lookups),
            ("window_commits", c.window_commits),
            ("windows_saved", c.windows_saved),
        ];
        for (reason, v) in rows {
            self.heartbeat_datagrams
                .get_or_create(&ReasonLabels {
                    reason: reason.into(),
                })
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
