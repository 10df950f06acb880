//! The SIP adapter against SIPp as the presence server: the dialog notifier
//! scenario over UDP, over UDP with SIPp's simulated packet loss (so
//! retransmissions are exercised), and over TCP. A floor stream must show
//! the call ringing, connected and ended, and SIPp must see every NOTIFY
//! answered and the unsubscribe at shutdown.

mod common;
#[path = "support/peers.rs"]
mod peers;

use std::time::Duration;

use common::*;
use floorwatch::proto::StateGroup;
use peers::{Peer, Sipp, Transport, free_port};

const FLOOR_STEP: Duration = Duration::from_secs(20);

/// Starts the dialog notifier on `port`; `extra` adds SIPp options. The
/// 1.5 s between NOTIFYs leaves time to open the floor stream before the
/// call rings.
fn start_notifier(sipp: &Sipp, port: u16, transport: Transport, extra: &[&str]) -> Peer {
    let mut args = vec!["-key", "expires", "600", "-d", "1500"];
    args.extend_from_slice(extra);
    sipp.start("notifier", "notifier-dialog.xml", port, transport, None, &args)
}

fn site(sip_toml: &str) -> (Site, tempfile::TempDir) {
    let dir = tempfile::Builder::new().prefix("floorwatch-sipp-agents-").tempdir().expect("temp dir");
    let agents = dir.path().join("agents.csv");
    std::fs::write(
        &agents,
        "id,display_name,team,contract_hours,platform_ids\na-1,Anna Test,team-a,1.5,sip:1001@example.com\n",
    )
    .expect("agents file must be writable");
    let site = Site::new(SiteConfig {
        agents_file: Some(agents),
        extra_toml: format!(
            "[sip]\nenabled = true\nidentity = \"sip:floorwatch@example.com\"\npackages = [\"dialog\"]\n\
             start_spread_seconds = 0\n{sip_toml}"
        ),
        ..SiteConfig::default()
    });
    (site, dir)
}

/// Runs one call through the notifier and checks the floor and SIPp's result.
async fn run_call(sip_toml: &str, sipp: &Sipp, port: u16, transport: Transport, sipp_extra: &[&str]) {
    let mut notifier = start_notifier(sipp, port, transport, sipp_extra);
    // SIPp needs a moment to bind; floorwatch retries a failed SUBSCRIBE anyway.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (site, _agents) = site(sip_toml);
    let mut daemon = site.start();

    let mut floor = daemon.floor(Some(SUPERVISOR.token)).await;
    let mut stream = watch_all(&mut floor).await;
    stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.state() == StateGroup::Ringing).await;
    let on_call = stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.call.is_some()).await;
    assert_eq!(on_call.state(), StateGroup::OnCallInbound);
    let ended = stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.call.is_none()).await;
    assert_ne!(ended.state(), StateGroup::OnCallInbound);

    // Under -lost, SIPp may still be retransmitting the last NOTIFY whose
    // 200 it dropped, and its script accepts no SUBSCRIBE before that 200.
    // Its retransmissions go out after 0.5, 1 and 2 s.
    tokio::time::sleep(Duration::from_secs(4)).await;
    daemon.terminate();
    let exited = daemon.wait_exit(Duration::from_secs(15)).await;
    assert!(exited.is_some_and(|s| s.success()), "floorwatch must stop cleanly: {exited:?}");
    let status = notifier.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIPp must finish the scenario without errors: {status:?}\n{}",
        sipp.errors("notifier")
    );
}

#[tokio::test]
async fn sipp_notifier_over_udp() {
    let Some(sipp) = Sipp::new() else { return };
    let port = free_port();
    let toml = format!("listen = [\"udp:127.0.0.1:0\"]\noutbound_proxy = \"sip:127.0.0.1:{port}\"\n");
    run_call(&toml, &sipp, port, Transport::Udp, &[]).await;
}

#[tokio::test]
async fn sipp_notifier_with_packet_loss() {
    let Some(sipp) = Sipp::new() else { return };
    let port = free_port();
    let toml = format!("listen = [\"udp:127.0.0.1:0\"]\noutbound_proxy = \"sip:127.0.0.1:{port}\"\n");
    run_call(&toml, &sipp, port, Transport::Udp, &["-lost", "10"]).await;
}

#[tokio::test]
async fn sipp_notifier_over_tcp() {
    let Some(sipp) = Sipp::new() else { return };
    let port = free_port();
    let local = free_port();
    let toml =
        format!("listen = [\"tcp:127.0.0.1:{local}\"]\noutbound_proxy = \"sip:127.0.0.1:{port};transport=tcp\"\n");
    run_call(&toml, &sipp, port, Transport::Tcp, &[]).await;
}
