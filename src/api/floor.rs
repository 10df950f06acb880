//! `FloorService`: the floor stream and the alarm stream.
//!
//! Each stream runs in its own task that reads the hub and writes into a
//! small bounded channel tonic drains. A client that stops reading blocks
//! only its own task; the hub's broadcast ring then overruns for that
//! client, which later catches up with the latest state per agent.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{debug, info};

use super::auth::{Principal, Role};
use super::convert;
use super::state::{ApiState, StreamGuard};
use crate::floor::{FloorChange, SubscriptionStart};
use crate::i18n::Locale;
use crate::proto::{self, FloorUpdate, floor_update::Update};
use crate::telemetry;

type StreamOf<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The gRPC `FloorService`.
pub struct FloorApi {
    state: Arc<ApiState>,
}

/// Agents a stream shows.
struct Scope {
    teams: Option<HashSet<String>>,
    agent_id: Option<String>,
}

// === impl FloorApi ===

impl FloorApi {
    pub fn new(state: Arc<ApiState>) -> FloorApi {
        FloorApi { state }
    }
}

#[tonic::async_trait]
impl proto::floor_service_server::FloorService for FloorApi {
    type WatchFloorStream = StreamOf<FloorUpdate>;
    type WatchAlarmsStream = StreamOf<proto::AlarmUpdate>;

    async fn watch_floor(
        &self,
        request: Request<proto::WatchFloorRequest>,
    ) -> Result<Response<Self::WatchFloorStream>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(
            &[Role::Admin, Role::Planner, Role::Supervisor, Role::Wallboard, Role::Agent],
            "watch the floor",
        )?;
        let request = request.into_inner();
        let scope = scope_for(&principal, &request.teams)?;
        let guard = self.state.stream_guard("floor")?;
        let resume = (request.resume_after_seq > 0).then_some(request.resume_after_seq);

        let (tx, rx) = mpsc::channel(self.state.limits.floor_client_buffer);
        let state = self.state.clone();
        tokio::spawn(async move {
            info!(client = %principal.name, resume_after = ?resume, "floor stream opened");
            stream_floor(state, scope, resume, tx, guard).await;
            info!(client = %principal.name, "floor stream closed");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn watch_alarms(
        &self,
        request: Request<proto::WatchAlarmsRequest>,
    ) -> Result<Response<Self::WatchAlarmsStream>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Planner, Role::Supervisor, Role::Wallboard], "watch alarms")?;
        let request = request.into_inner();
        let scope = scope_for(&principal, &request.teams)?;
        let locale = self.state.locale_for(&request.lang)?;
        let guard = self.state.stream_guard("alarms")?;

