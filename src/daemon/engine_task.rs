//! The engine task: the single writer of agent state.
//!
//! It owns the [`Engine`], applies committed inputs in journal order,
//! advances time on a tick, serves figure queries, and publishes what the
//! engine reports to the floor hub. Everything else talks to it through
//! [`EngineHandle`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::clock::Clock;
use super::directory::SharedDirectory;
use crate::adherence::schedule::{day_start_ms, local_date};
use crate::adherence::{DayFigures, Engine, Output};
use crate::api::convert::alarm_id;
use crate::domain::{AdherenceStatus, AgentId, EventKind, ScheduledActivity, StateGroup};
use crate::floor::{AlarmEvent, FloorAgent, FloorHub, Notice, TeamSummary};
use crate::telemetry;

/// Most distinct unknown (source, code) pairs announced as notices; later
/// ones are still counted and logged by telemetry.
const MAX_NOTICED_CODES: usize = 1024;

/// A committed input, in journal order.
#[derive(Debug, Clone)]
pub enum EngineInput {
    Event { seq: u64, agent_id: AgentId, source: String, effective: Timestamp, received: Timestamp, kind: EventKind },
    SourceHealth { seq: u64, source: String, healthy: bool, at: Timestamp },
}

/// Figures of several agents for one day: the date, the instant they run
/// to, and one entry per agent.
pub type TeamDayFigures = (Date, Timestamp, Vec<(AgentId, DayFigures)>);

/// A request to the engine task.
#[derive(Debug)]
pub enum EngineCommand {
    Inputs(Vec<EngineInput>),
    /// New or changed agents: make sure each exists and republish its view.
    AgentsChanged(Vec<AgentId>),
    /// Replaces the schedules of these agents.
    Schedules(Vec<(AgentId, Vec<ScheduledActivity>)>),
    Exceptions {
        agent_id: AgentId,
        periods: Vec<(Timestamp, Timestamp)>,
    },
    /// Replied to once every command sent before it is applied and its
    /// changes are published to the hub.
    Barrier(oneshot::Sender<()>),
    AgentDay {
        agent_id: AgentId,
        date: Option<Date>,
        reply: oneshot::Sender<Option<(Date, Timestamp, DayFigures)>>,
    },
    TeamDay {
        agent_ids: Vec<AgentId>,
        date: Option<Date>,
        reply: oneshot::Sender<TeamDayFigures>,
    },
}

/// Cloneable handle to the engine task.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<EngineCommand>,
    /// Engine time of the last advance, in epoch milliseconds; the systemd
    /// watchdog is fed only while this moves.
    last_advance_ms: Arc<AtomicI64>,
}

/// Settings of the engine task.
#[derive(Debug, Clone)]
pub struct EngineTaskConfig {
    pub tick: Duration,
    pub team_summary_interval: Duration,
}

// === impl EngineHandle ===

impl EngineHandle {
    pub async fn send(&self, command: EngineCommand) -> Result<(), EngineGone> {
        self.tx.send(command).await.map_err(|_| EngineGone)
    }

    pub async fn agent_day(
        &self,
        agent_id: &str,
        date: Option<Date>,
    ) -> Result<Option<(Date, Timestamp, DayFigures)>, EngineGone> {
        let (reply, answer) = oneshot::channel();
        self.send(EngineCommand::AgentDay { agent_id: agent_id.to_string(), date, reply }).await?;
        answer.await.map_err(|_| EngineGone)
    }

    pub async fn team_day(&self, agent_ids: Vec<AgentId>, date: Option<Date>) -> Result<TeamDayFigures, EngineGone> {
        let (reply, answer) = oneshot::channel();
        self.send(EngineCommand::TeamDay { agent_ids, date, reply }).await?;
        answer.await.map_err(|_| EngineGone)
    }

    /// Waits until every command sent before is applied and published, so a
    /// caller that changed agents, schedules or exceptions can return with
    /// the floor already showing the change.
    pub async fn barrier(&self) -> Result<(), EngineGone> {
        let (reply, answer) = oneshot::channel();
        self.send(EngineCommand::Barrier(reply)).await?;
        answer.await.map_err(|_| EngineGone)
    }

