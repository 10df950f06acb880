//! The ingest pipeline every adapter hands its normalized events to.
//!
//! An adapter (WebSocket, gRPC, SIP) builds [`AgentEvent`]s and calls
//! [`IngestHandle::submit`]. The pipeline resolves the agent, drops
//! duplicates, commits the events to the journal and only then replies, so an
//! `Accepted` outcome means the event survives a crash. Adapters also report
//! the health of their feeds with [`IngestHandle::source_health`].

use jiff::Timestamp;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::domain::{AgentEvent, SourceKind};

/// Outcome of one submitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Committed to the journal and handed to the engine.
    Accepted,
    /// The same (source, source_event_id) was accepted before; dropped.
    Duplicate,
    /// Not accepted; the text names the field and the problem.
    Rejected { field: String, message: String },
}

/// Reason a whole submission failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IngestError {
    #[error("the ingest pipeline is shutting down")]
    ShuttingDown,
    #[error("journal write failed: {0}")]
    Journal(String),
}

/// A request to the pipeline; see [`IngestHandle`].
#[derive(Debug)]
pub enum IngestCommand {
    Events {
        events: Vec<AgentEvent>,
        reply: oneshot::Sender<Result<Vec<SubmitOutcome>, IngestError>>,
    },
    SourceHealth {
        source: String,
        kind: SourceKind,
        healthy: bool,
        at: Timestamp,
        reply: oneshot::Sender<Result<(), IngestError>>,
    },
}

/// Cloneable handle adapters use to submit events; backed by a bounded
/// channel, so a full pipeline makes `submit` wait (back-pressure) instead
/// of growing a queue.
#[derive(Debug, Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<IngestCommand>,
}

// === impl IngestHandle ===

impl IngestHandle {
    /// Creates a handle and the receiving end the pipeline (or a test) reads.
    pub fn channel(capacity: usize) -> (IngestHandle, mpsc::Receiver<IngestCommand>) {
        let (tx, rx) = mpsc::channel(capacity);
        (IngestHandle { tx }, rx)
    }

    /// Submits events and waits until they are committed. The outcomes are
    /// in the order of `events`.
    pub async fn submit(&self, events: Vec<AgentEvent>) -> Result<Vec<SubmitOutcome>, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(IngestCommand::Events { events, reply }).await.map_err(|_| IngestError::ShuttingDown)?;
        answer.await.map_err(|_| IngestError::ShuttingDown)?
    }

    /// Queues events and returns a receiver for their outcomes without
    /// waiting for the commit. Callers that keep several batches in flight
    /// use this to fix the order in which batches enter the pipeline.
    pub async fn enqueue(
        &self,
        events: Vec<AgentEvent>,
    ) -> Result<oneshot::Receiver<Result<Vec<SubmitOutcome>, IngestError>>, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(IngestCommand::Events { events, reply }).await.map_err(|_| IngestError::ShuttingDown)?;
        Ok(answer)
    }

    /// Reports that a source went down (`healthy = false`) or came back.
    /// While a source is down, agents that depend on it show adherence
    /// "unknown" instead of out of adherence.
    pub async fn source_health(
        &self,
        source: &str,
        kind: SourceKind,
        healthy: bool,
        at: Timestamp,
    ) -> Result<(), IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(IngestCommand::SourceHealth { source: source.to_string(), kind, healthy, at, reply })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        answer.await.map_err(|_| IngestError::ShuttingDown)?
    }
}
