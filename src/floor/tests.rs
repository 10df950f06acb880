use std::sync::Arc;

use jiff::Timestamp;

use super::*;
use crate::domain::{AdherenceStatus, StateGroup};

fn agent(id: &str, group: StateGroup) -> FloorAgent {
    let at: Timestamp = "2026-12-07T08:00:00Z".parse().unwrap();
    FloorAgent {
        snapshot: AgentSnapshot {
            agent_id: Arc::from(id),
            group,
            group_since: Some(at),
            state_code: None,
            activity: None,
            activity_end: None,
            status: AdherenceStatus::Neutral,
            status_since: at,
            out_since: None,
            alarm: false,
            call: None,
            device_registered: None,
            source: None,
            source_healthy: true,
            adherence_percent_today: None,
        },
        display_name: Arc::from("Anna de Vries"),
        team: Arc::from("team-noord"),
    }
}

#[test]
fn snapshot_holds_latest_per_agent() {
    let hub = FloorHub::new(100, 16, 1);
    hub.publish(agent("a-1", StateGroup::LoggedOut));
    hub.publish(agent("a-2", StateGroup::LoggedOut));
    hub.publish(agent("a-1", StateGroup::Available));

    let subscription = hub.subscribe(None);
    let SubscriptionStart::Snapshot { reason, changes } = subscription.start else {
        panic!("a new client must get a snapshot");
    };
    assert_eq!(reason, "initial");
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0].agent.snapshot.group, StateGroup::Available);
    assert_eq!(subscription.high_water, 3);
}

#[test]
fn resume_inside_window_replays_missed_changes() {
    let hub = FloorHub::new(100, 16, 1);
    for _ in 0..5 {
        hub.publish(agent("a-1", StateGroup::Available));
    }
    let subscription = hub.subscribe(Some(3));
    let SubscriptionStart::Resumed { changes } = subscription.start else {
        panic!("seq 3 is retained, so the client must be resumed");
    };
    let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, vec![4, 5]);
}

#[test]
fn resume_outside_window_gets_snapshot() {
    let hub = FloorHub::new(2, 16, 1);
    for _ in 0..5 {
        hub.publish(agent("a-1", StateGroup::Available));
    }
    let subscription = hub.subscribe(Some(1));
    assert!(matches!(subscription.start, SubscriptionStart::Snapshot { reason: "resume_window_passed", .. }));
}

#[test]
fn resume_at_latest_seq_replays_nothing() {
    let hub = FloorHub::new(2, 16, 1);
    for _ in 0..5 {
        hub.publish(agent("a-1", StateGroup::Available));
    }
    let subscription = hub.subscribe(Some(5));
    assert!(matches!(subscription.start, SubscriptionStart::Resumed { ref changes } if changes.is_empty()));
}

#[test]
fn catch_up_returns_latest_per_changed_agent() {
    let hub = FloorHub::new(100, 16, 1);
    hub.publish(agent("a-1", StateGroup::Available));
    hub.publish(agent("a-2", StateGroup::Available));
    hub.publish(agent("a-1", StateGroup::WrapUp));

    let catch_up = hub.catch_up(1);
    let ids: Vec<&str> = catch_up.changes.iter().map(|c| &*c.agent.snapshot.agent_id).collect();
    assert_eq!(ids, vec!["a-2", "a-1"]);
    assert_eq!(catch_up.changes[1].agent.snapshot.group, StateGroup::WrapUp);
    assert_eq!(catch_up.high_water, 3);
}

#[test]
fn alarms_track_active_set() {
    let hub = FloorHub::new(100, 16, 1);
    let alarm = crate::adherence::AlarmState {
        kind: crate::adherence::AlarmKind::NotLoggedIn,
        out_since_ms: 0,
        raised_at_ms: 120_000,
        activity: None,
        group: StateGroup::LoggedOut,
    };
    let event = |raised| AlarmEvent {
        alarm_id: "a-1/0".into(),
        agent_id: Arc::from("a-1"),
        team: Arc::from("team-noord"),
        alarm: alarm.clone(),
        raised,
    };
    hub.publish_alarm(event(true));
    assert_eq!(hub.active_alarms().len(), 1);
    hub.publish_alarm(event(false));
    assert!(hub.active_alarms().is_empty());
}

#[test]
fn later_run_rejects_resume_from_earlier_run() {
    let earlier = FloorHub::new(100, 16, first_seq_for("2026-12-07T08:00:00Z".parse().unwrap()));
    let old_seq = earlier.publish(agent("a-1", StateGroup::Available));

    let later = FloorHub::new(100, 16, first_seq_for("2026-12-07T08:00:05Z".parse().unwrap()));
    later.publish(agent("a-1", StateGroup::Available));
    assert!(matches!(
        later.subscribe(Some(old_seq)).start,
        SubscriptionStart::Snapshot { reason: "resume_window_passed", .. }
    ));
}
