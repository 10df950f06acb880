//! Restart recovery of the real daemon: after a SIGKILL in the middle of
//! the day, a restart on the same state directory must give the same day
//! figures and the same floor as before the crash.
//!
//! The site zone is UTC and every roster activity and event lies in the
//! last 75 minutes, so the figures are of today (and of yesterday just after
//! midnight: both days are compared). Every activity ends and every agent
//! logs out before the first read, so nothing grows between the reads.

mod common;

use std::collections::BTreeSet;

use common::*;
use floorwatch::proto::ingest_event::Kind;
use floorwatch::proto::{
    ActivityType, AgentDayFigures, AgentView, CallDirection, CallEvent, GetAgentDayRequest, IngestEvent, StateGroup,
};
use jiff::{SignedDuration, Timestamp};

const AGENTS: [&str; 3] = ["a-1", "a-2", "b-1"];

fn site() -> Site {
    Site::new(SiteConfig {
        time_zone: "UTC",
        agents_file: Some(fixture("agents.csv")),
        // Event times up to 75 minutes old must be taken as given.
        extra_toml: "[engine]\nmax_clock_skew_seconds = 86400\n".into(),
        ..SiteConfig::default()
    })
}

fn at(base: Timestamp, minutes: i64, seconds: i64) -> Timestamp {
    base + SignedDuration::from_mins(minutes) + SignedDuration::from_secs(seconds)
}

fn call(call_id: &str) -> CallEvent {
    CallEvent { call_id: call_id.to_string(), direction: CallDirection::Inbound as i32 }
}

/// Returns the roster: a-1 with a break in the middle, a-2 one hour and
/// b-1 fifty minutes. Every activity ends ten minutes before now.
fn roster(base: Timestamp) -> Vec<floorwatch::proto::ScheduledActivity> {
    vec![
        activity("a-1", at(base, 0, 0), at(base, 30, 0), ActivityType::PhoneDuty),
        activity("a-1", at(base, 30, 0), at(base, 40, 0), ActivityType::Break),
        activity("a-1", at(base, 40, 0), at(base, 60, 0), ActivityType::PhoneDuty),
        activity("a-2", at(base, 0, 0), at(base, 60, 0), ActivityType::PhoneDuty),
        activity("b-1", at(base, 10, 0), at(base, 60, 0), ActivityType::PhoneDuty),
    ]
}

/// Returns a morning's events: a call, a break, a lunch during phone duty
/// (an alarm), a lost registration, a late login and an early logout.
fn events(base: Timestamp) -> Vec<IngestEvent> {
    let mut events = vec![
        event("r-01", "a-2", at(base, -5, 0), login()),
        event("r-02", "a-2", at(base, -5, 1), state("Beschikbaar")),
        event("r-03", "a-1", at(base, 2, 0), login()),
        event("r-04", "a-1", at(base, 2, 5), state("Beschikbaar")),
        event("r-05", "a-1", at(base, 5, 0), Kind::CallRinging(call("c-1"))),
        event("r-06", "a-1", at(base, 5, 4), Kind::CallStart(call("c-1"))),
        event("r-07", "a-1", at(base, 9, 30), Kind::CallEnd(call("c-1"))),
        event("r-08", "a-1", at(base, 9, 31), state("Nawerk")),
        event("r-09", "a-1", at(base, 11, 0), state("Beschikbaar")),
        event("r-10", "b-1", at(base, 15, 0), login()),
        event("r-11", "b-1", at(base, 15, 2), state("Beschikbaar")),
        event("r-12", "a-2", at(base, 20, 0), state("Lunch")),
        event("r-13", "a-1", at(base, 30, 10), state("Pauze")),
        event("r-14", "a-2", at(base, 35, 0), state("Beschikbaar")),
        event("r-15", "a-1", at(base, 41, 0), state("Beschikbaar")),
        event("r-16", "b-1", at(base, 44, 0), Kind::DeviceRegistered(false)),
        event("r-17", "b-1", at(base, 47, 0), Kind::DeviceRegistered(true)),
        event("r-18", "b-1", at(base, 50, 0), logout()),
        event("r-19", "a-1", at(base, 58, 0), logout()),
        event("r-20", "a-2", at(base, 62, 0), logout()),
    ];
    events.sort_by_key(|e| e.time.map(|t| (t.seconds, t.nanos)));
    events
}

