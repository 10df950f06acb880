//! Engine tests with explicit time: every input carries its instant, so a
//! whole day runs in microseconds and the same inputs give the same figures.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;

use super::*;
use crate::domain::{
    ActivityType, AdherenceStatus, CallDirection, EventKind, NotReadyReason, ScheduledActivity, StateGroup,
};

const AGENT: &str = "a-117";
const FEED: &str = "platform-main";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn config() -> EngineConfig {
    let duty_in = vec![
        StateGroup::Available,
        StateGroup::Ringing,
        StateGroup::OnCallInbound,
        StateGroup::OnCallOutbound,
        StateGroup::Held,
        StateGroup::WrapUp,
    ];
    let rules = RuleMatrix::new(
        &[
            RuleSpec {
                activity: Some(ActivityType::PhoneDuty),
                in_groups: duty_in,
                neutral_groups: vec![StateGroup::NotReady(NotReadyReason::Technical)],
                threshold_ms: 120_000,
            },
            RuleSpec {
                activity: Some(ActivityType::Break),
                in_groups: vec![StateGroup::NotReady(NotReadyReason::Break), StateGroup::LoggedOut],
                neutral_groups: vec![StateGroup::OnCallInbound, StateGroup::WrapUp],
                threshold_ms: 300_000,
            },
            RuleSpec {
                activity: None,
                in_groups: vec![StateGroup::LoggedOut],
                neutral_groups: StateGroup::ALL.iter().copied().filter(|g| *g != StateGroup::LoggedOut).collect(),
                threshold_ms: 120_000,
            },
        ],
        120_000,
    );
    let state_codes = HashMap::from([
        ("Beschikbaar".to_string(), StateGroup::Available),
        ("Nawerk".to_string(), StateGroup::WrapUp),
        ("Pauze".to_string(), StateGroup::NotReady(NotReadyReason::Break)),
        ("Storing".to_string(), StateGroup::NotReady(NotReadyReason::Technical)),
        ("Uitgelogd".to_string(), StateGroup::LoggedOut),
    ]);
    EngineConfig { tz: TimeZone::get("Europe/Amsterdam").unwrap(), rules, state_codes, history_limit: 10_000 }
}

fn activity(start: &str, end: &str, activity: ActivityType) -> ScheduledActivity {
    ScheduledActivity { agent_id: AGENT.into(), start: t(start), end: t(end), activity }
}

/// An engine whose figures start at local midnight of 2026-12-07 (a Monday,
/// UTC+1) with phone duty 09:00–11:00, a break 11:00–11:15 and phone duty
/// 11:15–12:00 local.
fn engine() -> Engine {
    let mut engine = Engine::new(config(), t("2026-12-06T23:00:00Z"));
    engine.set_schedule(
        AGENT,
        &[
            activity("2026-12-07T08:00:00Z", "2026-12-07T10:00:00Z", ActivityType::PhoneDuty),
            activity("2026-12-07T10:00:00Z", "2026-12-07T10:15:00Z", ActivityType::Break),
            activity("2026-12-07T10:15:00Z", "2026-12-07T11:00:00Z", ActivityType::PhoneDuty),
        ],
    );
    engine.drain_outputs().for_each(drop);
    engine
}

struct Feeder {
    seq: u64,
}

impl Feeder {
    fn new() -> Feeder {
        Feeder { seq: 0 }
    }

    fn event(&mut self, engine: &mut Engine, at: &str, kind: EventKind) {
        self.seq += 1;
        engine.advance(t(at));
        engine.apply_event(self.seq, AGENT, FEED, t(at), &kind);
    }

    fn state(&mut self, engine: &mut Engine, at: &str, code: &str) {
        self.event(engine, at, EventKind::State { code: code.to_string() });
    }
}

const MONDAY: Date = date(2026, 12, 7);

fn minutes(ms: i64) -> i64 {
    ms / 60_000
}

