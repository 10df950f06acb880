//! `floorwatch demo` end to end: the simulated site streams its floor over
//! gRPC, `floorwatch watch --once` prints it, and SIGTERM stops the demo
//! cleanly.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// The demo simulates 163 agents by default; the floor must show most.
const MIN_AGENTS: usize = 150;

fn start_demo() -> Daemon {
    let mut command = Command::new(floorwatch_bin());
    command.args(["demo", "--grpc", "127.0.0.1:0", "--speed", "10"]);
    Daemon::spawn(command, DaemonKind::Demo)
}

#[tokio::test]
async fn demo_streams_floor_and_stops_on_sigterm() {
    let mut demo = start_demo();
    let token = demo.demo_token.clone().expect("the demo must print a token");

    let mut floor = demo.floor(Some(&token)).await;
    let mut stream = watch_all(&mut floor).await;
    let snapshot = stream.snapshot().await;
    assert!(snapshot.agents.len() >= MIN_AGENTS, "the demo floor has {} agents", snapshot.agents.len());
    assert_eq!(snapshot.agents.len(), snapshot.begin.agent_count as usize, "snapshot_begin must count the agents");

    let delta = stream.wait_for_agent(Duration::from_secs(10), |_| true).await;
    assert!(!delta.agent_id.is_empty(), "a delta names its agent");
    drop(stream);

    let mut watch = Command::new(floorwatch_bin());
    watch.args(["watch", "--addr", &format!("http://{}", demo.grpc_addr), "--once"]).env("FLOORWATCH_TOKEN", &token);
    let output = run_bounded(watch, None, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "watch --once must succeed; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let header = stdout.lines().next().unwrap_or_default();
    assert!(header.starts_with("floorwatch — "), "the first line is the header: {header:?}");
    let rows = stdout.lines().skip_while(|l| !l.starts_with("agent ")).skip(1).filter(|l| !l.trim().is_empty()).count();
    assert!(rows >= MIN_AGENTS, "watch --once must print one row per agent, got {rows}:\n{stdout}");

    demo.terminate();
    let exit = demo.wait_exit(Duration::from_secs(15)).await.expect("the demo must exit within 15 s of SIGTERM");
    assert_eq!(exit.code(), Some(0), "a drained demo exits 0");
}
