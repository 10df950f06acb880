//! Behaviour simulator: agents who log in, take calls, go on break and log
//! out against their roster, reported as platform feed events.
//!
//! The simulator is sans-IO. The caller passes the current instant to
//! [`Simulator::advance`] and gets every event that happened since the
//! previous call. It keeps no clock and opens no socket, so a test can run a
//! whole day in a loop and the same seed gives the same events.
//!
//! Each agent's roster is cut into shifts: runs of activities with no gap
//! longer than [`SHIFT_GAP`]. A shift is simulated in one go, when the
//! previous one has been handed out, with a random generator seeded from the
//! simulator seed, the agent and the shift start. Events therefore do not
//! depend on how often the caller advances, and a simulator started in the
//! middle of the day produces the same afternoon as one started in the
//! morning.
//!
//! The simulator does not model a call queue: every agent draws its own
//! calls, so the number of calls follows the number of agents on phone duty.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use jiff::Timestamp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::domain::{ActivityType, CallDirection, EventKind};

use super::site::Site;

/// State codes the simulated platform sends, as the default configuration
/// maps them.
pub mod codes {
    /// Ready for calls.
    pub const AVAILABLE: &str = "Beschikbaar";
    /// After-call work (wrap-up).
    pub const WRAP_UP: &str = "Nawerk";
    pub const BREAK: &str = "Pauze";
    pub const LUNCH: &str = "Lunch";
    pub const TRAINING: &str = "Training";
    /// Meeting; also used for a team day.
    pub const MEETING: &str = "Overleg";
    pub const COACHING: &str = "Coaching";
    /// Technical problem.
    pub const TECHNICAL: &str = "Storing";
    /// A code the default configuration does not map, sent now and then to
    /// show how floorwatch handles an unknown code.
    pub const UNKNOWN: &str = "Prive";

    /// Every code the simulator sends.
    pub const ALL: [&str; 9] = [AVAILABLE, WRAP_UP, BREAK, LUNCH, TRAINING, MEETING, COACHING, TECHNICAL, UNKNOWN];
}

/// One event of the simulated platform feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    pub time: Timestamp,
    /// The agent's feed user id (`u-1017`), or its agent id when the agent
    /// has no feed user id.
    pub agent_ref: String,
    pub kind: EventKind,
    /// Unique in one simulator run, numbered in the order events are
    /// returned (`sim-000001`).
    pub event_id: String,
}

/// A scheduled shift the agent did not show up for at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoShow {
    pub agent_ref: String,
    pub shift_start: Timestamp,
}

/// Simulates the agents of a [`Site`] from a start instant on.
///
/// Invariant: events come out of [`Simulator::advance`] in time order, and
/// every event time is after the previous call's `now`. Each agent's events
/// strictly increase in time, except the catch-up events, which all have
/// the start instant. The caller's duty is to pass a
/// non-decreasing `now`; an earlier `now` returns nothing.
#[derive(Debug)]
pub struct Simulator {
    seed: u64,
    /// Start instant in milliseconds since the Unix epoch. Events before it
    /// are folded into the state each agent has at the start.
    start: i64,
    agents: Vec<AgentTimeline>,
    /// The next pending event of every agent that has one, keyed by time and
    /// agent index so that ties come out in a fixed order.
    queue: BinaryHeap<Reverse<(i64, usize)>>,
    /// Every event up to and including this millisecond has been returned.
    returned_until: i64,
    /// Number of the last event returned.
    event_count: u64,
    no_shows: Vec<NoShow>,
}

/// One agent's shifts and the events simulated but not yet returned.
#[derive(Debug)]
struct AgentTimeline {
    agent_ref: String,
    shifts: Vec<Shift>,
    /// Index of the next shift to simulate.
    next_shift: usize,
    pending: VecDeque<(i64, EventKind)>,
    /// Time of the agent's last simulated event, so the next shift never
    /// starts before it.
    last_event: i64,
}

/// Activities without a gap longer than [`SHIFT_GAP`], all times in
/// milliseconds since the Unix epoch.
#[derive(Debug, Clone)]
struct Shift {
    start: i64,
    end: i64,
    /// Back to back from `start` to `end`; a gap inside the shift is a
    /// [`ActivityType::Break`].
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start: i64,
    activity: ActivityType,
}