#[test]
fn logged_out_agent_is_out_when_duty_starts() {
    let mut engine = engine();
    engine.advance(t("2026-12-07T08:00:00Z"));

    let snapshot = engine.snapshot(AGENT).unwrap();
    assert_eq!(snapshot.activity, Some(ActivityType::PhoneDuty));
    assert_eq!(snapshot.status, AdherenceStatus::OutOfAdherence);
    assert_eq!(snapshot.status_since, t("2026-12-07T08:00:00Z"));
}

#[test]
fn alarm_raised_after_threshold_and_cleared_on_login() {
    let mut engine = engine();
    engine.advance(t("2026-12-07T08:01:59Z"));
    let early: Vec<Output> = engine.drain_outputs().collect();
    assert!(!early.iter().any(|o| matches!(o, Output::AlarmRaised { .. })), "{early:?}");

    engine.advance(t("2026-12-07T08:02:00Z"));
    let raised: Vec<Output> = engine.drain_outputs().collect();
    let alarm = raised.iter().find_map(|o| match o {
        Output::AlarmRaised { alarm, .. } => Some(alarm.clone()),
        _ => None,
    });
    let alarm = alarm.expect("an alarm must be raised at the 120 s threshold");
    assert_eq!(alarm.kind, AlarmKind::NotLoggedIn);
    assert_eq!(alarm.raised_at_ms, t("2026-12-07T08:02:00Z").as_millisecond());

    let mut feed = Feeder::new();
    feed.event(&mut engine, "2026-12-07T08:05:00Z", EventKind::Login);
    let cleared: Vec<Output> = engine.drain_outputs().collect();
    assert!(cleared.iter().any(|o| matches!(o, Output::AlarmCleared { .. })), "{cleared:?}");
    assert!(!engine.snapshot(AGENT).unwrap().alarm);
}

#[test]
fn figures_split_scheduled_time_exactly() {
    let mut engine = engine();
    let mut feed = Feeder::new();
    feed.event(&mut engine, "2026-12-07T08:10:00Z", EventKind::Login);
    feed.state(&mut engine, "2026-12-07T08:10:00Z", "Beschikbaar");
    feed.state(&mut engine, "2026-12-07T09:00:00Z", "Storing");
    feed.state(&mut engine, "2026-12-07T09:20:00Z", "Beschikbaar");
    feed.state(&mut engine, "2026-12-07T10:00:00Z", "Pauze");
    feed.state(&mut engine, "2026-12-07T10:20:00Z", "Beschikbaar");
    feed.event(&mut engine, "2026-12-07T10:50:00Z", EventKind::Logout);
    engine.advance(t("2026-12-07T12:00:00Z"));

    let day = engine.agent_day(AGENT, MONDAY).unwrap();
    assert_eq!(minutes(day.scheduled_ms), 180);
    assert_eq!(minutes(day.scheduled_work_ms), 165);
    // Out: 08:00–08:10 logged out, 10:15–10:20 still on break during duty,
    // 10:50–11:00 logged out.
    assert_eq!(minutes(day.out_ms), 25);
    assert_eq!(minutes(day.neutral_ms), 20);
    assert_eq!(minutes(day.in_ms), 135);
    assert_eq!(day.adherence_percent(), Some(135.0 * 100.0 / 160.0));
    assert_eq!(minutes(day.late_login_ms), 10);
    assert_eq!(minutes(day.early_logout_ms), 10);
    // Logged in for work during scheduled work: 08:10–10:00 and 10:15–10:50
    // less the break state 10:15–10:20.
    assert_eq!(minutes(day.logged_in_work_ms), 110 + 30);
}

#[test]
fn unknown_state_code_is_reported_and_keeps_state() {
    let mut engine = engine();
    let mut feed = Feeder::new();
    feed.state(&mut engine, "2026-12-07T08:00:00Z", "Beschikbaar");
    engine.drain_outputs().for_each(drop);

    feed.state(&mut engine, "2026-12-07T08:30:00Z", "Prive");
    let outputs: Vec<Output> = engine.drain_outputs().collect();
    assert!(
        outputs.iter().any(|o| matches!(o, Output::UnknownStateCode { code, .. } if code == "Prive")),
        "{outputs:?}"
    );
    let snapshot = engine.snapshot(AGENT).unwrap();
    assert_eq!(snapshot.group, StateGroup::Available);
    assert_eq!(snapshot.state_code.as_deref(), Some("Prive"));
}

