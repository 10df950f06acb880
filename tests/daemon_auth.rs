//! Roles and scopes of the gRPC API on the real daemon: which token may call
//! which RPC, which agents each token receives, and that every refusal
//! carries a message. The agents come from tests/fixtures/agents.csv: a-1 and a-2 in
//! team-a, b-1 in team-b.

mod common;

use std::fmt::Debug;

use common::*;
use floorwatch::proto::{ActivityType, GetAgentDayRequest, WatchFloorRequest};
use jiff::{SignedDuration, Timestamp};
use tonic::{Code, Status};

fn site() -> Site {
    Site::new(SiteConfig { agents_file: Some(fixture("agents.csv")), ..SiteConfig::default() })
}

/// Asserts that `result` failed with `code` and a non-empty message.
fn assert_refused<T: Debug>(result: Result<T, Status>, code: Code, what: &str) {
    let status = match result {
        Ok(value) => panic!("{what}: expected {code:?}, got success: {value:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{what}: {status:?}");
    assert!(!status.message().trim().is_empty(), "{what}: the refusal must say why");
}

fn phone_duty_now() -> Vec<floorwatch::proto::ScheduledActivity> {
    let now = Timestamp::now();
    ["a-1", "a-2", "b-1"]
        .iter()
        .map(|id| {
            activity(
                id,
                now - SignedDuration::from_mins(30),
                now + SignedDuration::from_mins(60),
                ActivityType::PhoneDuty,
            )
        })
        .collect()
}

/// Returns the agent ids in the snapshot a token receives.
async fn visible_agents(daemon: &Daemon, token: &str, teams: &[&str]) -> Result<Vec<String>, Status> {
    let mut floor = daemon.floor(Some(token)).await;
    let request = WatchFloorRequest { teams: teams.iter().map(|t| t.to_string()).collect(), ..Default::default() };
    let mut stream = watch_floor(&mut floor, request).await?;
    let snapshot = stream.snapshot().await;
    Ok(snapshot.agents.into_iter().map(|a| a.agent_id).collect())
}

#[tokio::test]
async fn watch_floor_is_scoped_per_role() {
    let site = site();
    let daemon = site.start();

    assert_eq!(visible_agents(&daemon, ADMIN.token, &[]).await.expect("admin may watch"), ["a-1", "a-2", "b-1"]);
    assert_eq!(visible_agents(&daemon, PLANNER.token, &[]).await.expect("planner may watch"), ["a-1", "a-2", "b-1"]);
    assert_eq!(visible_agents(&daemon, SUPERVISOR.token, &[]).await.expect("supervisor may watch"), ["a-1", "a-2"]);
    assert_eq!(visible_agents(&daemon, WALLBOARD.token, &[]).await.expect("wallboard may watch"), ["a-1", "a-2"]);
    assert_eq!(
        visible_agents(&daemon, WALLBOARD.token, &["team-a"]).await.expect("wallboard may watch team-a"),
        ["a-1", "a-2"]
    );
    assert_eq!(visible_agents(&daemon, AGENT.token, &[]).await.expect("agent may watch"), ["a-1"]);

    assert_refused(
        visible_agents(&daemon, WALLBOARD.token, &["team-b"]).await,
        Code::PermissionDenied,
        "wallboard of team-a asks for team-b",
    );
    assert_refused(
        visible_agents(&daemon, SUPERVISOR.token, &["team-b"]).await,
        Code::PermissionDenied,
        "supervisor of team-a asks for team-b",
    );
    assert_refused(
        visible_agents(&daemon, INGEST.token, &[]).await,
        Code::PermissionDenied,
        "ingest token watches the floor",
    );
}

#[tokio::test]
async fn agent_day_is_scoped_per_role() {
    let site = site();
    let daemon = site.start();
    let mut roster = daemon.roster(Some(PLANNER.token)).await;
    publish_roster(&mut roster, phone_duty_now()).await.expect("the planner may publish");

    let day = |agent_id: &str| GetAgentDayRequest { agent_id: agent_id.to_string(), date: String::new() };
    let mut own = daemon.adherence(Some(AGENT.token)).await;
    let figures = within(STEP, own.get_agent_day(day("a-1")), "reading own figures")
        .await
        .expect("an agent may read its own figures");
    assert_eq!(figures.into_inner().agent_id, "a-1");
    let result = within(STEP, own.get_agent_day(day("a-2")), "reading another agent's figures").await;
    assert_refused(result, Code::PermissionDenied, "agent a-1 reads a-2");

    let mut supervisor = daemon.adherence(Some(SUPERVISOR.token)).await;
    within(STEP, supervisor.get_agent_day(day("a-2")), "reading figures")
        .await
        .expect("a supervisor may read its team");
    let result = within(STEP, supervisor.get_agent_day(day("b-1")), "reading figures").await;
    assert_refused(result, Code::PermissionDenied, "supervisor of team-a reads b-1");

    let mut planner = daemon.adherence(Some(PLANNER.token)).await;
    within(STEP, planner.get_agent_day(day("b-1")), "reading figures").await.expect("a planner may read every team");

    for token in [WALLBOARD, INGEST] {
        let mut client = daemon.adherence(Some(token.token)).await;
        let result = within(STEP, client.get_agent_day(day("a-1")), "reading figures").await;
        assert_refused(result, Code::PermissionDenied, &format!("{} reads agent figures", token.role));
    }
}

#[tokio::test]
async fn publish_roster_needs_planner_or_admin() {
    let site = site();
    let daemon = site.start();

    for token in [PLANNER, ADMIN] {
        let mut roster = daemon.roster(Some(token.token)).await;
        let response = publish_roster(&mut roster, phone_duty_now()).await;
        assert!(response.expect("planner and admin may publish").published, "{} must publish", token.role);
    }
    for token in [SUPERVISOR, WALLBOARD, AGENT, INGEST] {
        let mut roster = daemon.roster(Some(token.token)).await;
        let result = publish_roster(&mut roster, phone_duty_now()).await;
        assert_refused(result, Code::PermissionDenied, &format!("{} publishes a roster", token.role));
    }
}

#[tokio::test]
async fn ingest_needs_ingest_or_admin() {
    let site = site();
    let daemon = site.start();
    let now = Timestamp::now();

    for (token, id) in [(INGEST, "e-1"), (ADMIN, "e-2")] {
        let mut client = daemon.ingest(Some(token.token)).await;
        let mut session = IngestSession::open(&mut client, "cti-bridge-1").await.expect("ingest and admin may publish");
        let ack = session.publish(vec![event(id, "a-1", now, login())]).await;
        assert_eq!(ack.accepted, 1, "{} publishes one event: {ack:?}", token.role);
    }
    for token in [WALLBOARD, SUPERVISOR, PLANNER, AGENT] {
        let mut client = daemon.ingest(Some(token.token)).await;
        let result = IngestSession::open(&mut client, "cti-bridge-1").await.map(|_| ());
        assert_refused(result, Code::PermissionDenied, &format!("{} publishes events", token.role));
    }
}

#[tokio::test]
async fn missing_or_wrong_token_is_unauthenticated() {
    let site = site();
    let daemon = site.start();

    for (token, what) in [(None, "no token"), (Some("not-a-configured-token"), "wrong token")] {
        let mut floor = daemon.floor(token).await;
        let result = watch_floor(&mut floor, WatchFloorRequest::default()).await.map(|_| ());
        assert_refused(result, Code::Unauthenticated, &format!("WatchFloor with {what}"));

        let mut adherence = daemon.adherence(token).await;
        let request = GetAgentDayRequest { agent_id: "a-1".into(), date: String::new() };
        let result = within(STEP, adherence.get_agent_day(request), "reading figures").await;
        assert_refused(result, Code::Unauthenticated, &format!("GetAgentDay with {what}"));

        let mut roster = daemon.roster(token).await;
        assert_refused(
            publish_roster(&mut roster, phone_duty_now()).await,
            Code::Unauthenticated,
            &format!("PublishRoster with {what}"),
        );

        let mut ingest = daemon.ingest(token).await;
        let result = IngestSession::open(&mut ingest, "cti-bridge-1").await.map(|_| ());
        assert_refused(result, Code::Unauthenticated, &format!("Publish with {what}"));
    }
}
