//! The adherence engine: every agent's tracker, the timers that wake them at
//! schedule boundaries and alarm deadlines, feed health, and exact
//! recomputation by replay.
//!
//! The engine does no I/O and reads no clock. The caller feeds committed
//! journal entries in journal order and calls [`Engine::advance`] with the
//! current time; outputs are collected for the caller to drain. Feeding the
//! same inputs gives the same outputs, which is how a restart rebuilds the
//! day from the journal.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::figures::DayFigures;
use super::rules::RuleMatrix;
use super::schedule::{Schedule, local_date};
use super::tracker::{AlarmState, Context, Tracker, TrackerOutput};
use crate::domain::{EventKind, ScheduledActivity, StateGroup};

/// Settings the engine needs; built from the daemon configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub tz: TimeZone,
    pub rules: RuleMatrix,
    /// Platform state code → state group.
    pub state_codes: HashMap<String, StateGroup>,
    /// Most events kept per agent for recomputation; past it, the agent's
    /// figures are flagged approximate.
    pub history_limit: usize,
}

/// Something the engine reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A field shown on the floor changed for this agent.
    AgentChanged {
        agent: Arc<str>,
    },
    AlarmRaised {
        agent: Arc<str>,
        alarm: AlarmState,
    },
    AlarmCleared {
        agent: Arc<str>,
        alarm: AlarmState,
    },
    /// A state code with no mapping in the configuration.
    UnknownStateCode {
        agent: Arc<str>,
        code: String,
        source: Arc<str>,
    },
}

/// The live state of one agent, for the floor stream.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSnapshot {
    pub agent_id: Arc<str>,
    pub group: StateGroup,
    /// When the agent entered `group`; `None` when the agent has not
    /// changed since the start of the retained window, so the real instant
    /// is not known.
    pub group_since: Option<Timestamp>,
    pub state_code: Option<Arc<str>>,
    pub activity: Option<crate::domain::ActivityType>,
    pub activity_end: Option<Timestamp>,
    pub status: crate::domain::AdherenceStatus,
    pub status_since: Timestamp,
    pub out_since: Option<Timestamp>,
    pub alarm: bool,
    pub call: Option<CallSnapshot>,
    pub device_registered: Option<bool>,
    pub source: Option<Arc<str>>,
    pub source_healthy: bool,
    pub adherence_percent_today: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallSnapshot {
    pub call_id: String,
    pub direction: crate::domain::CallDirection,
    pub since: Timestamp,
    pub held: bool,
    pub connected: bool,
}

/// One input kept for replay.
#[derive(Debug, Clone)]
struct HistoryItem {
    t: i64,
    seq: u64,
    source: Arc<str>,
    kind: EventKind,
}

#[derive(Debug, Clone)]
struct HealthItem {
    t: i64,
    seq: u64,
    source: Arc<str>,
    healthy: bool,
}

struct AgentEntry {
    id: Arc<str>,
    schedule: Schedule,
    exceptions: Vec<(i64, i64)>,
    tracker: Tracker,
    /// Tracker state at `Engine::retain_from_ms`, where replays start.
    checkpoint: Tracker,
    history: Vec<HistoryItem>,
    history_full: bool,
    /// The wake time queued for this agent; heap entries that disagree are
    /// stale and skipped.
    wake_ms: Option<i64>,
}

/// See the module documentation.
pub struct Engine {
    config: EngineConfig,
    /// Configured state codes as shared strings, so a state event costs no
    /// allocation for its code.
    codes: HashMap<String, (StateGroup, Arc<str>)>,
    agents: Vec<AgentEntry>,
    index: HashMap<Arc<str>, usize>,
    sources: HashMap<Arc<str>, bool>,
    health_log: Vec<HealthItem>,
    wakes: BinaryHeap<Reverse<(i64, usize)>>,
    now_ms: i64,
    /// Replays start here; earlier inputs are folded into checkpoints.
    retain_from_ms: i64,
    outputs: Vec<Output>,
    scratch: Vec<TrackerOutput>,
}

// === impl Engine ===