/// Reads every agent's figures for every date in `dates`.
async fn figures(daemon: &Daemon, dates: &BTreeSet<String>) -> Vec<AgentDayFigures> {
    let mut client = daemon.adherence(Some(ADMIN.token)).await;
    let mut all = Vec::new();
    for date in dates {
        for agent_id in AGENTS {
            let request = GetAgentDayRequest { agent_id: agent_id.to_string(), date: date.clone() };
            let figures = within(STEP, client.get_agent_day(request), "reading day figures")
                .await
                .expect("GetAgentDay must succeed")
                .into_inner();
            all.push(AgentDayFigures { as_of: None, ..figures });
        }
    }
    all
}

/// Returns the floor snapshot with the fields that depend on the read time
/// cleared.
async fn floor(daemon: &Daemon) -> Vec<AgentView> {
    let mut client = daemon.floor(Some(ADMIN.token)).await;
    let mut stream = watch_all(&mut client).await;
    let snapshot = stream.snapshot().await;
    snapshot.agents.into_iter().map(|view| AgentView { out_of_adherence_seconds: 0, ..view }).collect()
}

#[tokio::test]
async fn restart_after_sigkill_keeps_figures() {
    let site = site();
    let mut daemon = site.start();
    let now = Timestamp::now();
    let base = now - SignedDuration::from_mins(70);
    let utc = jiff::tz::TimeZone::UTC;
    let dates: BTreeSet<String> =
        [base - SignedDuration::from_mins(5), now].iter().map(|t| utc.to_datetime(*t).date().to_string()).collect();

    let mut roster_client = daemon.roster(Some(PLANNER.token)).await;
    let published = publish_roster(&mut roster_client, roster(base)).await.expect("PublishRoster must succeed");
    assert!(published.published, "the roster must be published");
    let mut ingest_client = daemon.ingest(Some(INGEST.token)).await;
    let mut ingest =
        IngestSession::open(&mut ingest_client, "cti-bridge-1").await.expect("the ingest token may publish");
    let all_events = events(base);
    let count = all_events.len() as u32;
    let ack = ingest.publish(all_events).await;
    assert_eq!(ack.accepted, count, "every event must be accepted: {ack:?}");

    let before = figures(&daemon, &dates).await;
    let floor_before = floor(&daemon).await;
    if dates.len() == 1 {
        // The figures follow from the event times alone, so they are exact;
        // they also show that the comparison below covers real values.
        let [a1, a2, b1] = [&before[0], &before[1], &before[2]];
        assert_eq!(a1.scheduled_seconds, 3600, "a-1 has an hour on the roster: {a1:?}");
        assert_eq!(
            a1.out_of_adherence_seconds, 310,
            "a-1: 2 min late, 10 s + 1 min around the break, 2 min early: {a1:?}"
        );
        assert_eq!(a2.unscheduled_login_seconds, 420, "a-2 logged in 5 min early and out 2 min late: {a2:?}");
        assert_eq!(a2.out_of_adherence_seconds, 900, "a-2 took a 15 min lunch during phone duty: {a2:?}");
        assert_eq!(b1.late_login_seconds, 300, "b-1 logged in 5 min late: {b1:?}");
        assert_eq!(b1.early_logout_seconds, 600, "b-1 logged out 10 min early: {b1:?}");
        assert_eq!(b1.alarms, 3, "b-1: late login, lost registration and early logout: {b1:?}");
    }
    for view in &floor_before {
        assert_eq!(view.state, StateGroup::LoggedOut as i32, "{} logged out before the crash", view.agent_id);
    }

    daemon.kill();
    drop(daemon);
    let daemon = site.start();

    let after = figures(&daemon, &dates).await;
    for (before, after) in before.iter().zip(&after) {
        assert_eq!(before, after, "figures of {} on {} must survive the restart", before.agent_id, before.date);
    }
    let floor_after = floor(&daemon).await;
    assert_eq!(floor_before.len(), floor_after.len(), "the same agents must be on the floor");
    for (before, after) in floor_before.iter().zip(&floor_after) {
        assert_eq!(before.agent_id, after.agent_id);
        assert_eq!(before.state, after.state, "state of {}", before.agent_id);
        assert_eq!(before.state_since, after.state_since, "state_since of {}", before.agent_id);
        assert_eq!(before.state_code, after.state_code, "state_code of {}", before.agent_id);
        assert_eq!(before.adherence, after.adherence, "adherence of {}", before.agent_id);
        assert_eq!(before.scheduled_activity, after.scheduled_activity, "scheduled activity of {}", before.agent_id);
        assert_eq!(before.device_registered, after.device_registered, "device registration of {}", before.agent_id);
        assert_eq!(before.source, after.source, "source of {}", before.agent_id);
        assert_eq!(
            before.adherence_percent_today, after.adherence_percent_today,
            "adherence today of {}",
            before.agent_id
        );
    }
}