    /// Returns the engine time of the last advance (epoch ms).
    pub fn last_advance_ms(&self) -> i64 {
        self.last_advance_ms.load(Ordering::Relaxed)
    }
}

/// The engine task has stopped (shutdown).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the engine task has stopped")]
pub struct EngineGone;

/// Starts the engine task with an engine already rebuilt from the journal.
/// It runs until `stop` is cancelled, then applies what is queued and
/// returns. The daemon cancels `stop` after the ingest pipeline has
/// stopped, so every committed input reaches the engine.
pub fn spawn(
    engine: Engine,
    hub: Arc<FloorHub>,
    directory: SharedDirectory,
    clock: Clock,
    config: EngineTaskConfig,
    queue: usize,
    shutdown: CancellationToken,
) -> (EngineHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(queue.max(1));
    let last_advance_ms = Arc::new(AtomicI64::new(engine.now().as_millisecond()));
    let handle = EngineHandle { tx, last_advance_ms: last_advance_ms.clone() };
    let task = EngineTask {
        engine,
        hub,
        directory,
        clock,
        changed: HashSet::new(),
        unknown_codes: HashSet::new(),
        barriers: Vec::new(),
        last_advance_ms,
    };
    let join = tokio::spawn(task.run(rx, config, shutdown));
    (handle, join)
}

struct EngineTask {
    engine: Engine,
    hub: Arc<FloorHub>,
    directory: SharedDirectory,
    clock: Clock,
    /// Agents whose view changed in the current batch; published once.
    changed: HashSet<Arc<str>>,
    /// (source, code) pairs already announced as unknown.
    unknown_codes: HashSet<(String, String)>,
    /// Barriers to reply to after the next flush.
    barriers: Vec<oneshot::Sender<()>>,
    last_advance_ms: Arc<AtomicI64>,
}

// === impl EngineTask ===

