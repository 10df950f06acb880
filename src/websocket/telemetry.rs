//! Metric names of the WebSocket adapter and the one place per occurrence
//! that both logs it and counts it, so logs and metrics never disagree.
//!
//! Events ingested are counted by the pipeline
//! (`floorwatch_events_ingested_total{source="websocket"}`), not here.

use metrics::{counter, describe_counter, describe_gauge, gauge};

use super::schema::SchemaError;

/// Events and frames handled, by `result`: accepted, duplicate, invalid,
/// rejected.
pub const MESSAGES_TOTAL: &str = "floorwatch_websocket_messages_total";
/// Open feed connections, by `mode`: server, client.
pub const CONNECTIONS: &str = "floorwatch_websocket_connections";
/// Reconnect attempts scheduled by client mode.
pub const RECONNECTS_TOTAL: &str = "floorwatch_websocket_reconnects_total";
/// Forward jumps in a feed's `seq` numbers (one per jump, not per missing
/// event).
pub const GAPS_TOTAL: &str = "floorwatch_websocket_gaps_total";
/// HTTP upgrades rejected by server mode, by `status`: 400, 401, 404, 503.
pub const UPGRADES_REJECTED_TOTAL: &str = "floorwatch_websocket_upgrades_rejected_total";

/// Invalid inputs logged per connection: the first, then every this many.
const INVALID_LOG_EVERY: u64 = 100;

/// Side of the feed this adapter runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The platform connects to floorwatch.
    Server,
    /// floorwatch connects to the platform.
    Client,
}

/// Outcome of one event or frame, the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageResult {
    Accepted,
    Duplicate,
    Invalid,
    Rejected,
}

// === impl Mode ===

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Server => "server",
            Mode::Client => "client",
        }
    }
}

// === impl MessageResult ===

impl MessageResult {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageResult::Accepted => "accepted",
            MessageResult::Duplicate => "duplicate",
            MessageResult::Invalid => "invalid",
            MessageResult::Rejected => "rejected",
        }
    }
}

/// Registers descriptions of every metric above; call once at start-up,
/// after the recorder is installed.
pub fn describe_metrics() {
    describe_counter!(MESSAGES_TOTAL, "WebSocket feed events and frames handled, by result.");
    describe_gauge!(CONNECTIONS, "Open WebSocket feed connections, by mode.");
    describe_counter!(RECONNECTS_TOTAL, "Reconnect attempts of the WebSocket feed client.");
    describe_counter!(GAPS_TOTAL, "Forward jumps in WebSocket feed sequence numbers.");
    describe_counter!(UPGRADES_REJECTED_TOTAL, "WebSocket upgrade requests rejected, by HTTP status.");
}

/// Counts one handled event or frame.
pub fn message(result: MessageResult) {
    counter!(MESSAGES_TOTAL, "result" => result.as_str()).increment(1);
}

/// Counts and, rate-limited, logs one invalid input. `seen` is the number of
/// invalid inputs on this connection so far, this one included.
pub fn invalid_input(source: &str, peer: &str, error: &SchemaError, seen: u64) {
    message(MessageResult::Invalid);
    if seen == 1 || seen.is_multiple_of(INVALID_LOG_EVERY) {
        tracing::warn!(
            source,
            peer,
            code = error.code.as_str(),
            field = error.field.as_deref(),
            event_id = error.id.as_deref(),
            invalid_on_connection = seen,
            message = %error.message,
            "invalid feed input; logging the first and every 100th per connection",
        );
    }
}

/// Counts and, rate-limited like invalid input, logs one event the
/// pipeline rejected.
pub fn rejected(source: &str, peer: &str, event_id: &str, field: &str, message: &str, seen: u64) {
    self::message(MessageResult::Rejected);
    if seen == 1 || seen.is_multiple_of(INVALID_LOG_EVERY) {
        tracing::warn!(
            source,
            peer,
            event_id,
            field,
            message,
            rejected_on_connection = seen,
            "pipeline rejected a feed event; logging the first and every 100th per connection",
        );
    }
}

/// Counts and logs a forward jump in `seq`.
pub fn gap(source: &str, first_missing: u64, last_missing: u64) {
    counter!(GAPS_TOTAL).increment(1);
    tracing::warn!(
        source,
        first_missing,
        last_missing,
        missing = last_missing - first_missing + 1,
        "feed sequence gap; events in this range were never received",
    );
}

/// Tracks one open connection in the gauge; decrements it when dropped.
#[derive(Debug)]
pub struct ConnectionGauge {
    mode: Mode,
}

// === impl ConnectionGauge ===

impl ConnectionGauge {
    pub fn open(mode: Mode) -> ConnectionGauge {
        gauge!(CONNECTIONS, "mode" => mode.as_str()).increment(1.0);
        ConnectionGauge { mode }
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        gauge!(CONNECTIONS, "mode" => self.mode.as_str()).decrement(1.0);
    }
}

/// Counts one scheduled reconnect (logged by the client with its delay).
pub fn reconnect() {
    counter!(RECONNECTS_TOTAL).increment(1);
}

/// Counts one rejected upgrade (logged by the server with its reason).
pub fn upgrade_rejected(status: u16) {
    counter!(UPGRADES_REJECTED_TOTAL, "status" => status.to_string()).increment(1);
}
