//! The floor hub: the latest view of every agent, numbered changes, alarms
//! and team summaries, fanned out to any number of stream clients.
//!
//! The engine task is the only publisher. Publishing never waits for a
//! client: changes go into a bounded broadcast ring, and a client that falls
//! behind the ring catches up from the latest view per agent (coalescing)
//! instead of queueing every change. Memory per client is therefore bounded
//! by its stream buffer, whatever the client does.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use tokio::sync::{broadcast, watch};

use crate::adherence::{AgentSnapshot, AlarmState};

/// One agent as the floor shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorAgent {
    pub snapshot: AgentSnapshot,
    pub display_name: Arc<str>,
    pub team: Arc<str>,
}

/// A numbered change of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorChange {
    pub seq: u64,
    pub agent: FloorAgent,
}

/// An alarm raised or cleared.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmEvent {
    pub alarm_id: String,
    pub agent_id: Arc<str>,
    pub team: Arc<str>,
    pub alarm: AlarmState,
    pub raised: bool,
}

/// A configuration problem seen in live input.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Machine-readable kind, such as `unknown_state_code`.
    pub kind: &'static str,
    pub agent_id: Arc<str>,
    pub team: Arc<str>,
    pub source: Arc<str>,
    pub code: String,
    pub at: Timestamp,
}

/// Figures of one team at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamSummary {
    pub team: Arc<str>,
    pub agents: u32,
    pub logged_in: u32,
    pub available: u32,
    pub on_call: u32,
    pub wrap_up: u32,
    pub not_ready: u32,
    pub unreachable: u32,
    pub scheduled_now: u32,
    pub out_of_adherence: u32,
    pub alarms: u32,
    pub adherence_percent_today: Option<f64>,
}

/// Start of a subscription.
#[derive(Debug)]
pub enum SubscriptionStart {
    /// Every agent's latest change; `reason` is "initial" or
    /// "resume_window_passed".
    Snapshot { reason: &'static str, changes: Vec<Arc<FloorChange>> },
    /// The changes after the requested sequence number, from the retained
    /// window.
    Resumed { changes: Vec<Arc<FloorChange>> },
}

/// A client's handle on the change stream.
pub struct Subscription {
    pub start: SubscriptionStart,
    /// Highest sequence number covered by `start`; broadcast items at or
    /// below it are already reflected and must be skipped.
    pub high_water: u64,
    pub changes: broadcast::Receiver<Arc<FloorChange>>,
}

/// Result of a catch-up after a client fell behind.
pub struct CatchUp {
    pub changes: Vec<Arc<FloorChange>>,
    pub high_water: u64,
}

/// See the module documentation.
pub struct FloorHub {
    state: Mutex<HubState>,
    changes: broadcast::Sender<Arc<FloorChange>>,
    alarms: broadcast::Sender<Arc<AlarmEvent>>,
    notices: broadcast::Sender<Arc<Notice>>,
    teams: watch::Sender<Arc<BTreeMap<Arc<str>, TeamSummary>>>,
    retained_limit: usize,
}

struct HubState {
    seq: u64,
    latest: HashMap<Arc<str>, Arc<FloorChange>>,
    retained: VecDeque<Arc<FloorChange>>,
    active_alarms: BTreeMap<String, Arc<AlarmEvent>>,
}

// === impl FloorHub ===

impl FloorHub {
    /// Creates a hub that keeps `retained_limit` changes for resuming
    /// clients and a broadcast ring of `ring_capacity` changes. The first
    /// change gets `first_seq`; see [`first_seq_for`].
    pub fn new(retained_limit: usize, ring_capacity: usize, first_seq: u64) -> FloorHub {
        let (changes, _) = broadcast::channel(ring_capacity.max(16));
        let (alarms, _) = broadcast::channel(ring_capacity.max(16));
        let (notices, _) = broadcast::channel(256);
        let (teams, _) = watch::channel(Arc::new(BTreeMap::new()));
        FloorHub {
            state: Mutex::new(HubState {
                seq: first_seq.saturating_sub(1),
                latest: HashMap::new(),
                retained: VecDeque::new(),
                active_alarms: BTreeMap::new(),
            }),
            changes,
            alarms,
            notices,
            teams,
            retained_limit: retained_limit.max(1),
        }
    }

    /// Publishes the new view of an agent and returns its sequence number.
    pub fn publish(&self, agent: FloorAgent) -> u64 {
        let mut state = self.lock();
        state.seq += 1;
        let change = Arc::new(FloorChange { seq: state.seq, agent });
        state.latest.insert(change.agent.snapshot.agent_id.clone(), change.clone());
        if state.retained.len() == self.retained_limit {
            state.retained.pop_front();
        }
        state.retained.push_back(change.clone());
        // With no receivers no client is watching, which is not an error.
        let _ = self.changes.send(change);
        state.seq
    }

