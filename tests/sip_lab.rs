//! The end-to-end lab: Kamailio from Debian as registrar and presence
//! server (`lab/kamailio/kamailio.cfg`), two agents' phones played by SIPp
//! that register and call each other through it, and floorwatch
//! subscribing to the agents' `dialog` and `reg` packages through Kamailio.
//! A floor stream must show agent a-1 registered, on a call, off it again,
//! and unreachable once its registration lapses, with adherence against the
//! published roster changing with it.

mod common;
#[path = "support/peers.rs"]
mod peers;

use std::time::{Duration, Instant};

use common::*;
use floorwatch::proto::{ActivityType, AdherenceStatus, StateGroup};
use jiff::{SignedDuration, Timestamp};
use peers::{Kamailio, Sipp, Transport, free_port};

const FLOOR_STEP: Duration = Duration::from_secs(30);
const SIPP_LIMIT: Duration = Duration::from_secs(45);

/// Registration lifetime of the caller's phone, short so that it lapses
/// during the test. The lab registrar checks for expired contacts every
/// second.
const CALLER_EXPIRES: u32 = 10;

fn lab_site(kamailio: &Kamailio) -> (Site, tempfile::TempDir) {
    let dir = tempfile::Builder::new().prefix("floorwatch-lab-agents-").tempdir().expect("temp dir");
    let agents = dir.path().join("agents.csv");
    std::fs::write(
        &agents,
        "id,display_name,team,contract_hours,platform_ids\n\
         a-1,Anna Test,team-a,1.5,sip:1001@example.com\n\
         a-2,Bram Test,team-a,1.5,sip:1002@example.com\n",
    )
    .expect("agents file must be writable");
    let site = Site::new(SiteConfig {
        agents_file: Some(agents),
        extra_toml: format!(
            "[sip]\nenabled = true\nlisten = [\"udp:127.0.0.1:0\"]\noutbound_proxy = \"sip:{}\"\n\
             identity = \"sip:floorwatch@example.com\"\npackages = [\"dialog\", \"reg\"]\n\
             start_spread_seconds = 0\nexpires_seconds = 600\n",
            kamailio.address()
        ),
        ..SiteConfig::default()
    });
    (site, dir)
}

/// Waits until the log has `count` lines containing `needle`.
async fn wait_for_log(daemon: &Daemon, needle: &str, count: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while daemon.log_lines_with(needle).len() < count {
        assert!(Instant::now() < deadline, "no {count} log lines with {needle:?} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn lab_call_and_lapse_reach_floor() {
    let Some(sipp) = Sipp::new() else { return };
    let Some(kamailio) = Kamailio::start("kamailio.cfg") else { return };
    let (site, _agents) = lab_site(&kamailio);
    let daemon = site.start();

    let now = Timestamp::now();
    let duty = |id: &str| {
        activity(id, now - SignedDuration::from_mins(30), now + SignedDuration::from_mins(60), ActivityType::PhoneDuty)
    };
    let mut roster = daemon.roster(Some(PLANNER.token)).await;
    let published =
        publish_roster(&mut roster, vec![duty("a-1"), duty("a-2")]).await.expect("PublishRoster must succeed");
    assert!(published.published, "the roster must be published");

    // Every subscription of both agents is active at Kamailio.
    wait_for_log(&daemon, "SIP feed of agent healthy", 2, FLOOR_STEP).await;

    let mut floor = daemon.floor(Some(SUPERVISOR.token)).await;
    let mut stream = watch_all(&mut floor).await;

    let caller_port = free_port();
    let callee_port = free_port();
    sipp.register(&kamailio, "1001", caller_port, CALLER_EXPIRES);
    sipp.register(&kamailio, "1002", callee_port, 120);
    let registered =
        stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.device_registered == Some(true)).await;
    assert_ne!(registered.state(), StateGroup::LoggedOut, "a registered agent is logged in");

    let mut callee = sipp.start(
        "callee",
        "callee.xml",
        callee_port,
        Transport::Udp,
        Some(&kamailio.address()),
        &["-s", "1002", "-d", "500"],
    );
    let mut caller = sipp.start(
        "caller",
        "caller.xml",
        caller_port,
        Transport::Udp,
        Some(&kamailio.address()),
        &["-s", "1001", "-key", "callee", "1002", "-d", "2500"],
    );

    // The caller's dialog has direction initiator, so the connected call is outbound.
    let on_call =
        stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.state() == StateGroup::OnCallOutbound).await;
    assert!(on_call.call.is_some(), "the floor shows the current call");
    assert_eq!(on_call.adherence(), AdherenceStatus::InAdherence, "a call during phone duty is in adherence");

    let after_call = stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.call.is_none()).await;
    assert_ne!(after_call.state(), StateGroup::OnCallOutbound);
    caller.expect_success(SIPP_LIMIT);
    callee.expect_success(SIPP_LIMIT);

    let lapsed = stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.device_registered == Some(false)).await;
    assert_eq!(lapsed.state(), StateGroup::Unreachable, "a lapsed registration during work is unreachable");
    assert_ne!(lapsed.adherence(), on_call.adherence(), "adherence must change when the agent becomes unreachable");

    // a-2 stays registered through all of this.
    let snapshot = watch_all(&mut floor).await.snapshot().await;
    let callee_view = snapshot.agents.iter().find(|a| a.agent_id == "a-2").expect("a-2 is on the floor");
    assert_eq!(callee_view.device_registered, Some(true));
}