/// An interruption planned for a shift, happening at the first idle moment
/// on phone duty after `at`.
#[derive(Debug, Clone, Copy)]
struct Episode {
    at: i64,
    kind: EpisodeKind,
    duration: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EpisodeKind {
    /// The softphone loses its registration, as on a bad home connection.
    Unreachable,
    /// The agent sets the technical-problem code for a while.
    Technical,
    /// The agent sets a code the configuration does not know.
    UnknownCode,
}

/// An agent's feed state at one instant, built from the events before it.
#[derive(Debug, Default)]
struct FoldedState {
    logged_in: bool,
    code: Option<String>,
    unregistered: bool,
    call: Option<FoldedCall>,
}

#[derive(Debug)]
struct FoldedCall {
    call_id: String,
    direction: CallDirection,
    connected: bool,
    held: bool,
}

/// The simulation of one shift: its random generator and the events so far.
struct ShiftRun {
    rng: StdRng,
    events: Vec<(i64, EventKind)>,
    /// Time of the last event; every new event is at least 1 ms later.
    last: i64,
    call_prefix: String,
    call_count: u32,
    episodes: VecDeque<Episode>,
}

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;

/// Activities further apart than this are separate shifts: the agent logs
/// out in between.
const SHIFT_GAP: i64 = 45 * MINUTE;

/// Shifts that ended this long before the start cannot reach it with a late
/// logout or a long last call, so they are not simulated.
const SHIFT_TAIL: i64 = 2 * 60 * MINUTE;

/// Chance that an agent misses a whole shift.
const NO_SHOW_CHANCE: f64 = 0.02;
/// Chance that an agent misses the first 30–120 min of a shift.
const LATE_SHOW_CHANCE: f64 = 0.03;
/// Chance of a login 5–15 min late; other logins are 5 min early to 3 min
/// late.
const LATE_LOGIN_CHANCE: f64 = 0.15;
const EARLY_LOGOUT_CHANCE: f64 = 0.10;
const LATE_LOGOUT_CHANCE: f64 = 0.05;

/// Chances per shift of each episode.
const UNREACHABLE_CHANCE: f64 = 0.05;
const TECHNICAL_CHANCE: f64 = 0.03;
const UNKNOWN_CODE_CHANCE: f64 = 0.012;

/// Mean idle time on phone duty before the next call rings. With the handle
/// and wrap-up times below an agent takes about seven calls an hour.
const MEAN_IDLE: f64 = 110.0 * SECOND as f64;
const OUTBOUND_CHANCE: f64 = 0.15;
/// Handle time: log-normal with this median and shape, clipped to 30 s–30 min.
const HANDLE_MEDIAN: f64 = 270.0 * SECOND as f64;
const HANDLE_SIGMA: f64 = 0.55;
const HOLD_CHANCE: f64 = 0.18;

// === impl Simulator ===

impl Simulator {
    /// Creates a simulator for `site` whose first [`Simulator::advance`]
    /// returns the state of every agent working at `start` (login, state
    /// code, device and call) stamped at `start`, followed by what happens
    /// after it.
    ///
    /// Activities of agents missing from the directory, sent-home
    /// activities and activities that end before they start are ignored.
    pub fn new(site: &Site, seed: u64, start: Timestamp) -> Simulator {
        let start = start.as_millisecond();

        let mut index_of = HashMap::new();
        let mut agents = Vec::with_capacity(site.agents.len());
        for (index, agent) in site.agents.iter().enumerate() {
            index_of.insert(agent.id.as_str(), index);
            let agent_ref = agent.platform_ids.iter().find(|id| id.starts_with("u-")).unwrap_or(&agent.id).clone();
            agents.push(AgentTimeline {
                agent_ref,
                shifts: Vec::new(),
                next_shift: 0,
                pending: VecDeque::new(),
                last_event: i64::MIN,
            });
        }

        let mut per_agent: Vec<Vec<(i64, i64, ActivityType)>> = vec![Vec::new(); agents.len()];
        let mut ignored = 0usize;
        for activity in &site.activities {
            let from = activity.start.as_millisecond();
            let to = activity.end.as_millisecond();
            match index_of.get(activity.agent_id.as_str()) {
                Some(&index) if to > from && activity.activity != ActivityType::SentHome => {
                    per_agent[index].push((from, to, activity.activity));
                }
                _ => ignored += 1,
            }
        }
        if ignored > 0 {
            tracing::debug!(ignored, "simulator ignored scheduled activities it cannot act on");
        }
        for (agent, mut activities) in agents.iter_mut().zip(per_agent) {
            activities.sort_by_key(|&(from, _, _)| from);
            agent.shifts = cut_shifts(&activities);
        }

        let mut simulator = Simulator {
            seed,
            start,
            agents,
            queue: BinaryHeap::new(),
            returned_until: start.saturating_sub(1),
            event_count: 0,
            no_shows: Vec::new(),
        };
        for index in 0..simulator.agents.len() {
            simulator.load_next_shift(index);
            simulator.enqueue(index);
        }
        simulator
    }

