//! Harness shared by the daemon integration tests.
//!
//! A [`Site`] writes a configuration into a temporary directory (listeners on
//! 127.0.0.1 port 0, the journal in the same directory, one token per role).
//! [`Site::start`] runs the real `floorwatch serve` binary, reads the bound
//! addresses from its log and keeps draining its standard error into a
//! buffer, which is printed when a test panics. A [`Daemon`] is killed with
//! SIGKILL by its pid when dropped, so no test leaves a process behind.
//!
//! The helpers wrap the generated tonic clients; every await they make has a
//! timeout and panics with what it was waiting for.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self as std_mpsc, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use floorwatch::api::auth::hash_token;
use floorwatch::api::convert::timestamp_to_proto;
use floorwatch::proto::adherence_service_client::AdherenceServiceClient;
use floorwatch::proto::floor_service_client::FloorServiceClient;
use floorwatch::proto::floor_update::Update;
use floorwatch::proto::ingest_event::Kind;
use floorwatch::proto::ingest_service_client::IngestServiceClient;
use floorwatch::proto::roster_service_client::RosterServiceClient;
use floorwatch::proto::{
    ActivityType, Agent, AgentView, Empty, FloorUpdate, IngestEvent, PublishAck, PublishRequest, PublishRosterRequest,
    PublishRosterResponse, PutAgentsRequest, ScheduledActivity, SnapshotBegin, WatchFloorRequest,
};
use jiff::Timestamp;
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::InterceptedService;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};

/// Maximum wait for one step of a test (a reply, a stream message).
pub const STEP: Duration = Duration::from_secs(5);

/// Maximum wait for the daemon to log "floorwatch ready". A debug build on
/// a busy machine needs a few seconds.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Log lines kept per daemon; older lines are dropped.
const LOG_LINES_KEPT: usize = 20_000;

/// Log lines printed when a test fails.
const LOG_LINES_PRINTED: usize = 200;

/// A bearer token of the test configuration.
#[derive(Debug, Clone, Copy)]
pub struct TestToken {
    pub name: &'static str,
    pub role: &'static str,
    pub token: &'static str,
    pub teams: &'static [&'static str],
    pub agent_id: Option<&'static str>,
}

pub const ADMIN: TestToken =
    TestToken { name: "itest-admin", role: "admin", token: "admin-token-5c2e", teams: &[], agent_id: None };
pub const PLANNER: TestToken =
    TestToken { name: "itest-planner", role: "planner", token: "planner-token-81ad", teams: &[], agent_id: None };
pub const SUPERVISOR: TestToken = TestToken {
    name: "itest-supervisor-a",
    role: "supervisor",
    token: "supervisor-token-3f07",
    teams: &["team-a"],
    agent_id: None,
};
pub const WALLBOARD: TestToken = TestToken {
    name: "itest-wallboard-a",
    role: "wallboard",
    token: "wallboard-token-9b14",
    teams: &["team-a"],
    agent_id: None,
};
pub const AGENT: TestToken = TestToken {
    name: "itest-agent-a1",
    role: "agent",
    token: "agent-token-a1-60d3",
    teams: &[],
    agent_id: Some("a-1"),
};
pub const INGEST: TestToken =
    TestToken { name: "itest-ingest", role: "ingest", token: "ingest-token-e4a9", teams: &[], agent_id: None };

/// Every token the test configuration holds.
pub const TOKENS: [TestToken; 6] = [ADMIN, PLANNER, SUPERVISOR, WALLBOARD, AGENT, INGEST];

/// What a test changes in the generated configuration.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// IANA zone of `site.time_zone`.
    pub time_zone: &'static str,
    /// Bind the WebSocket ingest listener too.
    pub websocket: bool,
    /// `roster.agents_file`, imported at start-up.
    pub agents_file: Option<PathBuf>,
    /// TOML appended at the end, for sections the base leaves out
    /// (`[engine]`, `[limits]`, `[websocket]`).
    pub extra_toml: String,
}

/// A temporary directory with a configuration file and the state directory.
pub struct Site {
    pub dir: TempDir,
    pub config_path: PathBuf,
}

/// A running `floorwatch serve` (or any other long-running subcommand).
pub struct Daemon {
    child: Child,
    pub grpc_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub websocket_addr: Option<SocketAddr>,
    /// SIP listeners as ("Udp" or "Tcp", address), from the start-up log.
    pub sip_addrs: Vec<(String, SocketAddr)>,
    /// The admin token `floorwatch demo` prints; `None` for `serve`.
    pub demo_token: Option<String>,
    log: Arc<Mutex<VecDeque<String>>>,
    exit: Option<ExitStatus>,
}

