//! State every gRPC service shares: the engine, the hub, the journal, the
//! directory and roster, authentication, and the limits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::auth::Authenticator;
use crate::daemon::clock::Clock;
use crate::daemon::directory::SharedDirectory;
use crate::daemon::engine_task::EngineHandle;
use crate::floor::FloorHub;
use crate::i18n::Locale;
use crate::ingest::IngestHandle;
use crate::roster::{LabourRules, RosterBook};
use crate::store::Journal;
use crate::telemetry;

/// Limits the API enforces.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Messages buffered per stream client before its task waits.
    pub floor_client_buffer: usize,
    /// Open floor and alarm streams at once; more get RESOURCE_EXHAUSTED.
    pub max_stream_clients: usize,
    /// Events per ingest request.
    pub ingest_max_batch: usize,
    /// Ingest batches one stream may have waiting for their commit.
    pub ingest_in_flight: usize,
    /// Maximum of agents in the directory.
    pub max_agents: usize,
    /// A gRPC source with no batch for this long is down.
    pub source_silence: std::time::Duration,
    /// A gRPC source whose last stream closed is down after this long.
    pub source_grace: std::time::Duration,
}

/// Shared state of the gRPC services.
pub struct ApiState {
    pub auth: Authenticator,
    pub hub: Arc<FloorHub>,
    pub engine: EngineHandle,
    pub journal: Journal,
    pub directory: SharedDirectory,
    /// The published roster; publishes and swaps hold the lock while they
    /// check and store, so two planners cannot interleave.
    pub roster: Arc<tokio::sync::Mutex<RosterBook>>,
    pub ingest: IngestHandle,
    pub tz: TimeZone,
    pub locale: Locale,
    pub labour_rules: LabourRules,
    pub limits: ApiLimits,
    pub clock: Clock,
    pub shutdown: CancellationToken,
    stream_clients: Arc<AtomicUsize>,
    /// Serializes directory updates (read, merge, store).
    pub directory_write: Mutex<()>,
    pub grpc_sources: super::source_health::GrpcSourceHealth,
}

/// Counts an open stream; dropping it releases the slot.
pub struct StreamGuard {
    counter: Arc<AtomicUsize>,
    stream: &'static str,
}

// === impl ApiState ===

impl ApiState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        auth: Authenticator,
        hub: Arc<FloorHub>,
        engine: EngineHandle,
        journal: Journal,
        directory: SharedDirectory,
        roster: RosterBook,
        ingest: IngestHandle,
        tz: TimeZone,
        locale: Locale,
        labour_rules: LabourRules,
        limits: ApiLimits,
        clock: Clock,
        shutdown: CancellationToken,
    ) -> ApiState {
        ApiState {
            auth,
            hub,
            engine,
            journal,
            directory,
            roster: Arc::new(tokio::sync::Mutex::new(roster)),
            ingest,
            tz,
            locale,
            labour_rules,
            limits: limits.clone(),
            clock,
            shutdown,
            stream_clients: Arc::new(AtomicUsize::new(0)),
            directory_write: Mutex::new(()),
            grpc_sources: super::source_health::GrpcSourceHealth::new(limits.source_silence, limits.source_grace),
        }
    }

    /// Takes a stream slot, or fails with RESOURCE_EXHAUSTED at the limit.
    pub fn stream_guard(&self, stream: &'static str) -> Result<StreamGuard, Status> {
        let open = self.stream_clients.fetch_add(1, Ordering::SeqCst) + 1;
        if open > self.limits.max_stream_clients {
            self.stream_clients.fetch_sub(1, Ordering::SeqCst);
            return Err(Status::resource_exhausted(format!(
                "{} streams are open, the configured maximum (limits.max_stream_clients); retry later",
                self.limits.max_stream_clients
            )));
        }
        metrics::gauge!(telemetry::STREAM_CLIENTS, "stream" => stream).increment(1.0);
        Ok(StreamGuard { counter: self.stream_clients.clone(), stream })
    }

    /// Returns the locale a request names ("" means the site's).
    pub fn locale_for(&self, lang: &str) -> Result<Locale, Status> {
        if lang.trim().is_empty() {
            return Ok(self.locale);
        }
        Locale::parse(lang)
            .ok_or_else(|| Status::invalid_argument(format!("lang: \"{lang}\" is not supported; use \"nl\" or \"en\"")))
    }

    /// Parses a local date field; empty means today in the site zone.
    pub fn date_field(&self, value: &str, field: &str) -> Result<Option<jiff::civil::Date>, Status> {
        if value.trim().is_empty() {
            return Ok(None);
        }
        value
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("{field}: \"{value}\" is not a date ({e}); use YYYY-MM-DD")))
    }
}

// === impl StreamGuard ===

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!(telemetry::STREAM_CLIENTS, "stream" => self.stream).decrement(1.0);
    }
}