    /// Returns, in time order, every event with a time after the previous
    /// call's `now` (or at or after the start, on the first call) up to and
    /// including `now`. A `now` earlier than the previous one returns
    /// nothing.
    pub fn advance(&mut self, now: Timestamp) -> Vec<SimEvent> {
        let now = now.as_millisecond();
        let mut events = Vec::new();
        if now <= self.returned_until {
            return events;
        }

        while let Some(&Reverse((time, index))) = self.queue.peek() {
            if time > now {
                break;
            }
            self.queue.pop();

            if let Some((time, kind)) = self.agents[index].pending.pop_front() {
                // Times are roster timestamps plus at most hours, so only a
                // roster near the year 9999 limit of jiff drops an event here.
                if let Ok(time) = Timestamp::from_millisecond(time) {
                    self.event_count += 1;
                    events.push(SimEvent {
                        time,
                        agent_ref: self.agents[index].agent_ref.clone(),
                        kind,
                        event_id: format!("sim-{:06}", self.event_count),
                    });
                }
            }
            if self.agents[index].pending.is_empty() {
                self.load_next_shift(index);
            }
            self.enqueue(index);
        }

        self.returned_until = now;
        events
    }

    /// Returns the time of the next event, or `None` when every shift has
    /// been played out.
    pub fn next_event_time(&self) -> Option<Timestamp> {
        let &Reverse((time, _)) = self.queue.peek()?;
        Timestamp::from_millisecond(time).ok()
    }

    /// Returns the shifts simulated so far that the agent missed entirely.
    pub fn no_shows(&self) -> &[NoShow] {
        &self.no_shows
    }

    fn enqueue(&mut self, index: usize) {
        if let Some(&(time, _)) = self.agents[index].pending.front() {
            self.queue.push(Reverse((time, index)));
        }
    }

    /// Simulates the agent's shifts in order until one produces events at or
    /// after the start, and queues those events. Events before the start
    /// become the catch-up events stamped at the start.
    fn load_next_shift(&mut self, index: usize) {
        while self.agents[index].pending.is_empty() {
            let agent = &mut self.agents[index];
            let Some(shift) = agent.shifts.get(agent.next_shift) else {
                return;
            };
            agent.next_shift += 1;
            if shift.end.saturating_add(SHIFT_TAIL) < self.start {
                continue;
            }

            let seed = shift_seed(self.seed, index, shift.start);
            let Some(events) = simulate_shift(shift, seed, &agent.agent_ref, agent.last_event) else {
                if let Ok(shift_start) = Timestamp::from_millisecond(shift.start) {
                    self.no_shows.push(NoShow { agent_ref: agent.agent_ref.clone(), shift_start });
                }
                continue;
            };

            let split = events.partition_point(|&(time, _)| time < self.start);
            let (before, after) = events.split_at(split);
            if !before.is_empty() {
                let mut state = FoldedState::default();
                for (_, kind) in before {
                    state.apply(kind);
                }
                // The catch-up events all share the start instant, so the
                // first advance returns them together.
                for kind in state.catch_up() {
                    agent.last_event = self.start;
                    agent.pending.push_back((self.start, kind));
                }
            }
            for (time, kind) in after.iter().cloned() {
                let time = time.max(agent.last_event.saturating_add(1));
                agent.last_event = time;
                agent.pending.push_back((time, kind));
            }
        }
    }
}

/// Cuts an agent's activities, sorted by start, into shifts. Overlapping
/// activities are trimmed to start where the previous one ends.
fn cut_shifts(activities: &[(i64, i64, ActivityType)]) -> Vec<Shift> {
    let mut shifts: Vec<Shift> = Vec::new();
    for &(from, to, activity) in activities {
        match shifts.last_mut() {
            Some(shift) if from <= shift.end + SHIFT_GAP => {
                if to <= shift.end {
                    continue;
                }
                if from > shift.end {
                    shift.segments.push(Segment { start: shift.end, activity: ActivityType::Break });
                }
                shift.segments.push(Segment { start: from.max(shift.end), activity });
                shift.end = to;
            }
            _ => shifts.push(Shift { start: from, end: to, segments: vec![Segment { start: from, activity }] }),
        }
    }
    shifts
}

/// Mixes the simulator seed with the agent and the shift, so each shift has
/// its own reproducible random stream.
fn shift_seed(seed: u64, agent_index: usize, shift_start: i64) -> u64 {
    let mut state = splitmix64(seed);
    state = splitmix64(state ^ agent_index as u64);
    splitmix64(state ^ shift_start as u64)
}

/// One step of the SplitMix64 generator, used here as a mixing function.
fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Returns the state code an agent sets for an activity.
fn code_for(activity: ActivityType) -> &'static str {
    match activity {
        ActivityType::PhoneDuty | ActivityType::ExtraHours => codes::AVAILABLE,
        ActivityType::Break | ActivityType::SentHome => codes::BREAK,
        ActivityType::Lunch => codes::LUNCH,
        ActivityType::Training => codes::TRAINING,
        ActivityType::Meeting | ActivityType::TeamDay => codes::MEETING,
        ActivityType::Coaching => codes::COACHING,
    }
}