#[test]
fn source_outage_makes_adherence_unknown() {
    let mut engine = engine();
    let mut feed = Feeder::new();
    feed.event(&mut engine, "2026-12-07T08:00:00Z", EventKind::Login);
    feed.event(&mut engine, "2026-12-07T08:30:00Z", EventKind::Logout);

    engine.apply_source_health(100, FEED, false, t("2026-12-07T08:40:00Z"));
    assert_eq!(engine.snapshot(AGENT).unwrap().status, AdherenceStatus::Unknown);
    assert!(!engine.snapshot(AGENT).unwrap().source_healthy);

    engine.apply_source_health(101, FEED, true, t("2026-12-07T09:00:00Z"));
    engine.advance(t("2026-12-07T09:00:00Z"));
    let day = engine.agent_day(AGENT, MONDAY).unwrap();
    assert_eq!(minutes(day.unknown_ms), 20);
    assert_eq!(minutes(day.out_ms), 10);
    assert_eq!(engine.snapshot(AGENT).unwrap().status, AdherenceStatus::OutOfAdherence);
}

#[test]
fn lost_registration_is_unreachable_not_logged_out() {
    let mut engine = engine();
    let mut feed = Feeder::new();
    feed.event(&mut engine, "2026-12-07T08:00:00Z", EventKind::Login);
    feed.event(&mut engine, "2026-12-07T08:30:00Z", EventKind::Device { registered: false });
    assert_eq!(engine.snapshot(AGENT).unwrap().group, StateGroup::Unreachable);

    engine.advance(t("2026-12-07T08:32:00Z"));
    let alarm = engine.active_alarms().pop().expect("unreachable during duty raises an alarm");
    assert_eq!(alarm.1.kind, AlarmKind::Unreachable);

    feed.event(&mut engine, "2026-12-07T08:35:00Z", EventKind::Device { registered: true });
    assert_eq!(engine.snapshot(AGENT).unwrap().group, StateGroup::Available);
}

#[test]
fn late_event_recomputes_exactly() {
    let in_order = {
        let mut engine = engine();
        let mut feed = Feeder::new();
        feed.event(&mut engine, "2026-12-07T08:00:00Z", EventKind::Login);
        feed.state(&mut engine, "2026-12-07T08:20:00Z", "Storing");
        feed.state(&mut engine, "2026-12-07T08:40:00Z", "Beschikbaar");
        engine.advance(t("2026-12-07T09:00:00Z"));
        engine.agent_day(AGENT, MONDAY).unwrap()
    };

    let mut engine = engine();
    let mut feed = Feeder::new();
    feed.event(&mut engine, "2026-12-07T08:00:00Z", EventKind::Login);
    feed.state(&mut engine, "2026-12-07T08:40:00Z", "Beschikbaar");
    // Arrives after the 08:40 event but happened at 08:20.
    feed.seq += 1;
    engine.apply_event(feed.seq, AGENT, FEED, t("2026-12-07T08:20:00Z"), &EventKind::State { code: "Storing".into() });
    engine.advance(t("2026-12-07T09:00:00Z"));

    assert_eq!(engine.agent_day(AGENT, MONDAY).unwrap(), in_order);
    assert_eq!(engine.snapshot(AGENT).unwrap().group, StateGroup::Available);
}

#[test]
fn exception_excuses_period() {
    let mut engine = engine();
    engine.set_exceptions(AGENT, vec![(t("2026-12-07T08:00:00Z"), t("2026-12-07T08:30:00Z"))]);
    engine.advance(t("2026-12-07T09:00:00Z"));

    let day = engine.agent_day(AGENT, MONDAY).unwrap();
    assert_eq!(minutes(day.excused_ms), 30);
    assert_eq!(minutes(day.out_ms), 30);
    assert_eq!(day.adherence_percent(), Some(0.0));
}

