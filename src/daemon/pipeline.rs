//! The ingest pipeline: validates events from every adapter, resolves the
//! agent, commits to the journal, hands committed entries to the engine in
//! journal order, and only then replies to the adapter.
//!
//! Requests that queue up while a commit is in flight are merged into the
//! next commit (group commit), so the journal sees large batches under load
//! and small ones when idle.

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::clock::Clock;
use super::directory::SharedDirectory;
use super::engine_task::{EngineHandle, EngineInput};
use crate::domain::{AgentEvent, EventKind, SourceKind};
use crate::ingest::{IngestCommand, IngestError, SubmitOutcome};
use crate::store::{AppendOutcome, Journal, JournalEntry, JournaledEvent};
use crate::telemetry;

/// Longest accepted source, event id, agent reference, call id or state
/// code, in bytes; longer values are rejected rather than stored.
pub const MAX_ID_BYTES: usize = 256;

/// Settings of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Source time is used when it lies within this many milliseconds of
    /// the receive time; otherwise the receive time is.
    pub max_skew_ms: i64,
    /// Most journal entries merged into one commit.
    pub max_batch: usize,
}

enum Reply {
    Events { reply: oneshot::Sender<Result<Vec<SubmitOutcome>, IngestError>>, outcomes: Vec<Option<SubmitOutcome>> },
    Health { reply: oneshot::Sender<Result<(), IngestError>> },
}

/// Runs the pipeline until every [`crate::ingest::IngestHandle`] is dropped
/// or `stop` is cancelled. On `stop` it refuses new requests (submitters get
/// `ShuttingDown`) and commits what is already queued before returning.
pub async fn run(
    mut rx: mpsc::Receiver<IngestCommand>,
    journal: Journal,
    engine: EngineHandle,
    directory: SharedDirectory,
    clock: Clock,
    config: PipelineConfig,
    stop: CancellationToken,
) {
    info!("ingest pipeline started");
    loop {
        let first = tokio::select! {
            biased;
            first = rx.recv() => first,
            _ = stop.cancelled(), if !rx.is_closed() => {
                rx.close();
                continue;
            }
        };
        let Some(first) = first else { break };
        let mut commands = vec![first];
        let mut entries_count = count_entries(&commands[0]);
        while entries_count < config.max_batch {
            match rx.try_recv() {
                Ok(command) => {
                    entries_count += count_entries(&command);
                    commands.push(command);
                }
                Err(_) => break,
            }
        }
        process(commands, &journal, &engine, &directory, &clock, &config).await;
    }
    info!("ingest pipeline stopped");
}

fn count_entries(command: &IngestCommand) -> usize {
    match command {
        IngestCommand::Events { events, .. } => events.len(),
        IngestCommand::SourceHealth { .. } => 1,
    }
}