fn takes_calls(activity: ActivityType) -> bool {
    matches!(activity, ActivityType::PhoneDuty | ActivityType::ExtraHours)
}

/// Simulates one shift; returns its events in time order, or `None` when
/// the agent does not show up. Every event is later than `after`.
fn simulate_shift(shift: &Shift, seed: u64, agent_ref: &str, after: i64) -> Option<Vec<(i64, EventKind)>> {
    let rng = StdRng::seed_from_u64(seed);
    let call_prefix = match Timestamp::from_millisecond(shift.start) {
        Ok(start) => format!("call-{agent_ref}-{}", start.strftime("%Y%m%dT%H%M")),
        Err(_) => format!("call-{agent_ref}-{}", shift.start),
    };
    let mut run =
        ShiftRun { rng, events: Vec::new(), last: after, call_prefix, call_count: 0, episodes: VecDeque::new() };

    let login = run.draw_login(shift)?;
    let logout = run.draw_logout(shift, login);
    run.plan_episodes(login, logout);

    // The instants the agent switches to another state code, with the
    // agent's own punctuality; each at least a minute after the one before.
    // Activities with the same code (a meeting, then a team day) need no
    // switch.
    let mut steps: Vec<(i64, ActivityType)> = vec![(shift.start, shift.segments[0].activity)];
    for pair in shift.segments.windows(2) {
        if code_for(pair[0].activity) == code_for(pair[1].activity) {
            continue;
        }
        let planned = pair[1].start + run.draw_switch_delay(pair[0].activity, pair[1].activity);
        let previous = steps.last().map_or(planned, |&(at, _)| at);
        steps.push((planned.max(previous + MINUTE), pair[1].activity));
    }

    let mut current = steps
        .iter()
        .take_while(|&&(at, _)| at <= login)
        .last()
        .map_or(shift.segments[0].activity, |&(_, activity)| activity);

    let logged_in = run.push(login, EventKind::Login);
    let settle = run.between(800, 3_000);
    let mut time = run.push(logged_in + settle, state(code_for(current)));

    for &(at, next) in steps[1..].iter().filter(|&&(at, _)| at > login && at < logout) {
        time = run.occupy(current, time, at);
        time = run.push(time, state(code_for(next)));
        current = next;
    }
    time = run.occupy(current, time, logout);
    run.push(time, EventKind::Logout);

    Some(run.events)
}

fn state(code: &str) -> EventKind {
    EventKind::State { code: code.to_string() }
}

// === impl ShiftRun ===

impl ShiftRun {
    /// Adds an event at `at`, or 1 ms after the previous event if that is
    /// later; returns the time used.
    fn push(&mut self, at: i64, kind: EventKind) -> i64 {
        let at = at.max(self.last.saturating_add(1));
        self.events.push((at, kind));
        self.last = at;
        at
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        if high <= low { low } else { self.rng.random_range(low..=high) }
    }

    /// Draws when the agent logs in, or `None` for a no-show.
    fn draw_login(&mut self, shift: &Shift) -> Option<i64> {
        let roll: f64 = self.rng.random();
        let offset = if roll < NO_SHOW_CHANCE {
            return None;
        } else if roll < NO_SHOW_CHANCE + LATE_SHOW_CHANCE {
            self.between(30 * MINUTE, 120 * MINUTE)
        } else if self.rng.random_bool(LATE_LOGIN_CHANCE) {
            self.between(5 * MINUTE, 15 * MINUTE)
        } else {
            self.between(-5 * MINUTE, 3 * MINUTE)
        };

        let login = shift.start + offset;
        // Someone who would arrive in the last quarter hour stays away.
        if login > shift.end - 15 * MINUTE {
            return None;
        }
        Some(login)
    }