impl Engine {
    /// Creates an engine whose figures start at `retain_from`.
    pub fn new(config: EngineConfig, retain_from: Timestamp) -> Engine {
        let retain_from_ms = retain_from.as_millisecond();
        let codes =
            config.state_codes.iter().map(|(code, group)| (code.clone(), (*group, Arc::from(code.as_str())))).collect();
        Engine {
            config,
            codes,
            agents: Vec::new(),
            index: HashMap::new(),
            sources: HashMap::new(),
            health_log: Vec::new(),
            wakes: BinaryHeap::new(),
            now_ms: retain_from_ms,
            retain_from_ms,
            outputs: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub fn now(&self) -> Timestamp {
        ts(self.now_ms)
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.config.tz
    }

    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }

    pub fn contains_agent(&self, agent_id: &str) -> bool {
        self.index.contains_key(agent_id)
    }

    pub fn agent_ids(&self) -> impl Iterator<Item = &Arc<str>> {
        self.agents.iter().map(|a| &a.id)
    }

    /// Takes the outputs collected since the last call.
    pub fn drain_outputs(&mut self) -> std::vec::Drain<'_, Output> {
        self.outputs.drain(..)
    }

    /// Adds an agent with an empty schedule if it is not known yet.
    pub fn ensure_agent(&mut self, agent_id: &str) -> Arc<str> {
        if let Some(&i) = self.index.get(agent_id) {
            return self.agents[i].id.clone();
        }
        let id: Arc<str> = Arc::from(agent_id);
        let schedule = Schedule::default();
        let ctx = context(&self.config, &schedule, &[]);
        let checkpoint = Tracker::new(&ctx, self.retain_from_ms);
        let mut tracker = checkpoint.clone();
        let mut ignored = Vec::new();
        tracker.advance_to(&ctx, self.now_ms, &mut ignored);

        self.index.insert(id.clone(), self.agents.len());
        self.agents.push(AgentEntry {
            id: id.clone(),
            schedule,
            exceptions: Vec::new(),
            tracker,
            checkpoint,
            history: Vec::new(),
            history_full: false,
            wake_ms: None,
        });
        self.outputs.push(Output::AgentChanged { agent: id.clone() });
        id
    }

    /// Replaces an agent's schedule and recomputes its figures against it
    /// (the published roster is authoritative for the whole retained window).
    pub fn set_schedule(&mut self, agent_id: &str, activities: &[ScheduledActivity]) {
        self.ensure_agent(agent_id);
        let i = self.index[agent_id];
        self.agents[i].schedule = Schedule::new(activities, &self.config.tz);
        self.replay(i);
    }

    /// Replaces an agent's exceptions (`[start, end)` pairs) and recomputes.
    pub fn set_exceptions(&mut self, agent_id: &str, mut exceptions: Vec<(Timestamp, Timestamp)>) {
        self.ensure_agent(agent_id);
        let i = self.index[agent_id];
        exceptions.sort();
        self.agents[i].exceptions =
            exceptions.into_iter().map(|(s, e)| (s.as_millisecond(), e.as_millisecond())).collect();
        self.replay(i);
    }

    /// Applies a committed agent event. `seq` is its journal sequence
    /// number; `t` its effective time. An event older than the agent's last
    /// input is applied to the live state at that last instant and the
    /// figures are recomputed exactly by replay.
    pub fn apply_event(&mut self, seq: u64, agent_id: &str, source: &str, t: Timestamp, kind: &EventKind) {
        let t = t.as_millisecond();
        let i = self.agent_index(agent_id);
        let source = self.intern_source(source);
        let code = self.state_code(i, &source, kind);
        let source_down = self.sources.get(&source).is_some_and(|healthy| !healthy);

        let late = t < self.agents[i].tracker.at_ms();
        self.record_history(i, HistoryItem { t, seq, source: source.clone(), kind: kind.clone() });
        self.now_ms = self.now_ms.max(t);

        // Without the full history a replay would drop events, so an agent
        // past the history limit keeps its live figures (flagged
        // approximate) and the late event applies at its last instant.
        if late && !self.agents[i].history_full {
            self.replay(i);
            return;
        }

        let entry = &mut self.agents[i];
        let ctx = context(&self.config, &entry.schedule, &entry.exceptions);
        entry.tracker.apply_event(&ctx, t, kind, code.as_ref(), &source, source_down, &mut self.scratch);
        self.flush_scratch(i);
        self.schedule_wake(i);
    }

