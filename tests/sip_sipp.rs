//! The SIP adapter against SIPp as the presence server: the dialog notifier
//! scenario over UDP, over UDP with SIPp's simulated packet loss (so
//! retransmissions are exercised), and over TCP. A floor stream must show
//! the call ringing, connected and ended, and SIPp must see every NOTIFY
//! answered and the unsubscribe at shutdown.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use floorwatch::proto::StateGroup;

const FLOOR_STEP: Duration = Duration::from_secs(20);

/// A SIPp process, killed by pid when dropped.
struct Sipp {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sipp {
    /// Waits up to `limit` for SIPp to exit and returns its exit code.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Returns SIPp's output and its error file.
    fn output(&self) -> String {
        let errors = self.log.with_file_name("errors.log");
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(errors).unwrap_or_default());
        text
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- SIPp output ---\n{}\n--- end of SIPp output ---", self.output());
        }
    }
}

/// Returns the SIPp binary, or `None` outside CI when it is not installed.
/// Under `CI=true` a missing SIPp fails the test.
fn sipp_binary() -> Option<&'static str> {
    let found = Command::new("sipp").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if found {
        return Some("sipp");
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("SIPp is not installed; scripts/test.sh installs the Debian package sip-tester");
    }
    eprintln!("SKIPPED: SIPp is not installed (Debian package sip-tester); run scripts/test.sh to install it");
    None
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("a free UDP port")
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("a free TCP port")
}

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)
}

/// Starts the notifier scenario on `port`; `extra` adds SIPp options. The
/// 1.5 s between NOTIFYs leaves time to open the floor stream before the
/// call rings.
fn start_notifier(binary: &str, port: u16, extra: &[&str]) -> Sipp {
    let dir = tempfile::Builder::new().prefix("floorwatch-sipp-").tempdir().expect("temp dir");
    let log = dir.path().join("sipp.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file clone");
    let mut command = Command::new(binary);
    command
        .arg("-sf")
        .arg(scenario("notifier-dialog.xml"))
        .args(["-key", "expires", "600", "-d", "1500", "-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
        .args(["-nostdin", "-timeout", "60s", "-timeout_error", "-trace_err", "-error_file"])
        .arg(dir.path().join("errors.log"))
        .args(extra)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = command.spawn().expect("SIPp must start");
    Sipp { child, log, _dir: dir }
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
async fn run_call(sip_toml: &str, binary: &str, port: u16, sipp_extra: &[&str]) {
    let mut sipp = start_notifier(binary, port, sipp_extra);
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
    let code = sipp.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "SIPp must finish the scenario without errors");
}

#[tokio::test]
async fn sipp_notifier_over_udp() {
    let Some(binary) = sipp_binary() else { return };
    let port = free_udp_port();
    let toml = format!("listen = [\"udp:127.0.0.1:0\"]\noutbound_proxy = \"sip:127.0.0.1:{port}\"\n");
    run_call(&toml, binary, port, &[]).await;
}

#[tokio::test]
async fn sipp_notifier_with_packet_loss() {
    let Some(binary) = sipp_binary() else { return };
    let port = free_udp_port();
    let toml = format!("listen = [\"udp:127.0.0.1:0\"]\noutbound_proxy = \"sip:127.0.0.1:{port}\"\n");
    run_call(&toml, binary, port, &["-lost", "10"]).await;
}

#[tokio::test]
async fn sipp_notifier_over_tcp() {
    let Some(binary) = sipp_binary() else { return };
    let port = free_tcp_port();
    let local = free_tcp_port();
    let toml =
        format!("listen = [\"tcp:127.0.0.1:{local}\"]\noutbound_proxy = \"sip:127.0.0.1:{port};transport=tcp\"\n");
    run_call(&toml, binary, port, &["-t", "t1"]).await;
}