/// Adds `authorization: Bearer <token>` to every request; `None` sends no
/// header.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

/// A channel whose requests carry a bearer token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// An open `WatchFloor` stream.
pub struct FloorStream {
    inner: Streaming<FloorUpdate>,
    /// Highest sequence number received.
    pub last_seq: u64,
    /// Messages received so far.
    pub received: usize,
}

/// The start of a floor stream: a snapshot or a resume.
#[derive(Debug)]
pub struct Snapshot {
    pub begin: SnapshotBegin,
    pub agents: Vec<AgentView>,
    pub seq: u64,
}

/// An open `IngestService.Publish` stream that sends one batch at a time
/// and waits for its acknowledgement.
pub struct IngestSession {
    tx: mpsc::Sender<PublishRequest>,
    acks: Streaming<PublishAck>,
    source: String,
    next_batch: u64,
}

// === impl SiteConfig ===

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig { time_zone: "Europe/Amsterdam", websocket: false, agents_file: None, extra_toml: String::new() }
    }
}

// === impl Site ===

impl Site {
    /// Writes the configuration into a new temporary directory.
    pub fn new(config: SiteConfig) -> Site {
        let dir = tempfile::Builder::new().prefix("floorwatch-itest-").tempdir().expect("a temp dir must be creatable");
        let config_path = dir.path().join("floorwatch.toml");
        let state_dir = dir.path().join("state");
        std::fs::write(&config_path, config_toml(&config, &state_dir)).expect("the config file must be writable");
        Site { dir, config_path }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Starts `floorwatch serve` on this site and waits until it is ready.
    pub fn start(&self) -> Daemon {
        let mut command = Command::new(floorwatch_bin());
        command.arg("serve").arg("--config").arg(&self.config_path);
        Daemon::spawn(command, DaemonKind::Serve)
    }
}

/// Returns the configuration text: every listener on port 0, the journal in
/// `state_dir`, and the tokens of [`TOKENS`].
pub fn config_toml(config: &SiteConfig, state_dir: &Path) -> String {
    let mut text = String::new();
    let websocket = if config.websocket { "127.0.0.1:0" } else { "" };
    let agents_file = config.agents_file.as_ref().map_or(String::new(), |p| p.display().to_string());
    writeln!(
        text,
        r#"# Generated by tests/common/mod.rs.
[site]
name = "itest site"
time_zone = "{time_zone}"
locale = "nl"

[listen]
grpc = "127.0.0.1:0"
admin = "127.0.0.1:0"
websocket = "{websocket}"

[storage]
state_dir = "{state_dir}"

[roster]
agents_file = "{agents_file}"

# The tests publish short rosters for today: agents get small contracts,
# and no week is final, so a publish for today is not flagged as a late
# change.
[roster.labour_rules]
min_contract_hours = 1.0
max_contract_hours = 40.0
final_weeks_ahead = 0

[telemetry]
log_format = "text"
log_filter = "info"

[auth]"#,
        time_zone = config.time_zone,
        state_dir = state_dir.display(),
    )
    .expect("writing to a String cannot fail");

    for token in TOKENS {
        writeln!(
            text,
            "\n[[auth.token]]\nname = \"{}\"\nrole = \"{}\"\nsha256 = \"{}\"",
            token.name,
            token.role,
            hash_token(token.token)
        )
        .expect("writing to a String cannot fail");
        if !token.teams.is_empty() {
            let teams: Vec<String> = token.teams.iter().map(|t| format!("\"{t}\"")).collect();
            writeln!(text, "teams = [{}]", teams.join(", ")).expect("writing to a String cannot fail");
        }
        if let Some(agent_id) = token.agent_id {
            writeln!(text, "agent_id = \"{agent_id}\"").expect("writing to a String cannot fail");
        }
    }
    text.push('\n');
    text.push_str(&config.extra_toml);
    text
}

/// Path of the binary under test.
pub fn floorwatch_bin() -> &'static str {
    env!("CARGO_BIN_EXE_floorwatch")
}

/// Path of a file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

// === impl Daemon ===

/// Which start-up lines to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonKind {
    /// `serve`: the listener lines, then "floorwatch ready" on stderr.
    Serve,
    /// `demo`: "gRPC API:        http://ADDR" and then
    /// "export FLOORWATCH_TOKEN=…" on stdout.
    Demo,
}