    /// Applies a committed source health change.
    pub fn apply_source_health(&mut self, seq: u64, source: &str, healthy: bool, t: Timestamp) {
        let t = t.as_millisecond();
        let source = self.intern_source(source);
        self.sources.insert(source.clone(), healthy);
        self.health_log.push(HealthItem { t, seq, source: source.clone(), healthy });
        self.now_ms = self.now_ms.max(t);

        for i in 0..self.agents.len() {
            if self.agents[i].tracker.source() != Some(&source) {
                continue;
            }
            let entry = &mut self.agents[i];
            let ctx = context(&self.config, &entry.schedule, &entry.exceptions);
            entry.tracker.apply_source_health(&ctx, t, &source, healthy, &mut self.scratch);
            self.flush_scratch(i);
            self.schedule_wake(i);
        }
    }

    /// Returns whether a source is currently considered up (unknown sources
    /// are up).
    pub fn source_healthy(&self, source: &str) -> bool {
        self.sources.get(source).copied().unwrap_or(true)
    }

    /// Moves time forward, waking every agent with a boundary or alarm
    /// deadline at or before `now`.
    pub fn advance(&mut self, now: Timestamp) {
        let now = now.as_millisecond().max(self.now_ms);
        self.now_ms = now;

        while let Some(&Reverse((wake, i))) = self.wakes.peek() {
            if wake > now {
                break;
            }
            self.wakes.pop();
            if self.agents[i].wake_ms != Some(wake) {
                continue;
            }
            self.agents[i].wake_ms = None;

            let entry = &mut self.agents[i];
            let ctx = context(&self.config, &entry.schedule, &entry.exceptions);
            entry.tracker.advance_to(&ctx, wake, &mut self.scratch);
            self.flush_scratch(i);
            self.schedule_wake(i);
        }
    }

    /// Folds inputs before `from` into each agent's checkpoint and drops
    /// them, bounding memory to the retained window. Figures of days before
    /// `from` stay as they are.
    pub fn retain_from(&mut self, from: Timestamp) {
        let from = from.as_millisecond();
        if from <= self.retain_from_ms {
            return;
        }
        for i in 0..self.agents.len() {
            if self.agents[i].history_full {
                // A truncated history cannot rebuild the state at `from`;
                // the live state becomes the checkpoint and replays start
                // from it. Figures already flagged approximate stay so.
                let entry = &mut self.agents[i];
                entry.checkpoint = entry.tracker.clone();
                entry.history.clear();
                entry.history_full = false;
                continue;
            }
            let checkpoint = self.replay_until(i, from);
            let entry = &mut self.agents[i];
            entry.checkpoint = checkpoint;
            entry.history.retain(|item| item.t >= from);
        }

        // Keep the last health entry per source before `from`, so replays
        // that start there still know which sources were down.
        let mut last_before: HashMap<Arc<str>, HealthItem> = HashMap::new();
        for item in self.health_log.iter().filter(|h| h.t < from) {
            last_before.insert(item.source.clone(), item.clone());
        }
        self.health_log.retain(|h| h.t >= from);

        let mut carried: Vec<HealthItem> = last_before.into_values().collect();
        carried.sort_by_key(|h| (h.t, h.seq));
        carried.append(&mut self.health_log);
        self.health_log = carried;
        self.retain_from_ms = from;
    }

    /// Returns the live snapshot of one agent.
    pub fn snapshot(&self, agent_id: &str) -> Option<AgentSnapshot> {
        let entry = &self.agents[*self.index.get(agent_id)?];
        let tracker = &entry.tracker;
        let slot = tracker.slot().map(|s| *entry.schedule.slot(s));

        let today = match slot {
            Some(slot) => entry.schedule.shift(slot.shift).day,
            None => local_date(self.now_ms, &self.config.tz),
        };
        let adherence_percent_today = tracker.days().get(&today).and_then(DayFigures::adherence_percent);
        let source_healthy = tracker.source().is_none_or(|s| self.source_healthy(s));

        Some(AgentSnapshot {
            agent_id: entry.id.clone(),
            group: tracker.group(),
            group_since: (tracker.group_since_ms() > self.retain_from_ms).then(|| ts(tracker.group_since_ms())),
            state_code: tracker.state_code().cloned(),
            activity: slot.map(|s| s.activity),
            activity_end: slot.map(|s| ts(s.end_ms)),
            status: tracker.status(),
            status_since: ts(tracker.status_since_ms()),
            out_since: tracker.out_since_ms().map(ts),
            alarm: tracker.alarm().is_some(),
            call: tracker.current_call().map(|c| CallSnapshot {
                call_id: c.call_id.clone(),
                direction: c.direction,
                since: ts(c.since_ms),
                held: c.held,
                connected: c.connected,
            }),
            device_registered: tracker.device_registered(),
            source: tracker.source().cloned(),
            source_healthy,
            adherence_percent_today,
        })
    }