    /// Publishes an alarm raised or cleared.
    pub fn publish_alarm(&self, event: AlarmEvent) {
        let event = Arc::new(event);
        let mut state = self.lock();
        if event.raised {
            state.active_alarms.insert(event.alarm_id.clone(), event.clone());
        } else {
            state.active_alarms.remove(&event.alarm_id);
        }
        let _ = self.alarms.send(event);
    }

    /// Publishes a notice to alarm watchers connected now (notices are not
    /// kept for later clients).
    pub fn publish_notice(&self, notice: Notice) {
        let _ = self.notices.send(Arc::new(notice));
    }

    pub fn subscribe_notices(&self) -> broadcast::Receiver<Arc<Notice>> {
        self.notices.subscribe()
    }

    /// Replaces the team summaries; watchers see the new value.
    pub fn publish_teams(&self, summaries: BTreeMap<Arc<str>, TeamSummary>) {
        self.teams.send_if_modified(|current| {
            if **current == summaries {
                return false;
            }
            *current = Arc::new(summaries);
            true
        });
    }

    /// Starts a change subscription; see [`Subscription`].
    pub fn subscribe(&self, resume_after: Option<u64>) -> Subscription {
        let state = self.lock();
        let changes = self.changes.subscribe();
        let high_water = state.seq;

        let oldest = state.retained.front().map_or(high_water + 1, |c| c.seq);
        let start = match resume_after {
            Some(after) if after <= high_water && after + 1 >= oldest => SubscriptionStart::Resumed {
                changes: state.retained.iter().filter(|c| c.seq > after).cloned().collect(),
            },
            Some(after) if after == high_water => SubscriptionStart::Resumed { changes: Vec::new() },
            Some(_) => SubscriptionStart::Snapshot { reason: "resume_window_passed", changes: snapshot_of(&state) },
            None => SubscriptionStart::Snapshot { reason: "initial", changes: snapshot_of(&state) },
        };
        Subscription { start, high_water, changes }
    }

    /// Returns the latest change of every agent changed after `after`,
    /// ordered by sequence number, for a client that fell behind.
    pub fn catch_up(&self, after: u64) -> CatchUp {
        let state = self.lock();
        let mut changes: Vec<Arc<FloorChange>> = state.latest.values().filter(|c| c.seq > after).cloned().collect();
        changes.sort_by_key(|c| c.seq);
        CatchUp { changes, high_water: state.seq }
    }

    /// Returns the latest change of every agent.
    pub fn snapshot(&self) -> Vec<Arc<FloorChange>> {
        snapshot_of(&self.lock())
    }

    pub fn latest_seq(&self) -> u64 {
        self.lock().seq
    }

    pub fn subscribe_alarms(&self) -> (Vec<Arc<AlarmEvent>>, broadcast::Receiver<Arc<AlarmEvent>>) {
        let state = self.lock();
        let receiver = self.alarms.subscribe();
        (state.active_alarms.values().cloned().collect(), receiver)
    }

    pub fn active_alarms(&self) -> Vec<Arc<AlarmEvent>> {
        self.lock().active_alarms.values().cloned().collect()
    }

    pub fn watch_teams(&self) -> watch::Receiver<Arc<BTreeMap<Arc<str>, TeamSummary>>> {
        self.teams.subscribe()
    }

    /// Number of clients currently subscribed to changes.
    pub fn change_subscribers(&self) -> usize {
        self.changes.receiver_count()
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock leaves consistent data (every
        // update is a few assignments), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn snapshot_of(state: &HubState) -> Vec<Arc<FloorChange>> {
    let mut changes: Vec<Arc<FloorChange>> = state.latest.values().cloned().collect();
    changes.sort_by(|a, b| a.agent.snapshot.agent_id.cmp(&b.agent.snapshot.agent_id));
    changes
}

/// Returns the first sequence number of a run starting at `now`: the start
/// time in microseconds. A later run starts above every number an earlier
/// one can have reached (that would take more than one change per
/// microsecond), so a client resuming with a number from before a restart
/// gets a fresh snapshot instead of a wrong resume.
pub fn first_seq_for(now: Timestamp) -> u64 {
    u64::try_from(now.as_microsecond()).unwrap_or(1).max(1)
}

/// Returns the seconds an agent has been out of adherence at `now`.
pub fn out_of_adherence_seconds(snapshot: &AgentSnapshot, now: Timestamp) -> i64 {
    snapshot.out_since.map_or(0, |since| (now.as_second() - since.as_second()).max(0))
}

#[cfg(test)]
mod tests;
