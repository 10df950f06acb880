//! Runs the simulated site through whole days and checks that what comes
//! out looks like a real floor and obeys the simulator's own invariants.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::demo::site::{DEFAULT_AGENTS, generate_site};
use crate::domain::ScheduledActivity;
use crate::roster::rules::LabourRules;

const SEED: u64 = 42;

fn amsterdam() -> TimeZone {
    TimeZone::get("Europe/Amsterdam").expect("the bundled tzdb must contain Europe/Amsterdam")
}

fn monday() -> Date {
    date(2026, 12, 7)
}

fn local(day: Date, hour: i8, minute: i8) -> Timestamp {
    day.at(hour, minute, 0, 0)
        .to_zoned_datetime(amsterdam())
        .expect("a December 2026 local time must exist")
        .timestamp()
}

fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| generate_site(SEED, DEFAULT_AGENTS, monday(), &amsterdam(), &LabourRules::default()))
}

/// Advances a simulator from `from` to `to` in steps of `step`.
fn run(simulator: &mut Simulator, from: Timestamp, to: Timestamp, step: SignedDuration) -> Vec<SimEvent> {
    let mut events = Vec::new();
    let mut now = from;
    while now < to {
        now = now.checked_add(step).expect("a time in 2026 plus a step").min(to);
        events.extend(simulator.advance(now));
    }
    events
}

/// Monday 07:00–21:00 in 1-minute steps, simulated once for all tests.
fn day() -> &'static (Vec<SimEvent>, Vec<NoShow>) {
    static DAY: OnceLock<(Vec<SimEvent>, Vec<NoShow>)> = OnceLock::new();
    DAY.get_or_init(|| {
        let start = local(monday(), 7, 0);
        let mut simulator = Simulator::new(site(), SEED, start);
        let began = std::time::Instant::now();
        let mut events = simulator.advance(start);
        events.extend(run(&mut simulator, start, local(monday(), 21, 0), SignedDuration::from_mins(1)));
        eprintln!("simulated {} events in {:?}", events.len(), began.elapsed());
        (events, simulator.no_shows().to_vec())
    })
}

fn feed_id(agent_id: &str) -> String {
    let agent = site().agents.iter().find(|a| a.id == agent_id).expect("activity of a known agent");
    agent.platform_ids[1].clone()
}

fn monday_activities() -> impl Iterator<Item = &'static ScheduledActivity> {
    let (from, to) = (local(monday(), 0, 0), local(monday(), 23, 0));
    site().activities.iter().filter(move |a| a.start >= from && a.start < to)
}

fn events_by_agent() -> HashMap<&'static str, Vec<&'static SimEvent>> {
    let mut map: HashMap<&str, Vec<&SimEvent>> = HashMap::new();
    for event in &day().0 {
        map.entry(event.agent_ref.as_str()).or_default().push(event);
    }
    map
}

#[test]
fn same_seed_gives_same_events() {
    let start = local(monday(), 7, 0);
    let end = local(monday(), 12, 0);
    let mut first = Simulator::new(site(), SEED, start);
    let mut second = Simulator::new(site(), SEED, start);
    let by_minute = run(&mut first, start, end, SignedDuration::from_mins(1));
    let by_quarter = run(&mut second, start, end, SignedDuration::from_mins(15));
    assert!(!by_minute.is_empty());
    assert_eq!(by_minute, by_quarter);
}

#[test]
fn other_seed_gives_other_events() {
    let start = local(monday(), 7, 0);
    let end = local(monday(), 10, 0);
    let mut first = Simulator::new(site(), SEED, start);
    let mut second = Simulator::new(site(), SEED + 1, start);
    let first = run(&mut first, start, end, SignedDuration::from_mins(5));
    let second = run(&mut second, start, end, SignedDuration::from_mins(5));
    assert_ne!(first, second);
}

#[test]
fn events_are_time_ordered() {
    let events = &day().0;
    for pair in events.windows(2) {
        assert!(pair[0].time <= pair[1].time, "{:?} before {:?}", pair[0], pair[1]);
    }
}

#[test]
fn agent_events_strictly_increase() {
    for (agent, events) in events_by_agent() {
        for pair in events.windows(2) {
            assert!(pair[0].time < pair[1].time, "{agent}: {:?} then {:?}", pair[0], pair[1]);
        }
    }
}

#[test]
fn event_ids_are_unique() {
    let events = &day().0;
    let ids: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), events.len());
    assert_eq!(events[0].event_id, "sim-000001");
}

#[test]
fn calls_per_agent_hour_are_plausible() {
    let calls = day().0.iter().filter(|e| matches!(e.kind, EventKind::CallStart { .. })).count();
    let phone_minutes: i64 = monday_activities()
        .filter(|a| a.activity == ActivityType::PhoneDuty)
        .map(|a| (a.end.as_second() - a.start.as_second()) / 60)
        .sum();
    let per_hour = calls as f64 * 60.0 / phone_minutes as f64;
    assert!(per_hour >= 4.0, "{per_hour:.1} calls per agent hour");
    assert!(per_hour <= 12.0, "{per_hour:.1} calls per agent hour");
}