impl Daemon {
    /// Spawns `command` with its output piped and waits for the addresses.
    pub fn spawn(mut command: Command, kind: DaemonKind) -> Daemon {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the floorwatch binary must start");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (lines_tx, lines_rx) = std_mpsc::channel::<String>();

        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        drain_lines(stderr, "", log.clone(), lines_tx.clone());
        drain_lines(stdout, "stdout: ", log.clone(), lines_tx);

        let mut daemon = Daemon {
            child,
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_addr: None,
            websocket_addr: None,
            sip_addrs: Vec::new(),
            demo_token: None,
            log,
            exit: None,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut grpc = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = match lines_rx.recv_timeout(remaining) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("floorwatch did not become ready within {START_TIMEOUT:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = daemon.child.wait().ok();
                    daemon.exit = status;
                    panic!("floorwatch exited before it was ready: {status:?}");
                }
            };
            match kind {
                DaemonKind::Serve => {
                    if line.contains("gRPC API listening") {
                        grpc = field_addr(&line, "grpc_addr=");
                    } else if line.contains("admin endpoint listening") {
                        daemon.admin_addr = field_addr(&line, "admin_addr=");
                    } else if line.contains("WebSocket ingest listening") {
                        daemon.websocket_addr = field_addr(&line, "addr=");
                    } else if line.contains("SIP listener bound") {
                        if let Some(addr) = field_addr(&line, "addr=") {
                            let transport = if line.contains("transport=Tcp") { "Tcp" } else { "Udp" };
                            daemon.sip_addrs.push((transport.to_owned(), addr));
                        }
                    } else if line.contains("floorwatch ready") {
                        break;
                    }
                }
                DaemonKind::Demo => {
                    if let Some(rest) = line.strip_prefix("stdout: gRPC API:") {
                        grpc = rest.trim().strip_prefix("http://").and_then(|a| a.parse().ok());
                    } else if let Some(token) = line.strip_prefix("stdout: export FLOORWATCH_TOKEN=") {
                        daemon.demo_token = Some(token.trim().to_string());
                        break;
                    }
                }
            }
        }
        daemon.grpc_addr = grpc.expect("the daemon must log its gRPC address before it is ready");
        daemon
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns the captured output, stderr and stdout interleaved.
    pub fn log_text(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Returns the captured lines that contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        if self.exit.is_some() {
            return;
        }
        // std's Child::kill sends SIGKILL to this child's pid.
        let _ = self.child.kill();
        self.exit = self.child.wait().ok();
    }

    /// Sends SIGTERM to the process by its pid.
    pub fn terminate(&self) {
        let status =
            Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status().expect("the kill command must run");
        assert!(status.success(), "kill -TERM {} failed: {status}", self.pid());
    }

    /// Waits up to `limit` for the process to exit; returns its status.
    /// Sleeps asynchronously, so the test's own gRPC connections keep
    /// replying to the daemon's HTTP/2 GOAWAY and PING frames while it drains.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.exit.is_some() {
            return self.exit;
        }
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                return self.exit;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Returns the resident set size in KiB, from /proc/PID/status.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status of the daemon must be readable");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("/proc/PID/status must have a VmRSS line in kB")
    }

    /// Opens a new HTTP/2 connection to the gRPC API.
    pub async fn channel(&self) -> Channel {
        connect(Endpoint::from_shared(format!("http://{}", self.grpc_addr)).expect("the address must form a URI")).await
    }

    pub async fn floor(&self, token: Option<&str>) -> FloorServiceClient<Authed> {
        FloorServiceClient::with_interceptor(self.channel().await, Bearer::new(token))
    }

    pub async fn roster(&self, token: Option<&str>) -> RosterServiceClient<Authed> {
        RosterServiceClient::with_interceptor(self.channel().await, Bearer::new(token))
    }

    pub async fn adherence(&self, token: Option<&str>) -> AdherenceServiceClient<Authed> {
        AdherenceServiceClient::with_interceptor(self.channel().await, Bearer::new(token))
    }

    pub async fn ingest(&self, token: Option<&str>) -> IngestServiceClient<Authed> {
        IngestServiceClient::with_interceptor(self.channel().await, Bearer::new(token))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            let skip = log.len().saturating_sub(LOG_LINES_PRINTED);
            eprintln!("--- last {} log lines of floorwatch pid {} ---", log.len() - skip, self.child.id());
            for line in log.iter().skip(skip) {
                eprintln!("{line}");
            }
            eprintln!("--- end of floorwatch log ---");
        }
    }
}

