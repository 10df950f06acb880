//! Logs and metrics: the `tracing` subscriber, the Prometheus recorder, the
//! metric names of the whole daemon, and one struct per observable
//! occurrence that logs and counts it in one place.
//!
//! This module does not serve HTTP; `crate::admin` renders the recorder's
//! handle on /metrics.

mod events;
pub mod metrics;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

pub use events::{
    AlarmChanged, EventRejected, EventsIngested, SourceHealthChanged, StreamClientLagged, UnknownStateCode,
};
pub use metrics::*;

/// Sets the gauges of agents per state group and per adherence status.
/// Groups absent from the maps are set to zero, so a group that empties
/// does not keep its last count.
pub fn record_agent_gauges(
    by_group: &std::collections::BTreeMap<&'static str, u64>,
    by_status: &std::collections::BTreeMap<&'static str, u64>,
) {
    for group in crate::domain::StateGroup::ALL {
        let count = by_group.get(group.as_str()).copied().unwrap_or(0);
        ::metrics::gauge!(AGENTS_BY_STATE_GROUP, LABEL_STATE_GROUP => group.as_str()).set(count as f64);
    }
    for status in [
        crate::domain::AdherenceStatus::InAdherence,
        crate::domain::AdherenceStatus::OutOfAdherence,
        crate::domain::AdherenceStatus::Neutral,
        crate::domain::AdherenceStatus::Unknown,
        crate::domain::AdherenceStatus::Excused,
    ] {
        let count = by_status.get(status.as_str()).copied().unwrap_or(0);
        ::metrics::gauge!(AGENTS_BY_ADHERENCE, LABEL_ADHERENCE => status.as_str()).set(count as f64);
    }
}

/// Format of log lines on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter \"{filter}\": {source}; fix: write directives such as \"info,floorwatch::sip=debug\"")]
    InvalidFilter { filter: String, source: tracing_subscriber::filter::ParseError },
    #[error("a tracing subscriber is already installed; init_tracing must run once, before any other subscriber")]
    AlreadyInitialized,
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

// === impl LogFormat ===

impl LogFormat {
    /// Parses `text` or `json` (case-insensitive).
    pub fn parse(name: &str) -> Option<LogFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Returns `filter` with `rsipstack=warn` appended unless it names
/// `rsipstack` itself.
fn effective_filter(filter: &str) -> String {
    if filter.contains("rsipstack") { filter.to_owned() } else { format!("{filter},rsipstack=warn") }
}

/// Installs the global `tracing` subscriber writing to standard error, with
/// `filter` as `EnvFilter` directives. The SIP stack (`rsipstack`) logs every
/// message it sends and receives at info level, so it is held at warn unless
/// `filter` names it.
pub fn init_tracing(format: LogFormat, filter: &str) -> Result<(), TelemetryError> {
    let env_filter = EnvFilter::builder()
        .parse(effective_filter(filter))
        .map_err(|source| TelemetryError::InvalidFilter { filter: filter.to_owned(), source })?;

    // Colour codes only for a terminal; a file or pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(env_filter).with_writer(std::io::stderr).with_ansi(ansi);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInitialized)
}

/// Installs the Prometheus recorder as the global `metrics` recorder,
/// describes every metric, and returns the handle that renders them.
///
/// Later calls return the same handle. When another recorder was installed
/// first, the handle is still returned but renders nothing, and a warning is
/// logged. The caller must run [`PrometheusHandle::run_upkeep`] periodically;
/// `crate::admin::serve_admin` does.
pub fn install_prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = prometheus_builder().build_recorder();
            let handle = recorder.handle();
            if let Err(error) = ::metrics::set_global_recorder(recorder) {
                tracing::warn!(%error, "metrics recorder not installed; /metrics will stay empty");
            }
            describe_metrics();
            handle
        })
        .clone()
}

/// Returns a builder with histogram buckets for every `_seconds` metric and
/// for the journal batch size.
fn prometheus_builder() -> PrometheusBuilder {
    let configured = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), metrics::SECONDS_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(metrics::JOURNAL_BATCH_EVENTS.into()), metrics::BATCH_BUCKETS)
        });

    match configured {
        Ok(builder) => builder,
        // Only an empty bucket list fails, and both lists are constants.
        Err(error) => {
            tracing::warn!(%error, "histogram buckets rejected; histograms render as summaries");
            PrometheusBuilder::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_quiets_rsipstack_by_default() {
        assert_eq!(effective_filter("info"), "info,rsipstack=warn");
    }

    #[test]
    fn filter_keeps_explicit_rsipstack_level() {
        assert_eq!(effective_filter("info,rsipstack=debug"), "info,rsipstack=debug");
    }

    #[test]
    fn log_format_parses_both_names() {
        assert_eq!(LogFormat::parse("JSON"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("logfmt"), None);
    }

    #[test]
    fn init_tracing_rejects_bad_filter() {
        let result = init_tracing(LogFormat::Text, "info,floorwatch=loud");
        assert!(matches!(result, Err(TelemetryError::InvalidFilter { .. })), "{result:?}");
    }
}