    /// Returns an agent's figures for a local day as of the engine's now.
    pub fn agent_day(&self, agent_id: &str, day: Date) -> Option<DayFigures> {
        let entry = &self.agents[*self.index.get(agent_id)?];
        let ctx = context(&self.config, &entry.schedule, &entry.exceptions);
        let mut figures = entry.tracker.figures_as_of(&ctx, day, self.now_ms);
        if entry.history_full {
            figures.approximate = true;
        }
        Some(figures)
    }

    /// Returns an agent's figures for a local day as accounted so far, up to
    /// the agent's last input or boundary rather than to now. Cheap: nothing
    /// is cloned or advanced, so it suits periodic summaries.
    pub fn agent_day_settled(&self, agent_id: &str, day: Date) -> Option<DayFigures> {
        let entry = &self.agents[*self.index.get(agent_id)?];
        Some(entry.tracker.days().get(&day).copied().unwrap_or_default())
    }

    /// Returns the active alarms.
    pub fn active_alarms(&self) -> Vec<(Arc<str>, AlarmState)> {
        self.agents.iter().filter_map(|a| a.tracker.alarm().map(|alarm| (a.id.clone(), alarm.clone()))).collect()
    }

    fn intern_source(&mut self, source: &str) -> Arc<str> {
        match self.sources.get_key_value(source) {
            Some((key, _)) => key.clone(),
            None => {
                let key: Arc<str> = Arc::from(source);
                self.sources.insert(key.clone(), true);
                key
            }
        }
    }

    /// Returns a `State` event's code as a shared string with its
    /// configured group, reporting an unknown code.
    fn state_code(&mut self, i: usize, source: &Arc<str>, kind: &EventKind) -> Option<(Option<StateGroup>, Arc<str>)> {
        let EventKind::State { code } = kind else {
            return None;
        };
        if let Some((group, shared)) = self.codes.get(code.as_str()) {
            return Some((Some(*group), shared.clone()));
        }
        self.outputs.push(Output::UnknownStateCode {
            agent: self.agents[i].id.clone(),
            code: code.clone(),
            source: source.clone(),
        });
        Some((None, Arc::from(code.as_str())))
    }

    /// Returns the index of an agent, adding it if it is new.
    fn agent_index(&mut self, agent_id: &str) -> usize {
        match self.index.get(agent_id) {
            Some(&i) => i,
            None => {
                self.ensure_agent(agent_id);
                self.agents.len() - 1
            }
        }
    }

    fn record_history(&mut self, i: usize, item: HistoryItem) {
        let limit = self.config.history_limit;
        let entry = &mut self.agents[i];
        if entry.history.len() >= limit {
            if !entry.history_full {
                entry.history_full = true;
                let day = local_date(item.t, &self.config.tz);
                entry.tracker.mark_approximate(day);
            }
            return;
        }
        // Keep history sorted by (t, seq). Events almost always arrive in
        // order, so the common case is a push; late ones are inserted.
        let in_order = entry.history.last().is_none_or(|last| (last.t, last.seq) <= (item.t, item.seq));
        if in_order {
            entry.history.push(item);
        } else {
            let position = entry.history.partition_point(|h| (h.t, h.seq) <= (item.t, item.seq));
            entry.history.insert(position, item);
        }
    }