async fn process(
    commands: Vec<IngestCommand>,
    journal: &Journal,
    engine: &EngineHandle,
    directory: &SharedDirectory,
    clock: &Clock,
    config: &PipelineConfig,
) {
    let directory = directory.load();
    let received_at = clock.now();
    let mut entries: Vec<JournalEntry> = Vec::new();
    let mut replies: Vec<Reply> = Vec::with_capacity(commands.len());

    for command in commands {
        match command {
            IngestCommand::Events { events, reply } => {
                let mut outcomes = Vec::with_capacity(events.len());
                for mut event in events {
                    event.received_at = received_at;
                    match validate(&event).and_then(|()| {
                        directory.resolve(&event.agent_ref).cloned().ok_or_else(|| Invalid {
                            field: "agent",
                            reason: "unknown_agent",
                            message: format!(
                                "unknown agent \"{}\"; add it (or this platform id) to the agent directory",
                                event.agent_ref
                            ),
                        })
                    }) {
                        Ok(agent_id) => {
                            let effective_time = event.effective_time(config.max_skew_ms);
                            entries.push(JournalEntry::Event(JournaledEvent { event, agent_id, effective_time }));
                            outcomes.push(None);
                        }
                        Err(invalid) => {
                            telemetry::EventRejected {
                                source: event.source_kind.as_str(),
                                field: invalid.field,
                                reason: invalid.reason,
                            }
                            .emit();
                            outcomes.push(Some(SubmitOutcome::Rejected {
                                field: invalid.field.to_string(),
                                message: invalid.message,
                            }));
                        }
                    }
                }
                replies.push(Reply::Events { reply, outcomes });
            }
            IngestCommand::SourceHealth { source, kind, healthy, at: _, reply } => {
                // Every adapter reports health here, so the gauge and the log
                // line come from one place.
                telemetry::SourceHealthChanged { source: &source, healthy }.emit();
                // Stamped with the daemon clock like events, so the demo's
                // virtual time and real adapters agree.
                entries.push(JournalEntry::SourceHealth { source, kind, healthy, at: received_at });
                replies.push(Reply::Health { reply });
            }
        }
    }

    let entry_count = entries.len();
    let (entries, results) = match journal.append_returning(entries).await {
        Ok(returned) => returned,
        Err(e) => {
            error!(error = %e, entries = entry_count, "journal append failed; nothing of this batch was accepted");
            let failure = IngestError::Journal(e.to_string());
            for reply in replies {
                match reply {
                    Reply::Events { reply, .. } => drop(reply.send(Err(failure.clone()))),
                    Reply::Health { reply } => drop(reply.send(Err(failure.clone()))),
                }
            }
            return;
        }
    };

    let mut inputs = Vec::with_capacity(entries.len());
    let mut verdicts = Vec::with_capacity(entries.len());
    // Accepted and duplicate events per source kind: grpc, websocket, sip.
    let mut accepted = [0u64; 3];
    let mut duplicates = [0u64; 3];
    for (entry, outcome) in entries.into_iter().zip(results) {
        let kind = match &entry {
            JournalEntry::Event(e) => Some(e.event.source_kind as usize),
            JournalEntry::SourceHealth { .. } => None,
        };
        match outcome {
            AppendOutcome::Committed { seq } => {
                inputs.push(engine_input(seq, entry));
                verdicts.push(SubmitOutcome::Accepted);
                if let Some(kind) = kind {
                    accepted[kind] += 1;
                }
            }
            AppendOutcome::Duplicate => {
                verdicts.push(SubmitOutcome::Duplicate);
                if let Some(kind) = kind {
                    duplicates[kind] += 1;
                }
            }
        }
    }
    for kind in [SourceKind::Grpc, SourceKind::WebSocket, SourceKind::Sip] {
        telemetry::EventsIngested {
            source: kind.as_str(),
            accepted: accepted[kind as usize],
            duplicates: duplicates[kind as usize],
        }
        .emit();
    }

    if !inputs.is_empty() && engine.send(super::engine_task::EngineCommand::Inputs(inputs)).await.is_err() {
        // The entries are committed; a restart replays them from the journal.
        error!("engine task stopped; committed events reach it after a restart");
    }

    let mut verdicts = verdicts.into_iter();
    for reply in replies {
        match reply {
            Reply::Events { reply, outcomes } => {
                let outcomes = outcomes
                    .into_iter()
                    .map(|o| o.unwrap_or_else(|| verdicts.next().unwrap_or(SubmitOutcome::Accepted)))
                    .collect();
                let _ = reply.send(Ok(outcomes));
            }
            Reply::Health { reply } => {
                // Source health entries carry no source event id, so they
                // are always committed.
                verdicts.next();
                let _ = reply.send(Ok(()));
            }
        }
    }
}

fn engine_input(seq: u64, entry: JournalEntry) -> EngineInput {
    match entry {
        JournalEntry::Event(JournaledEvent { event, agent_id, effective_time }) => EngineInput::Event {
            seq,
            agent_id,
            source: event.source,
            effective: effective_time,
            received: event.received_at,
            kind: event.kind,
        },
        JournalEntry::SourceHealth { source, healthy, at, .. } => {
            EngineInput::SourceHealth { seq, source, healthy, at }
        }
    }
}

/// Converts a replayed journal entry for the engine.
pub fn replayed_input(seq: u64, entry: JournalEntry) -> EngineInput {
    engine_input(seq, entry)
}

/// Reason an event was not accepted.
struct Invalid {
    field: &'static str,
    /// Metric label from a fixed set.
    reason: &'static str,
    message: String,
}

/// Checks the fields every event needs.
fn validate(event: &AgentEvent) -> Result<(), Invalid> {
    check_id("source", &event.source)?;
    check_id("event_id", &event.source_event_id)?;
    check_id("agent", &event.agent_ref)?;
    match &event.kind {
        EventKind::State { code } => check_id("state_code", code)?,
        EventKind::CallRinging { call_id, .. }
        | EventKind::CallStart { call_id, .. }
        | EventKind::CallHold { call_id }
        | EventKind::CallResume { call_id }
        | EventKind::CallEnd { call_id } => check_id("call_id", call_id)?,
        EventKind::Login | EventKind::Logout | EventKind::Device { .. } => {}
    }
    if event.source_time == Timestamp::UNIX_EPOCH {
        return Err(Invalid {
            field: "time",
            reason: "missing_field",
            message: "time is missing (the Unix epoch was given)".into(),
        });
    }
    Ok(())
}

fn check_id(field: &'static str, value: &str) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(Invalid {
            field,
            reason: "missing_field",
            message: format!("{field} is required and must not be empty"),
        });
    }
    if value.len() > MAX_ID_BYTES {
        return Err(Invalid {
            field,
            reason: "too_long",
            message: format!("{field} is {} bytes, more than the {MAX_ID_BYTES}-byte limit", value.len()),
        });
    }
    Ok(())
}
