//! The gRPC API of the real daemon: roster publish and read, the floor
//! stream with resume, ingest with acknowledgements, day figures,
//! reflection, health, and the drain on SIGTERM.

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::*;
use floorwatch::proto::floor_update::Update;
use floorwatch::proto::{
    ActivityType, AdherenceStatus, GetAgentDayRequest, GetRosterRequest, IngestEvent, StateGroup, WatchFloorRequest,
};
use jiff::{SignedDuration, Timestamp};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const AGENTS: [&str; 3] = ["a-1", "a-2", "a-3"];

fn minutes(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

/// Stores agents a-1..a-3 (team-a, 1.5 contract hours) and publishes phone
/// duty for each from 30 minutes ago to an hour from now.
async fn floor_with_phone_duty(daemon: &Daemon, now: Timestamp) {
    let mut roster = daemon.roster(Some(PLANNER.token)).await;
    let agents = AGENTS.iter().map(|id| agent(id, "team-a", 1.5, &[])).collect();
    put_agents(&mut roster, agents).await;

    let activities =
        AGENTS.iter().map(|id| activity(id, now - minutes(30), now + minutes(60), ActivityType::PhoneDuty)).collect();
    let response = publish_roster(&mut roster, activities).await.expect("PublishRoster must succeed");
    assert!(response.published, "the roster must be published");
    assert!(response.violations.is_empty(), "a valid roster has no violations: {:?}", response.violations);
}

/// Returns the local date the shift starting 30 minutes ago counts toward.
fn shift_date(now: Timestamp) -> String {
    let tz = jiff::tz::TimeZone::get("Europe/Amsterdam").expect("the bundled tzdb must contain Europe/Amsterdam");
    tz.to_datetime(now - minutes(30)).date().to_string()
}

#[tokio::test]
async fn valid_roster_publishes_without_violations() {
    let site = Site::new(SiteConfig::default());
    let daemon = site.start();
    let now = Timestamp::now();
    floor_with_phone_duty(&daemon, now).await;

    let mut roster = daemon.roster(Some(PLANNER.token)).await;
    let request = GetRosterRequest {
        period_start: Some(floorwatch::api::convert::timestamp_to_proto(now - minutes(120))),
        period_end: Some(floorwatch::api::convert::timestamp_to_proto(now + minutes(120))),
        ..Default::default()
    };
    let stored = within(STEP, roster.get_roster(request), "reading the roster")
        .await
        .expect("GetRoster must succeed")
        .into_inner();
    assert!(stored.version > 0, "GetRoster must report the published version");
    let mut agent_ids: Vec<&str> = stored.activities.iter().map(|a| a.agent_id.as_str()).collect();
    agent_ids.sort();
    assert_eq!(agent_ids, AGENTS, "GetRoster must return one activity per agent");
    for activity in &stored.activities {
        assert_eq!(activity.activity, ActivityType::PhoneDuty as i32, "stored activity of {}", activity.agent_id);
    }
}

#[tokio::test]
async fn four_hour_block_is_reported_and_published() {
    let site = Site::new(SiteConfig::default());
    let daemon = site.start();
    let now = Timestamp::now();
    let mut roster = daemon.roster(Some(PLANNER.token)).await;
    put_agents(&mut roster, vec![agent("a-1", "team-a", 4.0, &[])]).await;

    let block = vec![activity("a-1", now - minutes(60), now + minutes(180), ActivityType::PhoneDuty)];
    let response = publish_roster(&mut roster, block).await.expect("PublishRoster must succeed");

    assert!(response.published, "a roster with violations is still published");
    assert!(response.version > 0, "a published roster has a version");
    let violation = response
        .violations
        .iter()
        .find(|v| v.rule == "max_block_hours")
        .unwrap_or_else(|| panic!("a 4-hour block must break max_block_hours: {:?}", response.violations));
    assert_eq!(violation.agent_id, "a-1");
    assert_eq!(violation.value, 4.0, "the violation must give the block length in hours");
    assert_eq!(violation.limit, 3.0, "the violation must give the limit in hours");
    assert!(violation.text.contains("blok"), "the default text is Dutch: {:?}", violation.text);
}

#[tokio::test]
async fn snapshot_lists_agents_out_of_adherence() {
    let site = Site::new(SiteConfig::default());
    let daemon = site.start();
    floor_with_phone_duty(&daemon, Timestamp::now()).await;

    let mut floor = daemon.floor(Some(SUPERVISOR.token)).await;
    let mut stream = watch_all(&mut floor).await;
    let snapshot = stream.snapshot().await;

    assert_eq!(snapshot.begin.reason, "initial");
    assert_eq!(snapshot.begin.agent_count, 3, "snapshot_begin must count the agents that follow");
    let ids: Vec<&str> = snapshot.agents.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(ids, AGENTS, "the snapshot must list every agent, sorted by id");
    for view in &snapshot.agents {
        assert_eq!(view.state, StateGroup::LoggedOut as i32, "{} has not logged in", view.agent_id);
        assert_eq!(
            view.scheduled_activity,
            Some(ActivityType::PhoneDuty as i32),
            "{} has phone duty now",
            view.agent_id
        );
        assert_eq!(
            view.adherence,
            AdherenceStatus::OutOfAdherence as i32,
            "{} is logged out during phone duty",
            view.agent_id
        );
    }
}

#[tokio::test]
async fn ingest_acks_dedups_and_shows_on_floor() {
    let site = Site::new(SiteConfig::default());
    let daemon = site.start();
    let now = Timestamp::now();
    floor_with_phone_duty(&daemon, now).await;

    let mut floor = daemon.floor(Some(SUPERVISOR.token)).await;
    let mut stream = watch_all(&mut floor).await;
    stream.snapshot().await;

    let mut ingest_client = daemon.ingest(Some(INGEST.token)).await;
    let mut ingest =
        IngestSession::open(&mut ingest_client, "cti-bridge-1").await.expect("the ingest token may publish");
    let ack =
        ingest.publish(vec![event("e-1", "a-1", now, login()), event("e-2", "a-1", now, state("Beschikbaar"))]).await;
    assert_eq!(ack.accepted, 2, "both events are new: {ack:?}");
    assert!(ack.rejected.is_empty(), "nothing is wrong with the batch: {ack:?}");

    let view = stream.wait_for_agent(STEP, |v| v.agent_id == "a-1" && v.state == StateGroup::Available as i32).await;
    assert_eq!(view.state_code, "Beschikbaar");
    assert_eq!(view.adherence, AdherenceStatus::InAdherence as i32, "available during phone duty is in adherence");

    let ack = ingest.publish(vec![event("e-2", "a-1", now, state("Beschikbaar"))]).await;
    assert_eq!(ack.duplicates, 1, "a repeated event id is a duplicate: {ack:?}");
    assert_eq!(ack.accepted, 0, "a duplicate is not accepted again: {ack:?}");

    let missing_time = IngestEvent { time: None, ..event("e-5", "a-2", now, login()) };
    let missing_kind = IngestEvent { kind: None, ..event("e-6", "a-2", now, login()) };
    let ack = ingest
        .publish(vec![
            event("e-3", "a-2", now, login()),
            event("e-4", "nobody-here", now, login()),
            missing_time,
            missing_kind,
            event("e-7", "a-2", now, state("Pauze")),
        ])
        .await;
    assert_eq!(ack.accepted, 2, "the good events of a bad batch are kept: {ack:?}");
    let fields: Vec<&str> = ack.rejected.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(fields, ["events[1].agent", "events[2].time", "events[3].kind"], "{ack:?}");
    for rejected in &ack.rejected {
        assert!(!rejected.message.is_empty(), "a rejection says why: {rejected:?}");
    }
    assert_eq!(ack.rejected[0].event_id, "e-4", "a rejection names the event id");
}

#[tokio::test]
async fn agent_day_figures_and_date_check() {
    let site = Site::new(SiteConfig::default());
    let daemon = site.start();
    let now = Timestamp::now();
    floor_with_phone_duty(&daemon, now).await;
    let mut ingest_client = daemon.ingest(Some(INGEST.token)).await;
    let mut ingest =
        IngestSession::open(&mut ingest_client, "cti-bridge-1").await.expect("the ingest token may publish");
    ingest.publish(vec![event("e-1", "a-1", now, login()), event("e-2", "a-1", now, state("Beschikbaar"))]).await;

    let mut adherence = daemon.adherence(Some(SUPERVISOR.token)).await;
    let request = GetAgentDayRequest { agent_id: "a-1".into(), date: shift_date(now) };
    let figures = within(STEP, adherence.get_agent_day(request), "reading day figures")
        .await
        .expect("GetAgentDay must succeed")
        .into_inner();
    assert_eq!(figures.agent_id, "a-1");
    assert!(figures.scheduled_seconds > 0, "phone duty started 30 minutes ago: {figures:?}");
    assert!(figures.out_of_adherence_seconds > 0, "a-1 was logged out for the first 30 minutes: {figures:?}");
    assert!(figures.late_login_seconds > 0, "a-1 logged in 30 minutes late: {figures:?}");

    let request = GetAgentDayRequest { agent_id: "a-1".into(), date: "2026-13-45".into() };
    let status =
        within(STEP, adherence.get_agent_day(request), "reading day figures").await.expect_err("month 13 is invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("date"), "the message must name the field: {:?}", status.message());
}

#[tokio::test]
async fn watch_floor_resumes_or_resends_snapshot() {
    let site =
        Site::new(SiteConfig { extra_toml: "[limits]\nfloor_retained_changes = 16\n".into(), ..SiteConfig::default() });
    let daemon = site.start();
    let now = Timestamp::now();
    floor_with_phone_duty(&daemon, now).await;
    let mut floor = daemon.floor(Some(ADMIN.token)).await;

    let mut first = watch_all(&mut floor).await;
    let snapshot = first.snapshot().await;
    assert!(snapshot.seq > 0, "the agents' first views are numbered changes");
    let mut ingest_client = daemon.ingest(Some(INGEST.token)).await;
    let mut ingest =
        IngestSession::open(&mut ingest_client, "cti-bridge-1").await.expect("the ingest token may publish");
    ingest.publish(vec![event("e-login", "a-1", now, login())]).await;
    first.wait_for_agent(STEP, |v| v.agent_id == "a-1" && v.state != StateGroup::LoggedOut as i32).await;
    let last_seq = first.last_seq;
    drop(first);

    let request = WatchFloorRequest { resume_after_seq: last_seq, ..Default::default() };
    let mut resumed = watch_floor(&mut floor, request).await.expect("WatchFloor must be allowed");
    let message = resumed.next(STEP).await;
    assert!(
        matches!(message.update, Some(Update::Resumed(_))),
        "resuming at the last seq must not resend a snapshot: {message:?}"
    );
    drop(resumed);

    // Each acknowledged batch is one engine flush, so 40 batches make at
    // least 40 numbered changes, far more than the 16 retained.
    for i in 0..40 {
        let code = if i % 2 == 0 { "Pauze" } else { "Beschikbaar" };
        ingest
            .publish(vec![event(&format!("e-flip-{i}"), "a-1", now + SignedDuration::from_millis(i), state(code))])
            .await;
    }
    let request = WatchFloorRequest { resume_after_seq: 1, ..Default::default() };
    let mut stale = watch_floor(&mut floor, request).await.expect("WatchFloor must be allowed");
    let snapshot = stale.snapshot().await;
    assert_eq!(snapshot.begin.reason, "resume_window_passed");
    assert_eq!(snapshot.agents.len(), 3, "the fresh snapshot lists every agent");
    assert!(snapshot.seq > last_seq + 16, "40 changes must have passed: seq {} after {last_seq}", snapshot.seq);
}

#[tokio::test]
async fn reflection_and_health_answer() {
    let site = Site::new(SiteConfig::default());
    let daemon = site.start();

    let mut reflection = ServerReflectionClient::new(daemon.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        within(STEP, reflection.server_reflection_info(tokio_stream::iter([request])), "calling reflection")
            .await
            .expect("reflection must answer")
            .into_inner();
    let response = within(STEP, responses.message(), "reading the reflection answer")
        .await
        .expect("the reflection stream must not fail")
        .expect("reflection must send one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("list_services must be answered with a service list: {response:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in ["floorwatch.v1.FloorService", "floorwatch.v1.IngestService", "grpc.health.v1.Health"] {
        assert!(names.contains(&expected), "reflection must list {expected}: {names:?}");
    }

    let mut health = HealthClient::new(daemon.channel().await);
    for service in ["", "floorwatch.v1.FloorService"] {
        let request = HealthCheckRequest { service: service.to_string() };
        let response =
            within(STEP, health.check(request), "checking health").await.expect("health must answer").into_inner();
        assert_eq!(response.status, ServingStatus::Serving as i32, "service {service:?} must be SERVING");
    }
}

#[tokio::test]
async fn sigterm_ends_streams_and_exits_zero() {
    let site = Site::new(SiteConfig::default());
    let mut daemon = site.start();
    let mut floor = daemon.floor(Some(ADMIN.token)).await;
    let mut stream = watch_all(&mut floor).await;
    stream.snapshot().await;

    daemon.terminate();
    let deadline = tokio::time::Instant::now() + STEP;
    let status = loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        match stream.next_result(remaining).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream must end with UNAVAILABLE, not a clean end"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "the status must say why: {:?}", status.message());

    let exit = daemon.wait_exit(Duration::from_secs(10)).await.expect("floorwatch must exit within 10 s of SIGTERM");
    assert_eq!(exit.code(), Some(0), "a drained shutdown exits 0");
}

// The gRPC server waits for the frozen peer until the 10 s drain stage
// timeout, but its task is not aborted then, so it keeps the ingest
// pipeline's input open and the pipeline stage times out as well.
#[tokio::test]
async fn frozen_peer_costs_one_drain_timeout() {
    let site = Site::new(SiteConfig::default());
    let mut daemon = site.start();

    // An HTTP/2 client that sends its preface and SETTINGS, then neither
    // reads nor writes: a wall board on a network that went away.
    let mut peer = std::net::TcpStream::connect(daemon.grpc_addr).expect("the gRPC port must accept a connection");
    peer.set_write_timeout(Some(STEP)).expect("a write timeout must be settable");
    peer.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").expect("the preface must be sent");
    peer.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).expect("an empty SETTINGS frame must be sent");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = std::time::Instant::now();
    daemon.terminate();
    let exit = daemon.wait_exit(Duration::from_secs(30)).await.expect("floorwatch must exit within 30 s of SIGTERM");
    let took = started.elapsed();

    assert_eq!(exit.code(), Some(0), "a drained shutdown exits 0");
    assert!(
        took < Duration::from_secs(13),
        "one 10 s drain stage timeout is enough for a frozen peer; exit took {took:?}"
    );
    let warnings = daemon.log_lines_with("ingest pipeline did not stop in time");
    assert!(warnings.is_empty(), "nothing was in flight, so the pipeline must stop: {warnings:?}");
    drop(peer);
}

#[tokio::test]
async fn floor_shows_roster_when_publish_returns() {
    let site = Site::new(SiteConfig::default());
    let daemon = site.start();
    floor_with_phone_duty(&daemon, Timestamp::now()).await;

    // No waiting: PutAgents and PublishRoster reply once the floor has the change.
    let mut floor = daemon.floor(Some(ADMIN.token)).await;
    let snapshot = watch_all(&mut floor).await.snapshot().await;
    assert_eq!(snapshot.agents.len(), AGENTS.len(), "{:?}", snapshot.agents);
    for view in &snapshot.agents {
        assert_eq!(
            view.scheduled_activity,
            Some(floorwatch::proto::ActivityType::PhoneDuty as i32),
            "{} must show its phone duty",
            view.agent_id
        );
    }
}