#[test]
fn scheduled_agents_log_in() {
    let (events, no_shows) = day();
    let logged_in: HashSet<&str> =
        events.iter().filter(|e| e.kind == EventKind::Login).map(|e| e.agent_ref.as_str()).collect();
    let absent: HashSet<&str> = no_shows.iter().map(|n| n.agent_ref.as_str()).collect();
    let scheduled: HashSet<String> = monday_activities().map(|a| feed_id(&a.agent_id)).collect();

    for agent in &scheduled {
        assert!(
            logged_in.contains(agent.as_str()) || absent.contains(agent.as_str()),
            "{agent} is scheduled but neither logged in nor a no-show"
        );
    }
    assert!(absent.len() * 10 < scheduled.len(), "{} no-shows of {}", absent.len(), scheduled.len());
}

#[test]
fn unscheduled_agents_stay_away() {
    let scheduled: HashSet<String> = monday_activities().map(|a| feed_id(&a.agent_id)).collect();
    for event in &day().0 {
        assert!(scheduled.contains(&event.agent_ref), "{event:?}");
    }
}

#[test]
fn every_login_ends_in_logout() {
    for (agent, events) in events_by_agent() {
        let logins = events.iter().filter(|e| e.kind == EventKind::Login).count();
        let logouts = events.iter().filter(|e| e.kind == EventKind::Logout).count();
        assert_eq!(logins, logouts, "{agent}");
        assert_eq!(events.last().map(|e| &e.kind), Some(&EventKind::Logout), "{agent}");
    }
}

#[test]
fn unreachable_episodes_recover() {
    let mut episodes = 0;
    for (agent, events) in events_by_agent() {
        let mut lost_at = None;
        for event in events {
            match (&event.kind, lost_at) {
                (EventKind::Device { registered: false }, None) => lost_at = Some(event.time),
                (EventKind::Device { registered: true }, Some(lost)) => {
                    let minutes = (event.time.as_millisecond() - lost.as_millisecond()) / 60_000;
                    assert!((1..=10).contains(&minutes), "{agent}: unreachable for {minutes} min");
                    episodes += 1;
                    lost_at = None;
                }
                (EventKind::Device { .. }, _) => {
                    panic!("{agent}: device event out of turn: {event:?}")
                }
                _ => {}
            }
        }
        assert_eq!(lost_at, None, "{agent}: registration never came back");
    }
    assert!(episodes >= 2, "{episodes} unreachable episodes");
}

#[test]
fn calls_ring_only_when_available() {
    for (agent, events) in events_by_agent() {
        let mut code = None;
        let mut registered = true;
        let mut in_call = false;
        for event in events {
            match &event.kind {
                EventKind::State { code: new } => code = Some(new.as_str()),
                EventKind::Device { registered: now } => registered = *now,
                EventKind::Logout => code = None,
                EventKind::CallRinging { .. } => {
                    assert_eq!(code, Some(codes::AVAILABLE), "{agent}: {event:?}");
                    assert!(registered, "{agent}: call while unregistered: {event:?}");
                    assert!(!in_call, "{agent}: second call: {event:?}");
                    in_call = true;
                }
                EventKind::CallEnd { .. } => in_call = false,
                _ => {}
            }
        }
    }
}

#[test]
fn calls_follow_their_lifecycle() {
    let mut rung = HashSet::new();
    let mut started = HashMap::new();
    let mut held = HashSet::new();
    let mut ended = 0;
    for event in &day().0 {
        match &event.kind {
            EventKind::CallRinging { call_id, .. } => {
                assert!(rung.insert(call_id.clone()), "{event:?}")
            }
            EventKind::CallStart { call_id, .. } => {
                assert!(rung.contains(call_id), "started without ringing: {event:?}");
                started.insert(call_id.clone(), event.time);
            }
            EventKind::CallHold { call_id } => {
                assert!(started.contains_key(call_id), "{event:?}");
                held.insert(call_id.clone());
            }
            EventKind::CallResume { call_id } => assert!(held.remove(call_id), "{event:?}"),
            EventKind::CallEnd { call_id } => {
                let start = started.get(call_id).copied().expect("a call ends after it started");
                let seconds = event.time.as_second() - start.as_second();
                assert!((29..=1800).contains(&seconds), "{call_id}: {seconds} s");
                assert!(!held.contains(call_id), "{call_id} ended on hold");
                ended += 1;
            }
            _ => {}
        }
    }
    assert_eq!(ended, started.len());
}

