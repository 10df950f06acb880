//! WebSocket ingest adapter: the platform's event feed as versioned JSON
//! text frames, in server mode (the platform connects and pushes) and client
//! mode (floorwatch connects, authenticates, resumes and reconnects).
//!
//! Frames are parsed by [`schema`] into agent events, handed to the pipeline
//! through [`IngestHandle::submit`], and acknowledged only after the pipeline
//! committed them. The adapter reports each source's health (connected and
//! not silent) with [`IngestHandle::source_health`]. It does not resolve
//! agents, deduplicate by event id, or map state codes: the pipeline does.
//! TLS (`wss://`) is not supported yet. The wire format is documented in
//! `docs/ingest-websocket.md`.

pub mod backoff;
pub mod client;
pub mod health;
pub mod schema;
pub mod server;
pub mod session;
pub mod telemetry;

use jiff::Timestamp;
use thiserror::Error;
use tokio::time::Instant;

pub use backoff::{Backoff, BackoffPolicy};
pub use client::{ClientConfig, run_client};
pub use server::{AuthFn, AuthRejection, EVENTS_PATH, ServerConfig, run_server};
pub use telemetry::describe_metrics;

use crate::domain::SourceKind;
use crate::ingest::IngestHandle;
use health::HealthChange;

/// Errors that keep the adapter from starting.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum WebSocketError {
    #[error("websocket config: {key} {message}")]
    InvalidConfig { key: &'static str, message: String },
}

/// Sends one health change to the pipeline and logs it.
async fn report_health(ingest: &IngestHandle, change: &HealthChange) {
    let result = ingest.source_health(&change.source, SourceKind::WebSocket, change.healthy, Timestamp::now()).await;
    match result {
        Ok(()) if change.healthy => tracing::info!(source = %change.source, "feed source healthy"),
        Ok(()) => tracing::warn!(source = %change.source, "feed source unhealthy: disconnected or silent"),
        Err(err) => {
            tracing::warn!(source = %change.source, healthy = change.healthy, error = %err, "reporting feed source health failed")
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_deadline(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
