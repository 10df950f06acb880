//! `IngestService.Publish`: normalized events from bridges and CTI
//! connectors, acknowledged after commit.
//!
//! A stream may keep several batches in flight: batches enter the pipeline
//! in the order received and acknowledgements go out in the same order, each
//! after its batch is committed.

use std::pin::Pin;
use std::sync::Arc;

use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use super::auth::Role;
use super::convert::{direction_from_proto, timestamp_from_proto};
use super::source_health::HealthReport;
use super::state::ApiState;
use crate::domain::{AgentEvent, EventKind, SourceKind};
use crate::ingest::{IngestError, SubmitOutcome};
use crate::proto::{self, ingest_event::Kind};

type AckStream = Pin<Box<dyn Stream<Item = Result<proto::PublishAck, Status>> + Send + 'static>>;

/// The gRPC `IngestService`.
pub struct IngestApi {
    state: Arc<ApiState>,
}

// === impl IngestApi ===

impl IngestApi {
    /// Creates the service and starts the task that marks silent or
    /// disconnected sources down.
    pub fn new(state: Arc<ApiState>) -> IngestApi {
        tokio::spawn(watch_source_health(state.clone()));
        IngestApi { state }
    }
}

/// Most distinct sources one ingest stream may carry.
const MAX_SOURCES_PER_STREAM: usize = 64;

async fn watch_source_health(state: Arc<ApiState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for report in state.grpc_sources.poll(std::time::Instant::now()) {
            report_health(&state, report).await;
        }
    }
}

async fn report_health(state: &ApiState, report: HealthReport) {
    let (source, healthy) = match report {
        HealthReport::Up(source) => (source, true),
        HealthReport::Down(source) => (source, false),
    };
    if let Err(e) = state.ingest.source_health(&source, SourceKind::Grpc, healthy, state.clock.now()).await {
        warn!(source = %source, error = %e, "source health change not recorded");
    }
}

#[tonic::async_trait]
impl proto::ingest_service_server::IngestService for IngestApi {
    type PublishStream = AckStream;