    fn draw_logout(&mut self, shift: &Shift, login: i64) -> i64 {
        let roll: f64 = self.rng.random();
        let offset = if roll < EARLY_LOGOUT_CHANCE {
            -self.between(5 * MINUTE, 20 * MINUTE)
        } else if roll < EARLY_LOGOUT_CHANCE + LATE_LOGOUT_CHANCE {
            self.between(2 * MINUTE, 8 * MINUTE)
        } else {
            self.between(-2 * MINUTE, 3 * MINUTE)
        };
        (shift.end + offset).max(login + 10 * MINUTE)
    }

    /// Draws how far from the scheduled boundary the agent actually
    /// switches: breaks tend to start and end late, other switches are
    /// within a minute or so.
    fn draw_switch_delay(&mut self, from: ActivityType, to: ActivityType) -> i64 {
        let roll: f64 = self.rng.random();
        let is_pause = |a: ActivityType| matches!(a, ActivityType::Break | ActivityType::Lunch);
        if is_pause(to) {
            match roll {
                r if r < 0.70 => self.between(-MINUTE, MINUTE),
                r if r < 0.95 => self.between(2 * MINUTE, 6 * MINUTE),
                _ => -self.between(MINUTE, 3 * MINUTE),
            }
        } else if is_pause(from) {
            match roll {
                r if r < 0.65 => self.between(-MINUTE, MINUTE),
                r if r < 0.95 => self.between(MINUTE, 6 * MINUTE),
                _ => -self.between(0, 2 * MINUTE),
            }
        } else {
            self.between(-MINUTE, 90 * SECOND)
        }
    }

    fn plan_episodes(&mut self, login: i64, logout: i64) {
        let chances = [
            (EpisodeKind::Unreachable, UNREACHABLE_CHANCE, MINUTE, 10 * MINUTE),
            (EpisodeKind::Technical, TECHNICAL_CHANCE, 2 * MINUTE, 8 * MINUTE),
            (EpisodeKind::UnknownCode, UNKNOWN_CODE_CHANCE, 2 * MINUTE, 5 * MINUTE),
        ];
        let mut episodes = Vec::new();
        for (kind, chance, shortest, longest) in chances {
            if self.rng.random_bool(chance) {
                let at = self.between(login, logout);
                let duration = self.between(shortest, longest);
                episodes.push(Episode { at, kind, duration });
            }
        }
        episodes.sort_by_key(|episode| episode.at);
        self.episodes = episodes.into();
    }

    /// Spends an activity from `from` until the agent switches at `until`.
    /// Returns when the agent is free to switch, which is later than
    /// `until` when a call or episode runs over.
    fn occupy(&mut self, activity: ActivityType, from: i64, until: i64) -> i64 {
        if takes_calls(activity) { self.take_calls(from, until) } else { from.max(until) }
    }

    /// Takes calls while available until `until`. The agent is available
    /// (state code set) at `from`, and is so again after every call and
    /// episode, so no call rings in another state.
    fn take_calls(&mut self, from: i64, until: i64) -> i64 {
        let mut time = from;
        loop {
            let idle = exponential(&mut self.rng, MEAN_IDLE).max(5.0 * SECOND as f64) as i64;
            let ring_at = time + idle;

            if let Some(episode) = self.episodes.front().copied()
                && episode.at <= ring_at
                && episode.at.max(time) < until
            {
                self.episodes.pop_front();
                time = self.play_episode(episode, time.max(episode.at), until);
                if time >= until {
                    return time;
                }
                continue;
            }

            if ring_at >= until - 5 * SECOND {
                return time.max(until);
            }

            let wrap_end = self.play_call(ring_at);
            if wrap_end >= until {
                return wrap_end;
            }
            time = self.push(wrap_end, state(codes::AVAILABLE));
        }
    }