/// Reads `pipe` line by line on a thread, so the pipe never fills; each
/// line goes into `log` and to `lines` while someone listens.
fn drain_lines(
    pipe: impl std::io::Read + Send + 'static,
    prefix: &'static str,
    log: Arc<Mutex<VecDeque<String>>>,
    lines: std_mpsc::Sender<String>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let line = format!("{prefix}{}", strip_ansi(&line));
            {
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                if log.len() == LOG_LINES_KEPT {
                    log.pop_front();
                }
                log.push_back(line.clone());
            }
            // The starter stops listening once the daemon is ready.
            let _ = lines.send(line);
        }
    });
}

/// Removes ANSI escape sequences (colours) from a log line.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses the address after `key` (e.g. `grpc_addr=`) in a log line.
fn field_addr(line: &str, key: &str) -> Option<SocketAddr> {
    let start = line.find(key)? + key.len();
    line[start..].split_whitespace().next()?.parse().ok()
}

/// Runs `command` to completion with `stdin` as its input; kills it by pid
/// and panics when it runs longer than `limit`.
pub fn run_bounded(mut command: Command, stdin: Option<&str>, limit: Duration) -> Output {
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the command must start");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(text.as_bytes()).expect("the command must read its input");
    }
    let pid = child.id();
    let (done_tx, done_rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    match done_rx.recv_timeout(limit) {
        Ok(output) => output.expect("the command's output must be readable"),
        Err(_) => {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
            panic!("{command:?} did not finish within {limit:?}");
        }
    }
}

/// Connects an endpoint within [`STEP`].
pub async fn connect(endpoint: Endpoint) -> Channel {
    let endpoint = endpoint.connect_timeout(STEP);
    within(STEP, endpoint.connect(), "connecting to the gRPC API").await.expect("the gRPC API must accept a connection")
}

/// Awaits `future` for at most `limit`; panics naming `what` on timeout.
pub async fn within<F: Future>(limit: Duration, future: F, what: &str) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {limit:?} while {what}"),
    }
}

// === impl Bearer ===

