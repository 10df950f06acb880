//! Engine throughput on one core: pre-built events for 1 000 agents with a
//! day's roster, applied in time order through `Engine::apply_event`.
//!
//! Run with `cargo bench --bench engine`; see BENCHMARKS.md.

use std::collections::HashMap;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use floorwatch::adherence::{Engine, EngineConfig, RuleMatrix, RuleSpec};
use floorwatch::domain::{ActivityType, CallDirection, EventKind, NotReadyReason, ScheduledActivity, StateGroup};

const AGENTS: usize = 1_000;
const EVENTS: usize = 200_000;

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
                neutral_groups: vec![],
                threshold_ms: 120_000,
            },
            RuleSpec {
                activity: Some(ActivityType::Break),
                in_groups: vec![StateGroup::NotReady(NotReadyReason::Break), StateGroup::LoggedOut],
                neutral_groups: vec![],
                threshold_ms: 300_000,
            },
        ],
        120_000,
    );
    let state_codes = HashMap::from([
        ("Beschikbaar".to_string(), StateGroup::Available),
        ("Nawerk".to_string(), StateGroup::WrapUp),
        ("Pauze".to_string(), StateGroup::NotReady(NotReadyReason::Break)),
    ]);
    EngineConfig { tz: TimeZone::get("Europe/Amsterdam").unwrap(), rules, state_codes, history_limit: 1_000_000 }
}

fn agent_id(i: usize) -> String {
    format!("a-{i:05}")
}

/// Builds an engine with every agent on duty 08:00–11:00 and 11:15–14:15 UTC,
/// and the events: a call cycle of ringing, start, end and wrap-up per agent,
/// round robin, one event every few milliseconds of engine time.
fn setup() -> (Engine, Vec<(String, Timestamp, EventKind)>) {
    let day: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
    let at = |minutes: i64| day + SignedDuration::from_mins(minutes);
    let mut engine = Engine::new(config(), day);
    for i in 0..AGENTS {
        let id = agent_id(i);
        let activities =
            [(480, 660, ActivityType::PhoneDuty), (660, 675, ActivityType::Break), (675, 855, ActivityType::PhoneDuty)]
                .map(|(start, end, activity)| ScheduledActivity {
                    agent_id: id.clone(),
                    start: at(start),
                    end: at(end),
                    activity,
                });
        engine.set_schedule(&id, &activities);
    }
    engine.drain_outputs().for_each(drop);

    let start = at(480);
    let mut events = Vec::with_capacity(EVENTS);
    for n in 0..EVENTS {
        let agent = n % AGENTS;
        let cycle = n / AGENTS;
        let call_id = format!("c-{agent}-{}", cycle / 5);
        let kind = match cycle % 5 {
            0 => EventKind::CallRinging { call_id, direction: CallDirection::Inbound },
            1 => EventKind::CallStart { call_id, direction: CallDirection::Inbound },
            2 => EventKind::CallEnd { call_id },
            3 => EventKind::State { code: "Nawerk".into() },
            _ => EventKind::State { code: "Beschikbaar".into() },
        };
        events.push((agent_id(agent), start + SignedDuration::from_millis(n as i64 * 50), kind));
    }
    (engine, events)
}

fn apply_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    group.bench_function("apply_event_1000_agents", |b| {
        b.iter_batched(
            setup,
            |(mut engine, events)| {
                for (seq, (agent, at, kind)) in events.iter().enumerate() {
                    engine.apply_event(seq as u64 + 1, agent, "platform", *at, kind);
                    if seq % 1024 == 0 {
                        engine.drain_outputs().for_each(drop);
                    }
                }
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, apply_events);
criterion_main!(benches);