        let (tx, rx) = mpsc::channel(self.state.limits.floor_client_buffer);
        let state = self.state.clone();
        tokio::spawn(async move {
            stream_alarms(state, scope, locale, tx, guard).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Returns the agents a caller may see, checking every requested team.
fn scope_for(principal: &Principal, requested: &[String]) -> Result<Scope, Status> {
    if principal.role == Role::Agent {
        return Ok(Scope { teams: None, agent_id: principal.agent_id.clone() });
    }
    for team in requested {
        principal.require_team(team)?;
    }
    let teams = if !requested.is_empty() {
        Some(requested.iter().cloned().collect())
    } else if principal.sees_all_teams() {
        None
    } else {
        Some(principal.teams.clone())
    };
    Ok(Scope { teams, agent_id: None })
}

// === impl Scope ===

impl Scope {
    fn shows(&self, agent_id: &str, team: &str) -> bool {
        if let Some(own) = &self.agent_id {
            return own == agent_id;
        }
        self.teams.as_ref().is_none_or(|teams| teams.contains(team))
    }

    fn shows_team(&self, team: &str) -> bool {
        if self.agent_id.is_some() {
            return false;
        }
        self.teams.as_ref().is_none_or(|teams| teams.contains(team))
    }
}

/// Sends one message; returns false when the client is gone or the server
/// shuts down (the client then gets UNAVAILABLE).
async fn send<T: Stamped>(state: &ApiState, tx: &mpsc::Sender<Result<T, Status>>, mut message: T) -> bool {
    message.stamp(state.clock.now());
    tokio::select! {
        sent = tx.send(Ok(message)) => sent.is_ok(),
        _ = state.shutdown.cancelled() => {
            let _ = tx.try_send(Err(Status::unavailable("floorwatch is shutting down; reconnect and resume")));
            false
        }
    }
}

/// A stream message that carries the server time.
trait Stamped {
    fn stamp(&mut self, now: jiff::Timestamp);
}

impl Stamped for FloorUpdate {
    fn stamp(&mut self, now: jiff::Timestamp) {
        self.server_time = Some(convert::timestamp_to_proto(now));
    }
}

impl Stamped for proto::AlarmUpdate {
    fn stamp(&mut self, _now: jiff::Timestamp) {}
}

fn agent_update(state: &ApiState, change: &FloorChange) -> FloorUpdate {
    FloorUpdate {
        seq: change.seq,
        update: Some(Update::Agent(convert::agent_view(&change.agent, state.clock.now()))),
        server_time: None,
    }
}

async fn stream_floor(
    state: Arc<ApiState>,
    scope: Scope,
    resume: Option<u64>,
    tx: mpsc::Sender<Result<FloorUpdate, Status>>,
    _guard: StreamGuard,
) {
    let mut subscription = state.hub.subscribe(resume);
    let mut high_water = subscription.high_water;
    let shows = |change: &FloorChange| scope.shows(&change.agent.snapshot.agent_id, &change.agent.team);

    // The start is sent one agent at a time from the shared changes, so a
    // large snapshot costs a pointer per agent here, not a converted view.
    let start = std::mem::replace(&mut subscription.start, SubscriptionStart::Resumed { changes: Vec::new() });
    let (first, changes, last) = match start {
        SubscriptionStart::Snapshot { reason, changes } => {
            let visible: Vec<Arc<FloorChange>> = changes.into_iter().filter(|c| shows(c)).collect();
            let begin = Update::SnapshotBegin(proto::SnapshotBegin {
                reason: reason.to_string(),
                agent_count: visible.len() as u32,
            });
            (begin, visible, Some(Update::SnapshotEnd(proto::SnapshotEnd {})))
        }
        SubscriptionStart::Resumed { changes } => {
            let visible: Vec<Arc<FloorChange>> = changes.into_iter().filter(|c| shows(c)).collect();
            (Update::Resumed(proto::Resumed { replayed: visible.len() as u32 }), visible, None)
        }
    };
    if !send(&state, &tx, FloorUpdate { seq: high_water, update: Some(first), server_time: None }).await {
        return;
    }
    for change in &changes {
        if !send(&state, &tx, agent_update(&state, change)).await {
            return;
        }
    }
    drop(changes);
    if let Some(last) = last {
        if !send(&state, &tx, FloorUpdate { seq: high_water, update: Some(last), server_time: None }).await {
            return;
        }
    }

    let mut teams = state.hub.watch_teams();
    teams.mark_changed();

    // While the client's buffer is full the task stops forwarding single
    // changes; once there is room it sends the latest state of every agent
    // that changed meanwhile, so a slow client costs a bounded buffer and
    // skips intermediate changes instead of replaying them all.
    let mut behind = false;
    loop {
        tokio::select! {
            permit = tx.reserve(), if behind => {
                if permit.is_err() {
                    return;
                }
                drop(permit);
                let catch_up = state.hub.catch_up(high_water);
                let skipped = catch_up.high_water.saturating_sub(high_water);
                telemetry::StreamClientLagged { stream: "floor", skipped }.emit();
                debug!(skipped, "floor client fell behind; sending latest state per agent");
                let marker = FloorUpdate {
                    seq: catch_up.high_water,
                    update: Some(Update::Coalesced(proto::Coalesced { skipped_changes: skipped })),
                    server_time: None,
                };
                if !send(&state, &tx, marker).await {
                    return;
                }
                for change in catch_up.changes.iter().filter(|c| shows(c)) {
                    if !send(&state, &tx, agent_update(&state, change)).await {
                        return;
                    }
                }
                high_water = catch_up.high_water;
                behind = false;
                teams.mark_changed();
            }
            received = subscription.changes.recv(), if !behind => match received {
                Ok(change) => {
                    if change.seq <= high_water {
                        continue;
                    }
                    if !shows(&change) {
                        high_water = change.seq;
                        continue;
                    }
                    match offer(&state, &tx, agent_update(&state, &change)) {
                        Offer::Sent => high_water = change.seq,
                        // This change is picked up by the catch-up.
                        Offer::Full => behind = true,
                        Offer::Closed => return,
                    }
                }
                Err(RecvError::Lagged(_)) => behind = true,
                Err(RecvError::Closed) => return,
            },
            changed = teams.changed(), if !behind => {
                if changed.is_err() {
                    return;
                }
                let summaries = teams.borrow_and_update().clone();
                for summary in summaries.values().filter(|s| scope.shows_team(&s.team)) {
                    let message = FloorUpdate {
                        seq: high_water,
                        update: Some(Update::Team(convert::team_summary(summary))),
                        server_time: None,
                    };
                    match offer(&state, &tx, message) {
                        Offer::Sent => {}
                        Offer::Full => {
                            behind = true;
                            break;
                        }
                        Offer::Closed => return,
                    }
                }
            }
            _ = tx.closed() => return,
            _ = state.shutdown.cancelled() => {
                let _ = tx.try_send(Err(Status::unavailable("floorwatch is shutting down; reconnect and resume")));
                return;
            }
        }
    }
}

/// Result of offering a message without waiting.
enum Offer {
    Sent,
    Full,
    Closed,
}

fn offer(state: &ApiState, tx: &mpsc::Sender<Result<FloorUpdate, Status>>, mut message: FloorUpdate) -> Offer {
    message.stamp(state.clock.now());
    match tx.try_send(Ok(message)) {
        Ok(()) => Offer::Sent,
        Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
        Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
    }
}

async fn stream_alarms(
    state: Arc<ApiState>,
    scope: Scope,
    locale: Locale,
    tx: mpsc::Sender<Result<proto::AlarmUpdate, Status>>,
    _guard: StreamGuard,
) {
    use proto::alarm_update::Update as A;

    let (active, mut receiver) = state.hub.subscribe_alarms();
    let mut notices = state.hub.subscribe_notices();
    let alarm_message = |event: &crate::floor::AlarmEvent| {
        let directory = state.directory.load();
        let name = directory.get(&event.agent_id).map_or(event.agent_id.to_string(), |a| a.display_name.clone());
        let alarm = convert::alarm(event, &name, &state.tz, locale);
        proto::AlarmUpdate { update: Some(if event.raised { A::Raised(alarm) } else { A::Cleared(alarm) }) }
    };

    for event in active.iter().filter(|e| scope.shows(&e.agent_id, &e.team)) {
        if !send(&state, &tx, alarm_message(event)).await {
            return;
        }
    }
    loop {
        tokio::select! {
            received = receiver.recv() => match received {
                Ok(event) => {
                    if scope.shows(&event.agent_id, &event.team) && !send(&state, &tx, alarm_message(&event)).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    telemetry::StreamClientLagged { stream: "alarms", skipped: missed }.emit();
                    if !send(&state, &tx, proto::AlarmUpdate { update: Some(A::Missed(missed)) }).await {
                        return;
                    }
                    for event in state.hub.active_alarms().iter().filter(|e| scope.shows(&e.agent_id, &e.team)) {
                        if !send(&state, &tx, alarm_message(event)).await {
                            return;
                        }
                    }
                }
                Err(RecvError::Closed) => return,
            },
            received = notices.recv() => match received {
                Ok(notice) => {
                    if scope.shows(&notice.agent_id, &notice.team) {
                        let directory = state.directory.load();
                        let name = directory.get(&notice.agent_id).map_or(notice.agent_id.to_string(), |a| a.display_name.clone());
                        let message = proto::Notice {
                            kind: notice.kind.to_string(),
                            text: crate::i18n::unknown_code_text(&notice.code, &notice.source, &name, locale),
                            agent_id: notice.agent_id.to_string(),
                            team: notice.team.to_string(),
                            source: notice.source.to_string(),
                            code: notice.code.clone(),
                            at: Some(convert::timestamp_to_proto(notice.at)),
                        };
                        if !send(&state, &tx, proto::AlarmUpdate { update: Some(A::Notice(message)) }).await {
                            return;
                        }
                    }
                }
                // Notices are advisory; a slow client skips them.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            _ = tx.closed() => return,
            _ = state.shutdown.cancelled() => {
                let _ = tx.try_send(Err(Status::unavailable("floorwatch is shutting down; reconnect")));
                return;
            }
        }
    }
}
