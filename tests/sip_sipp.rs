//! The SIP adapter against SIPp as the presence server. The dialog notifier
//! runs over UDP, over UDP with SIPp's simulated packet loss (so
//! retransmissions are exercised) and over TCP. The presence notifier sends
//! away, then available. The reg notifier sends registered, then expired,
//! with packet loss. The floor stream must show each change, and SIPp must
//! get a response to every NOTIFY and the unsubscribe at shutdown.

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
fn start_notifier(sipp: &Sipp, package: &str, port: u16, transport: Transport, extra: &[&str]) -> Peer {
    let mut args = vec!["-key", "expires", "600", "-d", "1500"];
    args.extend_from_slice(extra);
    sipp.start("notifier", &format!("notifier-{package}.xml"), port, transport, None, &args)
}

fn site(package: &str, sip_toml: &str) -> (Site, tempfile::TempDir) {
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
            "[sip]\nenabled = true\nidentity = \"sip:floorwatch@example.com\"\npackages = [\"{package}\"]\n\
             start_spread_seconds = 0\n{sip_toml}"
        ),
        ..SiteConfig::default()
    });
    (site, dir)
}

/// Runs the notifier scenario of `package` against floorwatch, checks the
/// floor with `check`, then stops floorwatch and checks SIPp's result.
async fn run_notifier<F, Fut>(
    package: &str,
    sip_toml: &str,
    sipp: &Sipp,
    port: u16,
    transport: Transport,
    sipp_extra: &[&str],
    check: F,
) where
    F: FnOnce(FloorStream) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut notifier = start_notifier(sipp, package, port, transport, sipp_extra);
    // SIPp needs a moment to bind; floorwatch retries a failed SUBSCRIBE anyway.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (site, _agents) = site(package, sip_toml);
    let mut daemon = site.start();

    let mut floor = daemon.floor(Some(SUPERVISOR.token)).await;
    check(watch_all(&mut floor).await).await;

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

/// Expects the dialog notifier's call: ringing, connected, ended.
async fn expect_call(mut stream: FloorStream) {
    stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.state() == StateGroup::Ringing).await;
    let on_call = stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.call.is_some()).await;
    assert_eq!(on_call.state(), StateGroup::OnCallInbound);
    let ended = stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.call.is_none()).await;
    assert_ne!(ended.state(), StateGroup::OnCallInbound);
}

/// Runs one call through the dialog notifier.
async fn run_call(sip_toml: &str, sipp: &Sipp, port: u16, transport: Transport, sipp_extra: &[&str]) {
    run_notifier("dialog", sip_toml, sipp, port, transport, sipp_extra, expect_call).await;
}

fn udp_toml(port: u16) -> String {
    format!("listen = [\"udp:127.0.0.1:0\"]\noutbound_proxy = \"sip:127.0.0.1:{port}\"\n")
}

#[tokio::test]
async fn sipp_presence_away_then_available() {
    let Some(sipp) = Sipp::new() else { return };
    let port = free_port();
    // The site maps the normalized presence codes to its platform codes.
    let toml =
        udp_toml(port) + "[sip.presence_codes]\n\"rpid:away\" = \"Afwezig\"\n\"presence:open\" = \"Beschikbaar\"\n";
    run_notifier("presence", &toml, &sipp, port, Transport::Udp, &[], |mut stream| async move {
        let away = stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.state_code == "Afwezig").await;
        assert_eq!(away.state(), StateGroup::NotReadyOther);
        let back = stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.state_code == "Beschikbaar").await;
        assert_eq!(back.state(), StateGroup::Available, "basic open without an activity is available");
    })
    .await;
}

#[tokio::test]
async fn sipp_reg_registered_then_expired() {
    let Some(sipp) = Sipp::new() else { return };
    let port = free_port();
    run_notifier("reg", &udp_toml(port), &sipp, port, Transport::Udp, &["-lost", "10"], |mut stream| async move {
        stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.device_registered == Some(true)).await;
        let lost =
            stream.wait_for_agent(FLOOR_STEP, |a| a.agent_id == "a-1" && a.device_registered == Some(false)).await;
        assert_eq!(lost.state(), StateGroup::Unreachable, "an expired registration is a lost device, not a logout");
    })
    .await;
}

#[tokio::test]
async fn sipp_notifier_over_udp() {
    let Some(sipp) = Sipp::new() else { return };
    let port = free_port();
    run_call(&udp_toml(port), &sipp, port, Transport::Udp, &[]).await;
}

#[tokio::test]
async fn sipp_notifier_with_packet_loss() {
    let Some(sipp) = Sipp::new() else { return };
    let port = free_port();
    run_call(&udp_toml(port), &sipp, port, Transport::Udp, &["-lost", "10"]).await;
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