    /// Rebuilds an agent's tracker from its checkpoint and history, up to
    /// the engine's now, and reports the result as a change. An agent past
    /// the history limit is re-derived from its live state instead.
    fn replay(&mut self, i: usize) {
        if self.agents[i].history_full {
            let entry = &mut self.agents[i];
            let ctx = context(&self.config, &entry.schedule, &entry.exceptions);
            entry.tracker.refresh(&ctx, &mut self.scratch);
            self.flush_scratch(i);
            self.schedule_wake(i);
            return;
        }
        let before_alarm = self.agents[i].tracker.alarm().cloned();
        let tracker = self.replay_until(i, self.now_ms + 1);
        let after_alarm = tracker.alarm().cloned();
        self.agents[i].tracker = tracker;

        let id = self.agents[i].id.clone();
        match (before_alarm, after_alarm) {
            (Some(old), None) => self.outputs.push(Output::AlarmCleared { agent: id.clone(), alarm: old }),
            (None, Some(new)) => self.outputs.push(Output::AlarmRaised { agent: id.clone(), alarm: new }),
            (Some(old), Some(new)) if old.out_since_ms != new.out_since_ms => {
                self.outputs.push(Output::AlarmCleared { agent: id.clone(), alarm: old });
                self.outputs.push(Output::AlarmRaised { agent: id.clone(), alarm: new });
            }
            _ => {}
        }
        self.outputs.push(Output::AgentChanged { agent: id });
        self.schedule_wake(i);
    }

    /// Returns the tracker an agent has once every input before `until` is
    /// applied, computed from its checkpoint, its history and the health
    /// log. Time is advanced to `until`, but never past the engine's now.
    fn replay_until(&self, i: usize, until: i64) -> Tracker {
        let entry = &self.agents[i];
        let ctx = context(&self.config, &entry.schedule, &entry.exceptions);
        let mut tracker = entry.checkpoint.clone();
        let mut ignored = Vec::new();
        tracker.refresh(&ctx, &mut ignored);

        let mut health_now: HashMap<&Arc<str>, bool> = HashMap::new();
        let mut health = self.health_log.iter().peekable();
        for item in entry.history.iter().filter(|h| h.t < until) {
            while let Some(h) = health.next_if(|h| (h.t, h.seq) < (item.t, item.seq)) {
                health_now.insert(&h.source, h.healthy);
                tracker.apply_source_health(&ctx, h.t, &h.source, h.healthy, &mut ignored);
            }
            let code = match &item.kind {
                EventKind::State { code } => Some(match self.codes.get(code.as_str()) {
                    Some((group, shared)) => (Some(*group), shared.clone()),
                    None => (None, Arc::from(code.as_str())),
                }),
                _ => None,
            };
            let down = health_now.get(&item.source).is_some_and(|healthy| !healthy);
            tracker.apply_event(&ctx, item.t, &item.kind, code.as_ref(), &item.source, down, &mut ignored);
        }
        for h in health.filter(|h| h.t < until) {
            tracker.apply_source_health(&ctx, h.t, &h.source, h.healthy, &mut ignored);
        }
        tracker.advance_to(&ctx, until.min(self.now_ms.max(self.retain_from_ms)).max(tracker.at_ms()), &mut ignored);
        tracker
    }

    fn flush_scratch(&mut self, i: usize) {
        let id = &self.agents[i].id;
        let mut changed = false;
        for output in self.scratch.drain(..) {
            match output {
                TrackerOutput::Changed => changed = true,
                TrackerOutput::AlarmRaised(alarm) => {
                    self.outputs.push(Output::AlarmRaised { agent: id.clone(), alarm });
                    changed = true;
                }
                TrackerOutput::AlarmCleared(alarm) => {
                    self.outputs.push(Output::AlarmCleared { agent: id.clone(), alarm });
                    changed = true;
                }
            }
        }
        if changed {
            self.outputs.push(Output::AgentChanged { agent: id.clone() });
        }
    }

    fn schedule_wake(&mut self, i: usize) {
        let entry = &mut self.agents[i];
        let ctx = context(&self.config, &entry.schedule, &entry.exceptions);
        let wake = entry.tracker.next_wake_ms(&ctx);
        if wake != entry.wake_ms {
            entry.wake_ms = wake;
            if let Some(wake) = wake {
                self.wakes.push(Reverse((wake, i)));
            }
        }
    }
}

/// Returns what a tracker reads, from the engine's settings and one
/// agent's schedule and exceptions.
fn context<'a>(config: &'a EngineConfig, schedule: &'a Schedule, exceptions: &'a [(i64, i64)]) -> Context<'a> {
    Context { rules: &config.rules, tz: &config.tz, schedule, exceptions }
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}