#[test]
fn exception_added_afterwards_changes_past_figures() {
    let mut engine = engine();
    engine.advance(t("2026-12-07T09:00:00Z"));
    assert_eq!(minutes(engine.agent_day(AGENT, MONDAY).unwrap().out_ms), 60);

    engine.set_exceptions(AGENT, vec![(t("2026-12-07T08:00:00Z"), t("2026-12-07T08:45:00Z"))]);
    let day = engine.agent_day(AGENT, MONDAY).unwrap();
    assert_eq!(minutes(day.out_ms), 15);
    assert_eq!(minutes(day.excused_ms), 45);
}

#[test]
fn call_states_follow_call_events() {
    let mut engine = engine();
    let mut feed = Feeder::new();
    feed.state(&mut engine, "2026-12-07T08:00:00Z", "Beschikbaar");
    feed.event(
        &mut engine,
        "2026-12-07T08:05:00Z",
        EventKind::CallRinging { call_id: "c-1".into(), direction: CallDirection::Inbound },
    );
    assert_eq!(engine.snapshot(AGENT).unwrap().group, StateGroup::Ringing);
    feed.event(
        &mut engine,
        "2026-12-07T08:05:10Z",
        EventKind::CallStart { call_id: "c-1".into(), direction: CallDirection::Inbound },
    );
    assert_eq!(engine.snapshot(AGENT).unwrap().group, StateGroup::OnCallInbound);
    feed.event(&mut engine, "2026-12-07T08:06:00Z", EventKind::CallHold { call_id: "c-1".into() });
    assert_eq!(engine.snapshot(AGENT).unwrap().group, StateGroup::Held);
    feed.event(&mut engine, "2026-12-07T08:07:00Z", EventKind::CallResume { call_id: "c-1".into() });
    assert_eq!(engine.snapshot(AGENT).unwrap().group, StateGroup::OnCallInbound);
    feed.event(&mut engine, "2026-12-07T08:09:00Z", EventKind::CallEnd { call_id: "c-1".into() });
    assert_eq!(engine.snapshot(AGENT).unwrap().group, StateGroup::Available);
    assert_eq!(engine.snapshot(AGENT).unwrap().status, AdherenceStatus::InAdherence);
}

#[test]
fn unscheduled_login_splits_at_local_midnight() {
    let mut engine = Engine::new(config(), t("2026-12-06T23:00:00Z"));
    let mut feed = Feeder::new();
    feed.event(&mut engine, "2026-12-07T22:00:00Z", EventKind::Login);
    engine.advance(t("2026-12-08T00:00:00Z"));

    // 23:00–24:00 local on Monday, 00:00–01:00 local on Tuesday.
    assert_eq!(minutes(engine.agent_day(AGENT, MONDAY).unwrap().unscheduled_login_ms), 60);
    assert_eq!(minutes(engine.agent_day(AGENT, date(2026, 12, 8)).unwrap().unscheduled_login_ms), 60);
}

#[test]
fn night_shift_counts_toward_start_day() {
    let mut engine = Engine::new(config(), t("2026-12-06T23:00:00Z"));
    engine.set_schedule(AGENT, &[activity("2026-12-07T21:00:00Z", "2026-12-08T01:00:00Z", ActivityType::PhoneDuty)]);
    let mut feed = Feeder::new();
    feed.state(&mut engine, "2026-12-07T21:00:00Z", "Beschikbaar");
    engine.advance(t("2026-12-08T02:00:00Z"));

    let monday = engine.agent_day(AGENT, MONDAY).unwrap();
    assert_eq!(minutes(monday.scheduled_ms), 240);
    assert_eq!(minutes(monday.in_ms), 240);
    assert_eq!(engine.agent_day(AGENT, date(2026, 12, 8)).unwrap().scheduled_ms, 0);
}