    async fn publish(
        &self,
        request: Request<Streaming<proto::PublishRequest>>,
    ) -> Result<Response<Self::PublishStream>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Ingest], "publish events")?;
        let mut requests = request.into_inner();
        let state = self.state.clone();
        let (tx, rx) = mpsc::channel(state.limits.ingest_in_flight.max(1) * 2);

        tokio::spawn(async move {
            info!(client = %principal.name, "ingest stream opened");
            let mut in_flight = FuturesOrdered::new();
            let mut input_done = false;
            let mut sources = StreamSources { state: state.clone(), names: std::collections::HashSet::new() };
            loop {
                tokio::select! {
                    next = requests.next(), if !input_done && in_flight.len() < state.limits.ingest_in_flight => {
                        match next {
                            Some(Ok(request)) => match start_batch(&state, request, &mut sources).await {
                                Ok(pending) => in_flight.push_back(pending),
                                Err(status) => {
                                    let _ = tx.send(Err(status)).await;
                                    return;
                                }
                            },
                            Some(Err(status)) => {
                                warn!(client = %principal.name, error = %status, "ingest stream failed");
                                input_done = true;
                            }
                            None => input_done = true,
                        }
                    }
                    Some(ack) = in_flight.next(), if !in_flight.is_empty() => {
                        if tx.send(ack).await.is_err() {
                            return;
                        }
                    }
                    _ = state.shutdown.cancelled(), if in_flight.is_empty() => {
                        let _ = tx.send(Err(Status::unavailable("floorwatch is shutting down; unacknowledged batches were not committed"))).await;
                        return;
                    }
                    else => break,
                }
                if input_done && in_flight.is_empty() {
                    break;
                }
            }
            info!(client = %principal.name, "ingest stream closed");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

type PendingAck = Pin<Box<dyn std::future::Future<Output = Result<proto::PublishAck, Status>> + Send>>;

/// Sources one stream carries. Dropping it reports the stream closed to
/// the health tracker, whichever way the stream ended.
struct StreamSources {
    state: Arc<ApiState>,
    names: std::collections::HashSet<String>,
}

impl Drop for StreamSources {
    fn drop(&mut self) {
        let now = std::time::Instant::now();
        for name in &self.names {
            self.state.grpc_sources.stream_closed(name, now);
        }
    }
}

/// Validates a batch, queues it and returns the future of its ack.
async fn start_batch(
    state: &ApiState,
    request: proto::PublishRequest,
    sources: &mut StreamSources,
) -> Result<PendingAck, Status> {
    let batch_id = request.batch_id;
    if request.source.trim().is_empty() {
        return Err(Status::invalid_argument(format!("batch {batch_id}: source is required")));
    }
    if request.events.len() > state.limits.ingest_max_batch {
        return Err(Status::invalid_argument(format!(
            "batch {batch_id}: events has {} entries, more than limits.ingest_max_batch = {}",
            request.events.len(),
            state.limits.ingest_max_batch
        )));
    }

    let now = std::time::Instant::now();
    if !sources.names.contains(&request.source) {
        if sources.names.len() >= MAX_SOURCES_PER_STREAM {
            return Err(Status::resource_exhausted(format!(
                "batch {batch_id}: this stream already carries {MAX_SOURCES_PER_STREAM} sources; open another stream"
            )));
        }
        state.grpc_sources.stream_opened(&request.source, now).map_err(|_| {
            Status::resource_exhausted(format!(
                "batch {batch_id}: more than {} distinct sources publish over gRPC; reuse source names",
                super::source_health::MAX_SOURCES
            ))
        })?;
        sources.names.insert(request.source.clone());
    }
    if let Some(report) = state.grpc_sources.batch(&request.source, request.source_healthy, now) {
        report_health(state, report).await;
    }

    let mut rejected = Vec::new();
    let mut events = Vec::with_capacity(request.events.len());
    let mut positions = Vec::with_capacity(request.events.len());
    for (index, event) in request.events.into_iter().enumerate() {
        let event_id = event.event_id.clone();
        match convert_event(&request.source, event, index) {
            Ok(event) => {
                positions.push((index, event_id));
                events.push(event);
            }
            Err((field, message)) => {
                rejected.push(proto::RejectedEvent { index: index as u32, event_id, field, message })
            }
        }
    }

    let answer =
        if events.is_empty() { None } else { Some(state.ingest.enqueue(events).await.map_err(ingest_status)?) };

    Ok(Box::pin(async move {
        let mut ack = proto::PublishAck { batch_id, accepted: 0, duplicates: 0, rejected };
        if let Some(answer) = answer {
            let outcomes =
                answer.await.map_err(|_| ingest_status(IngestError::ShuttingDown))?.map_err(ingest_status)?;
            for ((index, event_id), outcome) in positions.into_iter().zip(outcomes) {
                match outcome {
                    SubmitOutcome::Accepted => ack.accepted += 1,
                    SubmitOutcome::Duplicate => ack.duplicates += 1,
                    SubmitOutcome::Rejected { field, message } => ack.rejected.push(proto::RejectedEvent {
                        index: index as u32,
                        event_id,
                        field: format!("events[{index}].{field}"),
                        message,
                    }),
                }
            }
            ack.rejected.sort_by_key(|r| r.index);
        }
        Ok(ack)
    }))
}

fn ingest_status(error: IngestError) -> Status {
    match error {
        IngestError::ShuttingDown => Status::unavailable("floorwatch is shutting down; resend unacknowledged batches"),
        IngestError::Journal(message) => {
            Status::internal(format!("journal write failed, batch not committed: {message}"))
        }
    }
}

/// Converts one wire event; errors name the field, e.g. `events[3].time`.
fn convert_event(source: &str, event: proto::IngestEvent, index: usize) -> Result<AgentEvent, (String, String)> {
    let field = |name: &str| format!("events[{index}].{name}");
    if event.event_id.trim().is_empty() {
        return Err((field("event_id"), "event_id is required".into()));
    }
    if event.agent.trim().is_empty() {
        return Err((field("agent"), "agent is required".into()));
    }
    let time = timestamp_from_proto(event.time.as_ref(), &field("time"))
        .map_err(|s| (field("time"), s.message().to_string()))?;

    let call = |call: proto::CallEvent,
                needs_direction: bool|
     -> Result<(String, Option<crate::domain::CallDirection>), (String, String)> {
        if call.call_id.trim().is_empty() {
            return Err((field("call_id"), "call_id is required".into()));
        }
        let direction = if needs_direction {
            Some(
                direction_from_proto(call.direction, &field("direction"))
                    .map_err(|s| (field("direction"), s.message().to_string()))?,
            )
        } else {
            None
        };
        Ok((call.call_id, direction))
    };
    let kind = match event.kind {
        None => {
            return Err((
                field("kind"),
                "one of login, logout, state_code, call_* or device_registered is required".into(),
            ));
        }
        Some(Kind::Login(_)) => EventKind::Login,
        Some(Kind::Logout(_)) => EventKind::Logout,
        Some(Kind::StateCode(code)) => {
            if code.trim().is_empty() {
                return Err((field("state_code"), "state_code must not be empty".into()));
            }
            EventKind::State { code }
        }
        Some(Kind::CallRinging(c)) => {
            let (call_id, direction) = call(c, true)?;
            EventKind::CallRinging { call_id, direction: direction.unwrap_or(crate::domain::CallDirection::Inbound) }
        }
        Some(Kind::CallStart(c)) => {
            let (call_id, direction) = call(c, true)?;
            EventKind::CallStart { call_id, direction: direction.unwrap_or(crate::domain::CallDirection::Inbound) }
        }
        Some(Kind::CallHold(c)) => EventKind::CallHold { call_id: call(c, false)?.0 },
        Some(Kind::CallResume(c)) => EventKind::CallResume { call_id: call(c, false)?.0 },
        Some(Kind::CallEnd(c)) => EventKind::CallEnd { call_id: call(c, false)?.0 },
        Some(Kind::DeviceRegistered(registered)) => EventKind::Device { registered },
    };

    Ok(AgentEvent {
        source_kind: SourceKind::Grpc,
        source: source.to_string(),
        source_event_id: event.event_id,
        agent_ref: event.agent,
        source_time: time,
        // The pipeline stamps the receive time with the daemon clock.
        received_at: Timestamp::UNIX_EPOCH,
        kind,
    })
}