impl Bearer {
    pub fn new(token: Option<&str>) -> Bearer {
        Bearer(token.map(|t| format!("Bearer {t}").parse().expect("test tokens are ASCII")))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

// === roster helpers ===

pub fn agent(id: &str, team: &str, contract_hours: f64, platform_ids: &[&str]) -> Agent {
    Agent {
        id: id.to_string(),
        display_name: format!("Agent {id}"),
        team: team.to_string(),
        contract_hours,
        platform_ids: platform_ids.iter().map(|p| p.to_string()).collect(),
    }
}

pub fn activity(agent_id: &str, start: Timestamp, end: Timestamp, kind: ActivityType) -> ScheduledActivity {
    ScheduledActivity {
        agent_id: agent_id.to_string(),
        start: Some(timestamp_to_proto(start)),
        end: Some(timestamp_to_proto(end)),
        activity: kind as i32,
    }
}

pub async fn put_agents(client: &mut RosterServiceClient<Authed>, agents: Vec<Agent>) {
    let count = agents.len() as u32;
    let response = within(STEP, client.put_agents(PutAgentsRequest { agents }), "storing agents")
        .await
        .expect("PutAgents must succeed")
        .into_inner();
    assert_eq!(response.stored, count, "PutAgents must store every agent");
}

/// Publishes `activities` for the period that covers them, with one hour of
/// margin on each side.
pub async fn publish_roster(
    client: &mut RosterServiceClient<Authed>,
    activities: Vec<ScheduledActivity>,
) -> Result<PublishRosterResponse, Status> {
    let start = activities.iter().filter_map(|a| a.start).map(|t| t.seconds).min().expect("a roster has activities");
    let end = activities.iter().filter_map(|a| a.end).map(|t| t.seconds).max().expect("a roster has activities");
    let request = PublishRosterRequest {
        period_start: Some(prost_types::Timestamp { seconds: start - 3600, nanos: 0 }),
        period_end: Some(prost_types::Timestamp { seconds: end + 3600, nanos: 0 }),
        activities,
        comment: "integration test".into(),
        ..Default::default()
    };
    within(STEP, client.publish_roster(request), "publishing a roster").await.map(|r| r.into_inner())
}

// === ingest helpers ===

pub fn event(id: &str, agent: &str, time: Timestamp, kind: Kind) -> IngestEvent {
    IngestEvent {
        event_id: id.to_string(),
        agent: agent.to_string(),
        time: Some(timestamp_to_proto(time)),
        kind: Some(kind),
    }
}

pub fn login() -> Kind {
    Kind::Login(Empty {})
}

pub fn logout() -> Kind {
    Kind::Logout(Empty {})
}

pub fn state(code: &str) -> Kind {
    Kind::StateCode(code.to_string())
}

// === impl IngestSession ===

impl IngestSession {
    /// Opens a publish stream for `source`.
    pub async fn open(client: &mut IngestServiceClient<Authed>, source: &str) -> Result<IngestSession, Status> {
        let (tx, rx) = mpsc::channel(16);
        let response = within(STEP, client.publish(ReceiverStream::new(rx)), "opening an ingest stream").await?;
        Ok(IngestSession { tx, acks: response.into_inner(), source: source.to_string(), next_batch: 1 })
    }

    /// Sends one batch and returns its acknowledgement.
    pub async fn try_publish(&mut self, events: Vec<IngestEvent>) -> Result<PublishAck, Status> {
        let batch_id = self.next_batch;
        self.next_batch += 1;
        let request = PublishRequest { batch_id, source: self.source.clone(), events, source_healthy: None };
        within(STEP, self.tx.send(request), "sending an ingest batch")
            .await
            .map_err(|_| Status::unavailable("the ingest stream is closed"))?;
        let ack = within(STEP * 2, self.acks.message(), "waiting for an ingest ack")
            .await?
            .ok_or_else(|| Status::unavailable("the ingest stream ended before the ack"))?;
        assert_eq!(ack.batch_id, batch_id, "acks must come in batch order");
        Ok(ack)
    }

    /// Sends one batch; panics unless it is acknowledged.
    pub async fn publish(&mut self, events: Vec<IngestEvent>) -> PublishAck {
        self.try_publish(events).await.expect("the batch must be acknowledged")
    }
}

// === impl FloorStream ===

/// Opens `WatchFloor`; the error is the status of the call.
pub async fn watch_floor(
    client: &mut FloorServiceClient<Authed>,
    request: WatchFloorRequest,
) -> Result<FloorStream, Status> {
    let response = within(STEP, client.watch_floor(request), "opening a floor stream").await?;
    Ok(FloorStream { inner: response.into_inner(), last_seq: 0, received: 0 })
}

/// Opens `WatchFloor` from the start (a snapshot) for every team in scope.
pub async fn watch_all(client: &mut FloorServiceClient<Authed>) -> FloorStream {
    watch_floor(client, WatchFloorRequest::default()).await.expect("WatchFloor must be allowed")
}

impl FloorStream {
    /// Returns the next message, an error status, or `None` at the end of
    /// the stream; panics when nothing arrives within `limit`.
    pub async fn next_result(&mut self, limit: Duration) -> Result<Option<FloorUpdate>, Status> {
        let message = within(limit, self.inner.message(), "waiting for a floor message").await?;
        if let Some(update) = &message {
            self.last_seq = self.last_seq.max(update.seq);
            self.received += 1;
        }
        Ok(message)
    }

    /// Returns the next message; panics on an error or the end of stream.
    pub async fn next(&mut self, limit: Duration) -> FloorUpdate {
        self.next_result(limit).await.expect("the floor stream must not fail").expect("the floor stream must not end")
    }

    /// Reads a snapshot: `snapshot_begin`, the agents, `snapshot_end`.
    /// Team summaries in between are skipped.
    pub async fn snapshot(&mut self) -> Snapshot {
        let first = self.next(STEP).await;
        let Some(Update::SnapshotBegin(begin)) = first.update else {
            panic!("the stream must start with snapshot_begin, got {first:?}");
        };
        let mut agents = Vec::new();
        loop {
            let message = self.next(STEP).await;
            match message.update {
                Some(Update::Agent(view)) => agents.push(view),
                Some(Update::SnapshotEnd(_)) => {
                    return Snapshot { begin, agents, seq: first.seq };
                }
                Some(Update::Team(_)) => {}
                other => panic!("unexpected message inside a snapshot: {other:?}"),
            }
        }
    }

    /// Reads until an agent view matches `predicate`, for at most `limit`.
    pub async fn wait_for_agent(&mut self, limit: Duration, predicate: impl Fn(&AgentView) -> bool) -> AgentView {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next(remaining).await;
            if let Some(Update::Agent(view)) = message.update {
                if predicate(&view) {
                    return view;
                }
            }
        }
    }
}