    /// Plays one call from ringing to wrap-up; returns when wrap-up ends.
    fn play_call(&mut self, ring_at: i64) -> i64 {
        self.call_count += 1;
        let call_id = format!("{}-{:03}", self.call_prefix, self.call_count);
        let direction =
            if self.rng.random_bool(OUTBOUND_CHANCE) { CallDirection::Outbound } else { CallDirection::Inbound };

        let ringing = self.push(ring_at, EventKind::CallRinging { call_id: call_id.clone(), direction });
        let ring = self.between(5 * SECOND, 20 * SECOND);
        let connected = self.push(ringing + ring, EventKind::CallStart { call_id: call_id.clone(), direction });

        let handle = log_normal(&mut self.rng, HANDLE_MEDIAN, HANDLE_SIGMA)
            .clamp(30.0 * SECOND as f64, 30.0 * MINUTE as f64) as i64;
        if handle >= 90 * SECOND && self.rng.random_bool(HOLD_CHANCE) {
            let hold_at = connected + handle * self.rng.random_range(30..=60) / 100;
            let longest = (connected + handle - 10 * SECOND - hold_at).min(90 * SECOND);
            if longest >= 20 * SECOND {
                let hold = self.between(20 * SECOND, longest);
                let held = self.push(hold_at, EventKind::CallHold { call_id: call_id.clone() });
                self.push(held + hold, EventKind::CallResume { call_id: call_id.clone() });
            }
        }
        let ended = self.push(connected + handle, EventKind::CallEnd { call_id });

        let wrap_start = ended + self.between(200, 800);
        let wrap_start = self.push(wrap_start, state(codes::WRAP_UP));
        wrap_start + self.between(30 * SECOND, 120 * SECOND)
    }

    /// Plays an episode starting at `at`; returns when the agent is free
    /// again. The agent is available again at the end unless the episode
    /// ran up to `until`, when the caller sets the next state.
    fn play_episode(&mut self, episode: Episode, at: i64, until: i64) -> i64 {
        let mut time = match episode.kind {
            EpisodeKind::Unreachable => {
                let lost = self.push(at, EventKind::Device { registered: false });
                let back = self.push(lost + episode.duration, EventKind::Device { registered: true });
                if self.rng.random_bool(0.4) {
                    let checking = back + self.between(2 * SECOND, 10 * SECOND);
                    let checking = self.push(checking, state(codes::TECHNICAL));
                    checking + self.between(MINUTE, 4 * MINUTE)
                } else {
                    back + self.between(2 * SECOND, 10 * SECOND)
                }
            }
            EpisodeKind::Technical => {
                let set = self.push(at, state(codes::TECHNICAL));
                set + episode.duration
            }
            EpisodeKind::UnknownCode => {
                let set = self.push(at, state(codes::UNKNOWN));
                set + episode.duration
            }
        };
        if time < until {
            time = self.push(time, state(codes::AVAILABLE));
        }
        time
    }
}

/// Draws from an exponential distribution with the given mean.
fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    let uniform: f64 = rng.random();
    -mean * (1.0 - uniform).ln()
}

/// Draws from a log-normal distribution with the given median and shape
/// (the standard deviation of the underlying normal), using Box–Muller.
fn log_normal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    median * (sigma * normal).exp()
}

// === impl FoldedState ===

impl FoldedState {
    fn apply(&mut self, kind: &EventKind) {
        match kind {
            EventKind::Login => {
                self.logged_in = true;
                self.code = None;
            }
            EventKind::Logout => *self = FoldedState::default(),
            EventKind::State { code } => self.code = Some(code.clone()),
            EventKind::CallRinging { call_id, direction } | EventKind::CallStart { call_id, direction } => {
                let connected = matches!(kind, EventKind::CallStart { .. });
                self.call =
                    Some(FoldedCall { call_id: call_id.clone(), direction: *direction, connected, held: false });
            }
            EventKind::CallHold { .. } => {
                if let Some(call) = &mut self.call {
                    call.held = true;
                }
            }
            EventKind::CallResume { .. } => {
                if let Some(call) = &mut self.call {
                    call.held = false;
                }
            }
            EventKind::CallEnd { .. } => self.call = None,
            EventKind::Device { registered } => self.unregistered = !registered,
        }
    }

    /// Returns the events that bring a fresh observer to this state: login,
    /// state code, lost registration and the call in progress.
    fn catch_up(self) -> Vec<EventKind> {
        let mut events = Vec::new();
        if !self.logged_in {
            return events;
        }
        events.push(EventKind::Login);
        if let Some(code) = self.code {
            events.push(EventKind::State { code });
        }
        if self.unregistered {
            events.push(EventKind::Device { registered: false });
        }
        if let Some(call) = self.call {
            let FoldedCall { call_id, direction, connected, held } = call;
            if connected {
                events.push(EventKind::CallStart { call_id: call_id.clone(), direction });
            } else {
                events.push(EventKind::CallRinging { call_id: call_id.clone(), direction });
            }
            if held {
                events.push(EventKind::CallHold { call_id });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests;
