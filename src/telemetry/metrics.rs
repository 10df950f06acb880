//! Metric names and labels of the whole daemon, and their descriptions.
//!
//! Every name follows Prometheus conventions: `floorwatch_` prefix, `_total`
//! on counters, seconds as the unit of time. Label values come from bounded
//! sets (configured source names, enum names); never from raw input such as
//! a state code or an agent id. Adapters with their own metrics (the
//! WebSocket adapter, for example) define and describe them in their module.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Label: adapter kind, `grpc`, `websocket` or `sip` (`SourceKind::as_str`).
pub const LABEL_SOURCE_KIND: &str = "source_kind";
/// Label: configured source name, such as `platform-main`.
pub const LABEL_SOURCE: &str = "source";
/// Label: short reason an event was rejected, such as `unknown_agent`.
pub const LABEL_REASON: &str = "reason";
/// Label: state group name, such as `not_ready_break`.
pub const LABEL_STATE_GROUP: &str = "state_group";
/// Label: adherence status name, such as `out_of_adherence`.
pub const LABEL_ADHERENCE: &str = "adherence";
/// Label: stream name, such as `floor` or `alarms`.
pub const LABEL_STREAM: &str = "stream";

/// Counter {source_kind, source}: events accepted by ingest.
pub const EVENTS_INGESTED_TOTAL: &str = "floorwatch_events_ingested_total";
/// Counter {source, reason}: events rejected by ingest.
pub const EVENTS_REJECTED_TOTAL: &str = "floorwatch_events_rejected_total";
/// Counter {source}: events dropped as duplicates (same source and event id).
pub const INGEST_DUPLICATES_TOTAL: &str = "floorwatch_ingest_duplicates_total";
/// Counter {source}: state events whose code has no entry in `[state_codes]`.
pub const UNKNOWN_STATE_CODES_TOTAL: &str = "floorwatch_unknown_state_codes_total";
/// Gauge {source}: 1 while the source is healthy, 0 while silent or down.
pub const SOURCE_HEALTHY: &str = "floorwatch_source_healthy";

/// Histogram: seconds from an event's receipt to the engine applying it.
pub const ENGINE_LAG_SECONDS: &str = "floorwatch_engine_lag_seconds";
/// Gauge {state_group}: agents currently in each state group.
pub const AGENTS_BY_STATE_GROUP: &str = "floorwatch_agents_by_state_group";
/// Gauge {adherence}: agents currently in each adherence status.
pub const AGENTS_BY_ADHERENCE: &str = "floorwatch_agents_by_adherence";

/// Counter: adherence alarms raised.
pub const ALARMS_RAISED_TOTAL: &str = "floorwatch_alarms_raised_total";
/// Counter: adherence alarms cleared.
pub const ALARMS_CLEARED_TOTAL: &str = "floorwatch_alarms_cleared_total";
/// Gauge: adherence alarms currently active.
pub const ALARMS_ACTIVE: &str = "floorwatch_alarms_active";

/// Gauge {stream}: connected stream clients.
pub const STREAM_CLIENTS: &str = "floorwatch_stream_clients";
/// Counter {stream}: updates a slow client skipped because they were
/// coalesced into a later state.
pub const STREAM_COALESCED_TOTAL: &str = "floorwatch_stream_coalesced_total";

/// Histogram: seconds one journal transaction took to commit.
pub const JOURNAL_COMMIT_SECONDS: &str = "floorwatch_journal_commit_seconds";
/// Histogram: events written per journal transaction.
pub const JOURNAL_BATCH_EVENTS: &str = "floorwatch_journal_batch_entries";

/// Bucket bounds, in seconds, for every `_seconds` histogram: 0.5 ms up to
/// 10 s, covering a fast commit and a badly stalled engine.
pub const SECONDS_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Bucket bounds for [`JOURNAL_BATCH_EVENTS`], up to the default
/// `storage.journal_batch_max` of 4096.
pub const BATCH_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0];

/// Describes every metric in this module to the installed recorder; call once
/// at start-up, after installing it.
pub fn describe_metrics() {
    describe_counter!(EVENTS_INGESTED_TOTAL, Unit::Count, "Events accepted by ingest, by adapter kind and source.");
    describe_counter!(EVENTS_REJECTED_TOTAL, Unit::Count, "Events rejected by ingest, by source and reason.");
    describe_counter!(
        INGEST_DUPLICATES_TOTAL,
        Unit::Count,
        "Events dropped because their source and event id were seen before."
    );
    describe_counter!(
        UNKNOWN_STATE_CODES_TOTAL,
        Unit::Count,
        "State events whose platform code has no [state_codes] entry, by source."
    );
    describe_gauge!(SOURCE_HEALTHY, "1 while the source delivers events, 0 while it is silent or disconnected.");

    describe_histogram!(
        ENGINE_LAG_SECONDS,
        Unit::Seconds,
        "Time from an event's receipt to the adherence engine applying it."
    );
    describe_gauge!(AGENTS_BY_STATE_GROUP, "Agents currently in each state group.");
    describe_gauge!(AGENTS_BY_ADHERENCE, "Agents currently in each adherence status.");

    describe_counter!(ALARMS_RAISED_TOTAL, Unit::Count, "Adherence alarms raised.");
    describe_counter!(ALARMS_CLEARED_TOTAL, Unit::Count, "Adherence alarms cleared.");
    describe_gauge!(ALARMS_ACTIVE, "Adherence alarms currently active.");

    describe_gauge!(STREAM_CLIENTS, "Connected stream clients, by stream.");
    describe_counter!(
        STREAM_COALESCED_TOTAL,
        Unit::Count,
        "Updates skipped for slow stream clients because a later state replaced them, by stream."
    );

    describe_histogram!(JOURNAL_COMMIT_SECONDS, Unit::Seconds, "Time to commit one journal transaction.");
}