impl EngineTask {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<EngineCommand>,
        config: EngineTaskConfig,
        shutdown: CancellationToken,
    ) {
        info!(agents = self.engine.agent_count(), "engine task started");
        let mut tick = tokio::time::interval(config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut summaries = tokio::time::interval(config.team_summary_interval);
        summaries.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        self.publish_all();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    rx.close();
                    while let Some(command) = rx.recv().await {
                        self.handle(command);
                    }
                    self.flush();
                    break;
                }
                command = rx.recv() => {
                    let Some(command) = command else { break };
                    self.handle(command);
                    // Drain what is already queued before publishing, so a
                    // burst costs one publication per agent.
                    for _ in 0..1024 {
                        match rx.try_recv() {
                            Ok(command) => self.handle(command),
                            Err(_) => break,
                        }
                    }
                    self.flush();
                }
                _ = tick.tick() => {
                    self.advance();
                    self.flush();
                }
                _ = summaries.tick() => self.publish_team_summaries(),
            }
        }
        info!("engine task stopped");
    }

    fn advance(&mut self) {
        let now = self.clock.now();
        self.engine.advance(now);
        self.last_advance_ms.store(now.as_millisecond(), Ordering::Relaxed);

        // Keep yesterday and today for recomputation; fold older inputs.
        let tz = self.engine.time_zone().clone();
        let today = local_date(now.as_millisecond(), &tz);
        if let Ok(yesterday) = today.yesterday()
            && let Ok(from) = Timestamp::from_millisecond(day_start_ms(yesterday, &tz))
        {
            self.engine.retain_from(from);
        }
    }

    fn handle(&mut self, command: EngineCommand) {
        match command {
            EngineCommand::Inputs(inputs) => {
                let now = self.clock.now();
                for input in inputs {
                    self.apply(input, now);
                }
            }
            EngineCommand::AgentsChanged(agent_ids) => {
                for id in agent_ids {
                    let id = self.engine.ensure_agent(&id);
                    self.changed.insert(id);
                }
            }
            EngineCommand::Schedules(schedules) => {
                self.engine.advance(self.clock.now());
                for (agent_id, activities) in schedules {
                    self.engine.set_schedule(&agent_id, &activities);
                }
            }
            EngineCommand::Exceptions { agent_id, periods } => {
                self.engine.advance(self.clock.now());
                self.engine.set_exceptions(&agent_id, periods);
            }
            EngineCommand::Barrier(reply) => self.barriers.push(reply),
            EngineCommand::AgentDay { agent_id, date, reply } => {
                self.engine.advance(self.clock.now());
                let now = self.engine.now();
                let date = date.unwrap_or_else(|| local_date(now.as_millisecond(), self.engine.time_zone()));
                let figures = self.engine.agent_day(&agent_id, date).map(|f| (date, now, f));
                let _ = reply.send(figures);
            }
            EngineCommand::TeamDay { agent_ids, date, reply } => {
                self.engine.advance(self.clock.now());
                let now = self.engine.now();
                let date = date.unwrap_or_else(|| local_date(now.as_millisecond(), self.engine.time_zone()));
                let figures =
                    agent_ids.into_iter().filter_map(|id| self.engine.agent_day(&id, date).map(|f| (id, f))).collect();
                let _ = reply.send((date, now, figures));
            }
        }
    }

    fn apply(&mut self, input: EngineInput, now: Timestamp) {
        match input {
            EngineInput::Event { seq, agent_id, source, effective, received, kind } => {
                self.engine.advance(effective.min(now));
                self.engine.apply_event(seq, &agent_id, &source, effective, &kind);
                let lag = now.duration_since(received).as_secs_f64().max(0.0);
                metrics::histogram!(telemetry::ENGINE_LAG_SECONDS).record(lag);
            }
            EngineInput::SourceHealth { seq, source, healthy, at } => {
                self.engine.advance(at.min(now));
                self.engine.apply_source_health(seq, &source, healthy, at);
            }
        }
    }

    /// Publishes what the engine reported since the last flush, then
    /// replies to the barriers waiting for it.
    fn flush(&mut self) {
        self.publish_outputs();
        for barrier in self.barriers.drain(..) {
            let _ = barrier.send(());
        }
    }

    fn publish_outputs(&mut self) {
        let outputs: Vec<Output> = self.engine.drain_outputs().collect();
        if outputs.is_empty() && self.changed.is_empty() {
            return;
        }
        let directory = self.directory.load();
        for output in outputs {
            match output {
                Output::AgentChanged { agent } => {
                    self.changed.insert(agent);
                }
                Output::AlarmRaised { agent, alarm } => {
                    let team = team_of(&directory, &agent);
                    telemetry::AlarmChanged { agent_id: &agent, kind: alarm.kind.as_str(), raised: true }.emit();
                    self.hub.publish_alarm(AlarmEvent {
                        alarm_id: alarm_id(&agent, alarm.kind, alarm.out_since_ms),
                        agent_id: agent,
                        team,
                        alarm,
                        raised: true,
                    });
                }
                Output::AlarmCleared { agent, alarm } => {
                    let team = team_of(&directory, &agent);
                    telemetry::AlarmChanged { agent_id: &agent, kind: alarm.kind.as_str(), raised: false }.emit();
                    self.hub.publish_alarm(AlarmEvent {
                        alarm_id: alarm_id(&agent, alarm.kind, alarm.out_since_ms),
                        agent_id: agent,
                        team,
                        alarm,
                        raised: false,
                    });
                }
                Output::UnknownStateCode { agent, code, source } => {
                    if self.unknown_codes.len() < MAX_NOTICED_CODES
                        && self.unknown_codes.insert((source.to_string(), code.clone()))
                    {
                        self.hub.publish_notice(Notice {
                            kind: "unknown_state_code",
                            team: team_of(&directory, &agent),
                            agent_id: agent.clone(),
                            source: source.clone(),
                            code: code.clone(),
                            at: self.engine.now(),
                        });
                    }
                    telemetry::UnknownStateCode { code: &code, source: &source }.emit();
                    tracing::debug!(agent_id = %agent, code = %code, "unknown state code kept the previous state");
                }
            }
        }

        let mut changed: Vec<Arc<str>> = self.changed.drain().collect();
        changed.sort();
        for agent_id in changed {
            if let Some(agent) = self.floor_agent(&directory, &agent_id) {
                self.hub.publish(agent);
            }
        }
    }

    /// Publishes every agent and every active alarm, for the hub's first
    /// state after recovery (recovery itself publishes nothing).
    fn publish_all(&mut self) {
        let ids: Vec<Arc<str>> = self.engine.agent_ids().cloned().collect();
        self.changed.extend(ids);
        let directory = self.directory.load();
        for (agent, alarm) in self.engine.active_alarms() {
            // Counted as raised in this process, so raised minus cleared
            // stays equal to the active alarms.
            telemetry::AlarmChanged { agent_id: &agent, kind: alarm.kind.as_str(), raised: true }.emit();
            let team = team_of(&directory, &agent);
            self.hub.publish_alarm(AlarmEvent {
                alarm_id: alarm_id(&agent, alarm.kind, alarm.out_since_ms),
                agent_id: agent,
                team,
                alarm,
                raised: true,
            });
        }
        self.flush();
        self.publish_team_summaries();
    }

    fn floor_agent(&self, directory: &super::directory::Directory, agent_id: &str) -> Option<FloorAgent> {
        let snapshot = self.engine.snapshot(agent_id)?;
        let (display_name, team) = match directory.get(agent_id) {
            Some(agent) => (Arc::from(agent.display_name.as_str()), Arc::from(agent.team.as_str())),
            None => (snapshot.agent_id.clone(), Arc::from("")),
        };
        Some(FloorAgent { snapshot, display_name, team })
    }

    /// Computes team figures and the state gauges once per interval.
    fn publish_team_summaries(&mut self) {
        let directory = self.directory.load();
        let mut teams: BTreeMap<Arc<str>, TeamSummary> = BTreeMap::new();
        let mut percent_parts: BTreeMap<Arc<str>, (i64, i64)> = BTreeMap::new();
        let mut by_group: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut by_status: BTreeMap<&'static str, u64> = BTreeMap::new();
        let today = local_date(self.engine.now().as_millisecond(), self.engine.time_zone());

        for agent_id in self.engine.agent_ids() {
            let Some(snapshot) = self.engine.snapshot(agent_id) else { continue };
            let team: Arc<str> = directory.get(agent_id).map_or(Arc::from(""), |a| Arc::from(a.team.as_str()));
            let summary =
                teams.entry(team.clone()).or_insert_with(|| TeamSummary { team: team.clone(), ..Default::default() });

            summary.agents += 1;
            if snapshot.group.is_logged_in() {
                summary.logged_in += 1;
            }
            match snapshot.group {
                StateGroup::Available => summary.available += 1,
                StateGroup::Ringing | StateGroup::OnCallInbound | StateGroup::OnCallOutbound | StateGroup::Held => {
                    summary.on_call += 1
                }
                StateGroup::WrapUp => summary.wrap_up += 1,
                StateGroup::NotReady(_) => summary.not_ready += 1,
                StateGroup::Unreachable => summary.unreachable += 1,
                StateGroup::LoggedOut => {}
            }
            if snapshot.activity.is_some() {
                summary.scheduled_now += 1;
            }
            if snapshot.status == AdherenceStatus::OutOfAdherence {
                summary.out_of_adherence += 1;
            }
            if snapshot.alarm {
                summary.alarms += 1;
            }
            *by_group.entry(snapshot.group.as_str()).or_default() += 1;
            *by_status.entry(snapshot.status.as_str()).or_default() += 1;

            if let Some(day) = self.engine.agent_day_settled(agent_id, today) {
                let parts = percent_parts.entry(team).or_default();
                parts.0 += day.in_ms;
                parts.1 += day.scheduled_ms - day.neutral_total_ms() - day.excused_ms;
            }
        }
        for (team, (in_ms, divisor)) in percent_parts {
            if let Some(summary) = teams.get_mut(&team) {
                summary.adherence_percent_today = (divisor > 0).then(|| in_ms as f64 * 100.0 / divisor as f64);
            }
        }

        telemetry::record_agent_gauges(&by_group, &by_status);
        metrics::gauge!(telemetry::ALARMS_ACTIVE).set(self.hub.active_alarms().len() as f64);
        debug!(teams = teams.len(), "team summaries computed");
        self.hub.publish_teams(teams);
    }
}

fn team_of(directory: &super::directory::Directory, agent_id: &str) -> Arc<str> {
    directory.get(agent_id).map_or(Arc::from(""), |a| Arc::from(a.team.as_str()))
}