#[test]
fn spring_forward_shift_has_real_length() {
    // 2026-03-29 in Europe/Amsterdam: 02:00 local does not exist. A shift
    // 01:00–04:00 local is 00:00Z–02:00Z: two real hours.
    let mut engine = Engine::new(config(), t("2026-03-28T23:00:00Z"));
    engine.set_schedule(AGENT, &[activity("2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z", ActivityType::PhoneDuty)]);
    engine.advance(t("2026-03-29T03:00:00Z"));

    let day = engine.agent_day(AGENT, date(2026, 3, 29)).unwrap();
    assert_eq!(minutes(day.scheduled_ms), 120);
    assert_eq!(minutes(day.out_ms), 120);
}

#[test]
fn fall_back_day_has_25_hours_of_unscheduled_time() {
    let mut engine = Engine::new(config(), t("2026-10-24T22:00:00Z"));
    let mut feed = Feeder::new();
    feed.event(&mut engine, "2026-10-24T22:00:00Z", EventKind::Login);
    engine.advance(t("2026-10-25T23:00:00Z"));

    let day = engine.agent_day(AGENT, date(2026, 10, 25)).unwrap();
    assert_eq!(minutes(day.unscheduled_login_ms), 25 * 60);
}

#[test]
fn same_inputs_give_same_outputs() {
    let run = || {
        let mut engine = engine();
        let mut feed = Feeder::new();
        feed.event(&mut engine, "2026-12-07T08:03:00Z", EventKind::Login);
        feed.state(&mut engine, "2026-12-07T08:03:00Z", "Beschikbaar");
        feed.state(&mut engine, "2026-12-07T09:30:00Z", "Pauze");
        feed.state(&mut engine, "2026-12-07T10:30:00Z", "Beschikbaar");
        engine.advance(t("2026-12-07T11:30:00Z"));
        let outputs: Vec<Output> = engine.drain_outputs().collect();
        (outputs, engine.agent_day(AGENT, MONDAY).unwrap())
    };
    assert_eq!(run(), run());
}

#[test]
fn retain_from_keeps_figures() {
    let mut engine = engine();
    let mut feed = Feeder::new();
    feed.event(&mut engine, "2026-12-07T08:03:00Z", EventKind::Login);
    feed.state(&mut engine, "2026-12-07T09:30:00Z", "Pauze");
    engine.advance(t("2026-12-07T10:00:00Z"));
    let before = engine.agent_day(AGENT, MONDAY).unwrap();

    engine.retain_from(t("2026-12-07T09:45:00Z"));
    assert_eq!(engine.agent_day(AGENT, MONDAY).unwrap(), before);

    // A replay after the cut starts from the checkpoint.
    engine.set_exceptions(AGENT, vec![]);
    assert_eq!(engine.agent_day(AGENT, MONDAY).unwrap(), before);
}

#[test]
fn history_limit_marks_figures_approximate() {
    let mut config = config();
    config.history_limit = 2;
    let mut engine = Engine::new(config, t("2026-12-06T23:00:00Z"));
    let mut feed = Feeder::new();
    feed.event(&mut engine, "2026-12-07T08:00:00Z", EventKind::Login);
    feed.state(&mut engine, "2026-12-07T08:01:00Z", "Beschikbaar");
    feed.state(&mut engine, "2026-12-07T08:02:00Z", "Nawerk");

    assert!(engine.agent_day(AGENT, MONDAY).unwrap().approximate);
}

#[test]
fn login_after_logout_clears_lost_registration() {
    let mut engine = engine();
    let mut feed = Feeder::new();
    feed.event(&mut engine, "2026-12-07T08:00:00Z", EventKind::Login);
    feed.event(&mut engine, "2026-12-07T08:10:00Z", EventKind::Device { registered: false });
    feed.event(&mut engine, "2026-12-07T08:15:00Z", EventKind::Logout);
    feed.event(&mut engine, "2026-12-07T08:20:00Z", EventKind::Login);

    assert_eq!(engine.snapshot(AGENT).unwrap().group, StateGroup::Available);
}