#[test]
fn day_mixes_call_kinds() {
    let events = &day().0;
    let outbound = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::CallStart { direction: CallDirection::Outbound, .. }))
        .count();
    let inbound = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::CallStart { direction: CallDirection::Inbound, .. }))
        .count();
    let holds = events.iter().filter(|e| matches!(e.kind, EventKind::CallHold { .. })).count();
    assert!(outbound > 0);
    assert!(inbound > outbound * 3, "{inbound} inbound, {outbound} outbound");
    assert!(holds > 0);
}

#[test]
fn state_codes_come_from_the_set() {
    let mut seen = HashSet::new();
    for event in &day().0 {
        if let EventKind::State { code } = &event.kind {
            assert!(codes::ALL.contains(&code.as_str()), "{event:?}");
            seen.insert(code.as_str());
        }
    }
    for code in [codes::AVAILABLE, codes::WRAP_UP, codes::BREAK, codes::LUNCH, codes::TECHNICAL] {
        assert!(seen.contains(code), "{code} never set");
    }
}

#[test]
fn logins_vary_around_shift_start() {
    let mut early = 0;
    let mut late = 0;
    for (agent, events) in events_by_agent() {
        let Some(login) = events.iter().find(|e| e.kind == EventKind::Login) else {
            continue;
        };
        let first = monday_activities()
            .filter(|a| feed_id(&a.agent_id) == agent)
            .map(|a| a.start)
            .min()
            .expect("a logged-in agent has a shift");
        let minutes = (login.time.as_second() - first.as_second()) / 60;
        if minutes < 0 {
            early += 1;
        }
        if minutes >= 5 {
            late += 1;
        }
    }
    assert!(early > 20, "{early} early logins");
    assert!(late > 5, "{late} late logins");
}

#[test]
fn mid_day_start_shows_working_agents() {
    let start = local(monday(), 11, 0);
    let mut simulator = Simulator::new(site(), SEED, start);
    let first = simulator.advance(start);

    let working: HashSet<String> =
        monday_activities().filter(|a| a.start <= start && start < a.end).map(|a| feed_id(&a.agent_id)).collect();
    let logged_in: HashSet<&str> =
        first.iter().filter(|e| e.kind == EventKind::Login).map(|e| e.agent_ref.as_str()).collect();
    let with_state: HashSet<&str> =
        first.iter().filter(|e| matches!(e.kind, EventKind::State { .. })).map(|e| e.agent_ref.as_str()).collect();

    assert!(logged_in.len() * 10 >= working.len() * 8, "{} of {} logged in", logged_in.len(), working.len());
    assert_eq!(logged_in, with_state);
    for event in &first {
        assert_eq!(event.time, start, "{event:?}");
    }
}

#[test]
fn mid_day_start_continues_the_same_day() {
    let morning = local(monday(), 7, 0);
    let noon = local(monday(), 12, 0);
    let end = local(monday(), 14, 0);
    let mut full = Simulator::new(site(), SEED, morning);
    let mut late = Simulator::new(site(), SEED, noon);
    let cutoff = local(monday(), 12, 1);

    let strip = |events: Vec<SimEvent>| -> Vec<(Timestamp, String, EventKind)> {
        events.into_iter().filter(|e| e.time > cutoff).map(|e| (e.time, e.agent_ref, e.kind)).collect()
    };
    let from_morning = strip(run(&mut full, morning, end, SignedDuration::from_mins(10)));
    let mut from_noon = late.advance(noon);
    from_noon.extend(run(&mut late, noon, end, SignedDuration::from_mins(10)));
    assert_eq!(from_morning, strip(from_noon));
}

#[test]
fn advance_backwards_returns_nothing() {
    let start = local(monday(), 9, 0);
    let mut simulator = Simulator::new(site(), SEED, start);
    assert!(!simulator.advance(local(monday(), 9, 30)).is_empty());
    assert!(simulator.advance(local(monday(), 9, 10)).is_empty());
}

#[test]
fn next_event_time_is_next_returned() {
    let start = local(monday(), 9, 0);
    let mut simulator = Simulator::new(site(), SEED, start);
    simulator.advance(start);
    let next = simulator.next_event_time().expect("a Monday morning has events");
    assert!(simulator.advance(next.checked_sub(SignedDuration::from_millis(1)).expect("a 2026 time")).is_empty());
    let events = simulator.advance(next);
    assert_eq!(events.first().map(|e| e.time), Some(next));
}

#[test]
fn simulator_runs_out_after_the_week() {
    let start = local(monday(), 7, 0);
    let mut simulator = Simulator::new(site(), SEED, local(date(2026, 12, 13), 0, 0));
    assert_eq!(simulator.next_event_time(), None);
    assert!(simulator.advance(start.checked_add(SignedDuration::from_hours(200)).expect("a 2026 time")).is_empty());
}

#[test]
fn empty_site_has_no_events() {
    let empty = Site { agents: Vec::new(), activities: Vec::new() };
    let mut simulator = Simulator::new(&empty, SEED, local(monday(), 9, 0));
    assert_eq!(simulator.next_event_time(), None);
    assert!(simulator.advance(local(monday(), 18, 0)).is_empty());
}
