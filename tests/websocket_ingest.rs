//! Integration tests of the WebSocket ingest adapter over real sockets on
//! 127.0.0.1: server mode driven by a tokio-tungstenite client, client mode
//! against a small tokio-tungstenite feed server written here. A fake
//! pipeline answers submits and records health reports. Every await that
//! could hang has a timeout.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use floorwatch::domain::{AgentEvent, EventKind};
use floorwatch::ingest::{IngestCommand, IngestHandle, SubmitOutcome};
use floorwatch::websocket::{AuthFn, AuthRejection, ClientConfig, ServerConfig, run_client, run_server, telemetry};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

const STEP: Duration = Duration::from_secs(5);
const TOKEN: &str = "feed-token-1";

type ClientWs = WebSocketStream<MaybeTlsStream<TcpStream>>;

// --- fake pipeline ---------------------------------------------------------

/// What the fake pipeline saw.
#[derive(Clone, Default)]
struct Recorded {
    events: Arc<Mutex<Vec<AgentEvent>>>,
}

struct Pipeline {
    ingest: IngestHandle,
    recorded: Recorded,
    health: mpsc::UnboundedReceiver<(String, bool)>,
    /// Permits the pipeline needs to answer a submit; tests that check the
    /// ack waits for the commit start it closed.
    gate: Arc<Semaphore>,
}

/// Starts a fake pipeline: `Duplicate` for a repeated (source, id),
/// `Rejected` for agent `nobody`, `Accepted` otherwise.
fn pipeline(gate_open: bool) -> Pipeline {
    let (ingest, mut rx) = IngestHandle::channel(16);
    let recorded = Recorded::default();
    let (health_tx, health) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(if gate_open { Semaphore::MAX_PERMITS } else { 0 }));

    let events = recorded.events.clone();
    let task_gate = gate.clone();
    tokio::spawn(async move {
        let mut seen = HashSet::new();
        while let Some(command) = rx.recv().await {
            match command {
                IngestCommand::Events { events: batch, reply } => {
                    let Ok(permit) = task_gate.acquire().await else { return };
                    permit.forget();
                    let outcomes = batch
                        .iter()
                        .map(|event| {
                            if event.agent_ref == "nobody" {
                                SubmitOutcome::Rejected {
                                    field: "agent".into(),
                                    message: "agent: \"nobody\" is not in the agent directory".into(),
                                }
                            } else if seen.insert((event.source.clone(), event.source_event_id.clone())) {
                                SubmitOutcome::Accepted
                            } else {
                                SubmitOutcome::Duplicate
                            }
                        })
                        .collect();
                    events.lock().unwrap().extend(batch);
                    let _ = reply.send(Ok(outcomes));
                }
                IngestCommand::SourceHealth { source, healthy, reply, .. } => {
                    let _ = health_tx.send((source, healthy));
                    let _ = reply.send(Ok(()));
                }
            }
        }
    });
    Pipeline { ingest, recorded, health, gate }
}

async fn next_health(pipeline: &mut Pipeline) -> (String, bool) {
    timeout(STEP, pipeline.health.recv()).await.expect("health report in time").expect("pipeline alive")
}

// --- metrics ---------------------------------------------------------------

/// Counters by `name{label=value,…}`, shared by all tests in this binary.
fn counters() -> &'static Mutex<HashMap<String, u64>> {
    static COUNTERS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        let _ = metrics::set_global_recorder(CountingRecorder);
        Mutex::new(HashMap::new())
    })
}

fn counter(key: &str) -> u64 {
    counters().lock().unwrap().get(key).copied().unwrap_or(0)
}

struct CountingRecorder;
struct CountingCounter(String);

impl metrics::CounterFn for CountingCounter {
    fn increment(&self, value: u64) {
        *counters().lock().unwrap().entry(self.0.clone()).or_default() += value;
    }
    fn absolute(&self, value: u64) {
        counters().lock().unwrap().insert(self.0.clone(), value);
    }
}

impl metrics::Recorder for CountingRecorder {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        let name =
            if labels.is_empty() { key.name().to_string() } else { format!("{}{{{}}}", key.name(), labels.join(",")) };
        metrics::Counter::from_arc(Arc::new(CountingCounter(name)))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

// --- server-mode helpers ---------------------------------------------------

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn auth() -> AuthFn {
    Arc::new(|token: Option<&str>| match token {
        Some(TOKEN) => Ok("platform".to_string()),
        Some(_) => {
            Err(AuthRejection::Unauthenticated("invalid bearer token; check the feed's credentials".to_string()))
        }
        None => {
            Err(AuthRejection::Unauthenticated("missing bearer token; send Authorization: Bearer <token>".to_string()))
        }
    })
}

fn server_config() -> ServerConfig {
    ServerConfig { max_message_bytes: 4096, disconnect_grace: Duration::from_millis(50), ..ServerConfig::default() }
}

async fn start_server(cfg: ServerConfig, ingest: IngestHandle) -> Server {
    counters();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        run_server(listener, cfg, ingest, auth(), token).await.expect("valid config");
    });
    Server { addr, shutdown, task }
}

async fn connect(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<ClientWs, WsError> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(token) = token {
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let (ws, _) = timeout(STEP, tokio_tungstenite::connect_async(request)).await.expect("connect in time")?;
    Ok(ws)
}

async fn connect_ok(addr: SocketAddr) -> ClientWs {
    connect(addr, "/v1/events", Some(TOKEN)).await.expect("upgrade accepted")
}

async fn send(ws: &mut ClientWs, text: &str) {
    timeout(STEP, ws.send(Message::text(text))).await.expect("send in time").expect("send ok");
}

/// Reads the next text frame as JSON, skipping pings and pongs.
async fn recv_json<S>(ws: &mut WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = timeout(STEP, ws.next()).await.expect("frame in time").expect("stream open").expect("read ok");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("reply is JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads until a close frame and returns it.
async fn recv_close(ws: &mut ClientWs) -> Option<CloseFrame> {
    loop {
        match timeout(STEP, ws.next()).await.expect("close in time") {
            Some(Ok(Message::Close(frame))) => return frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn event(id: &str, seq: u64, agent: &str) -> String {
    format!(
        r#"{{"v":1,"type":"event","id":"{id}","seq":{seq},"time":"2026-12-04T09:00:00.123Z","agent":"{agent}","event":"login"}}"#
    )
}

// --- server mode -----------------------------------------------------------

#[tokio::test]
async fn server_acks_only_after_commit() {
    let pipeline = pipeline(false);
    let server = start_server(server_config(), pipeline.ingest.clone()).await;
    let mut ws = connect_ok(server.addr).await;

    send(&mut ws, &event("evt-000123", 123, "u-1017")).await;
    let early = timeout(Duration::from_millis(300), ws.next()).await;
    assert!(early.is_err(), "no ack may arrive before the pipeline commits: {early:?}");

    pipeline.gate.add_permits(1);
    let ack = recv_json(&mut ws).await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["id"], "evt-000123");
    assert_eq!(ack["status"], "accepted");

    let events = pipeline.recorded.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].agent_ref, "u-1017");
    assert_eq!(events[0].source, "platform", "source falls back to the principal");
    assert_eq!(events[0].kind, EventKind::Login);
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_acks_repeat_as_duplicate() {
    let pipeline = pipeline(true);
    let server = start_server(server_config(), pipeline.ingest.clone()).await;
    let mut ws = connect(server.addr, "/v1/events?source=dup-feed", Some(TOKEN)).await.unwrap();

    // Without seq, so the pipeline's id dedupe answers, not the seq check.
    let text = r#"{"v":1,"type":"event","id":"e-1","time":"2026-12-04T09:00:00Z","agent":"u-1","event":"logout"}"#;
    send(&mut ws, text).await;
    assert_eq!(recv_json(&mut ws).await["status"], "accepted");
    send(&mut ws, text).await;
    assert_eq!(recv_json(&mut ws).await["status"], "duplicate");

    let events = pipeline.recorded.events.lock().unwrap().clone();
    assert_eq!(events[0].source, "dup-feed", "?source= names the source");
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_drops_replayed_seq() {
    let pipeline = pipeline(true);
    let server = start_server(server_config(), pipeline.ingest.clone()).await;
    let mut ws = connect_ok(server.addr).await;

    send(&mut ws, &event("s-5", 5, "u-1")).await;
    assert_eq!(recv_json(&mut ws).await["status"], "accepted");
    send(&mut ws, &event("s-4", 4, "u-1")).await;
    assert_eq!(recv_json(&mut ws).await["status"], "duplicate");

    assert_eq!(pipeline.recorded.events.lock().unwrap().len(), 1, "replay never reaches the pipeline");
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_reports_bad_input_and_stays_open() {
    let pipeline = pipeline(true);
    let server = start_server(server_config(), pipeline.ingest.clone()).await;
    let mut ws = connect_ok(server.addr).await;
    let invalid_before = counter("floorwatch_websocket_messages_total{result=invalid}");

    send(&mut ws, "{not json").await;
    let error = recv_json(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "invalid_json");

    send(&mut ws, r#"{"v":1,"type":"event","id":"m-1","time":"2026-12-04T09:00:00Z","event":"login"}"#).await;
    let error = recv_json(&mut ws).await;
    assert_eq!(error["code"], "invalid_field");
    assert_eq!(error["field"], "agent");
    assert_eq!(error["id"], "m-1");

    send(&mut ws, r#"{"v":1,"type":"event","id":"m-2","time":"yesterday","agent":"u-1","event":"login"}"#).await;
    let error = recv_json(&mut ws).await;
    assert_eq!(error["field"], "time");
    assert_eq!(error["message"], "time: invalid RFC 3339 timestamp \"yesterday\"; use e.g. 2026-12-04T09:00:00Z");

    send(
        &mut ws,
        r#"{"v":1,"type":"event","id":"m-3","time":"2026-12-04T09:00:00Z","agent":"u-1","event":"teleport"}"#,
    )
    .await;
    let error = recv_json(&mut ws).await;
    assert_eq!(error["code"], "invalid_field");
    assert_eq!(error["field"], "event");

    send(&mut ws, r#"{"v":2,"type":"heartbeat"}"#).await;
    assert_eq!(recv_json(&mut ws).await["code"], "unsupported_version");

    send(&mut ws, r#"{"v":1,"type":"subscribe"}"#).await;
    assert_eq!(recv_json(&mut ws).await["code"], "unknown_type");

    send(&mut ws, &event("m-4", 1, "nobody")).await;
    let error = recv_json(&mut ws).await;
    assert_eq!(error["code"], "rejected");
    assert_eq!(error["id"], "m-4");

    send(&mut ws, &event("m-5", 2, "u-1")).await;
    assert_eq!(recv_json(&mut ws).await["status"], "accepted", "connection stays usable");

    let invalid = counter("floorwatch_websocket_messages_total{result=invalid}") - invalid_before;
    assert!(invalid >= 6, "invalid inputs counted: {invalid}");
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_acks_each_batch_event() {
    let pipeline = pipeline(true);
    let server = start_server(server_config(), pipeline.ingest.clone()).await;
    let mut ws = connect_ok(server.addr).await;

    send(
        &mut ws,
        r#"{"v":1,"type":"batch","events":[
            {"id":"b-1","time":"2026-12-04T09:00:00Z","agent":"u-1","event":"call_start","call_id":"c-9","direction":"inbound"},
            {"id":"b-2","time":"soon","agent":"u-1","event":"call_hold","call_id":"c-9"},
            {"id":"b-3","time":"2026-12-04T09:00:02Z","agent":"u-1","event":"call_end","call_id":"c-9"}
        ]}"#,
    )
    .await;

    let first = recv_json(&mut ws).await;
    let second = recv_json(&mut ws).await;
    let third = recv_json(&mut ws).await;
    assert_eq!((first["id"].as_str(), first["type"].as_str()), (Some("b-1"), Some("ack")));
    assert_eq!((second["id"].as_str(), second["type"].as_str()), (Some("b-2"), Some("error")));
    assert_eq!((third["id"].as_str(), third["type"].as_str()), (Some("b-3"), Some("ack")));
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_closes_oversized_with_1009() {
    let pipeline = pipeline(true);
    let server = start_server(server_config(), pipeline.ingest.clone()).await;
    let mut ws = connect_ok(server.addr).await;

    let padding = "x".repeat(8 * 1024);
    send(&mut ws, &format!(r#"{{"v":1,"type":"heartbeat","pad":"{padding}"}}"#)).await;

    let close = recv_close(&mut ws).await.expect("close frame has a code");
    assert_eq!(close.code, CloseCode::Size);
    assert!(close.reason.as_str().contains("4096"), "reason names the limit: {}", close.reason);
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_rejects_bad_token_with_401() {
    let pipeline = pipeline(true);
    let server = start_server(server_config(), pipeline.ingest.clone()).await;

    match connect(server.addr, "/v1/events", Some("wrong")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected HTTP 401, got {:?}", other.map(|_| "upgrade")),
    }
    match connect(server.addr, "/v1/events", None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected HTTP 401, got {:?}", other.map(|_| "upgrade")),
    }
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_answers_other_path_with_404() {
    let pipeline = pipeline(true);
    let server = start_server(server_config(), pipeline.ingest.clone()).await;

    match connect(server.addr, "/v2/events", Some(TOKEN)).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected HTTP 404, got {:?}", other.map(|_| "upgrade")),
    }
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_answers_binary_with_error() {
    let pipeline = pipeline(true);
    let server = start_server(server_config(), pipeline.ingest.clone()).await;
    let mut ws = connect_ok(server.addr).await;

    timeout(STEP, ws.send(Message::binary(vec![1u8, 2, 3]))).await.unwrap().unwrap();
    let error = recv_json(&mut ws).await;
    assert_eq!(error["code"], "unsupported_frame");

    send(&mut ws, &event("bin-1", 1, "u-1")).await;
    assert_eq!(recv_json(&mut ws).await["status"], "accepted");
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_limits_connections() {
    let pipeline = pipeline(true);
    let cfg = ServerConfig { max_connections: 1, ..server_config() };
    let server = start_server(cfg, pipeline.ingest.clone()).await;
    let mut first = connect_ok(server.addr).await;

    match connect(server.addr, "/v1/events", Some(TOKEN)).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected HTTP 503, got {:?}", other.map(|_| "upgrade")),
    }

    timeout(STEP, first.close(None)).await.unwrap().unwrap();
    let _ = recv_close(&mut first).await;
    // The slot is released when the server's task ends; retry briefly.
    let deadline = Instant::now() + STEP;
    loop {
        match connect(server.addr, "/v1/events", Some(TOKEN)).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(err) => panic!("slot never freed: {err}"),
        }
    }
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_reports_source_health() {
    let mut pipeline = pipeline(true);
    let cfg = ServerConfig { silence_timeout: Duration::from_millis(300), ..server_config() };
    let server = start_server(cfg, pipeline.ingest.clone()).await;

    let mut ws = connect_ok(server.addr).await;
    send(&mut ws, r#"{"v":1,"type":"hello","source":"health-feed"}"#).await;
    send(&mut ws, r#"{"v":1,"type":"heartbeat","time":"2026-12-04T09:00:00Z"}"#).await;
    assert_eq!(next_health(&mut pipeline).await, ("health-feed".to_string(), true));

    // Silent past the timeout.
    assert_eq!(next_health(&mut pipeline).await, ("health-feed".to_string(), false));
    send(&mut ws, &event("h-1", 1, "u-1")).await;
    assert_eq!(recv_json(&mut ws).await["status"], "accepted");
    assert_eq!(next_health(&mut pipeline).await, ("health-feed".to_string(), true));

    // Disconnect: down after the grace.
    timeout(STEP, ws.close(None)).await.unwrap().unwrap();
    assert_eq!(next_health(&mut pipeline).await, ("health-feed".to_string(), false));

    // A new connection is healthy again on its first message.
    let mut ws = connect(server.addr, "/v1/events?source=health-feed", Some(TOKEN)).await.unwrap();
    send(&mut ws, r#"{"v":1,"type":"heartbeat"}"#).await;
    assert_eq!(next_health(&mut pipeline).await, ("health-feed".to_string(), true));
    server.shutdown.cancel();
}

#[tokio::test]
async fn server_closes_1001_on_shutdown() {
    let pipeline = pipeline(true);
    let server = start_server(server_config(), pipeline.ingest.clone()).await;
    let mut ws = connect_ok(server.addr).await;
    send(&mut ws, &event("sd-1", 1, "u-1")).await;
    assert_eq!(recv_json(&mut ws).await["status"], "accepted");

    server.shutdown.cancel();
    let close = recv_close(&mut ws).await.expect("close frame has a code");
    assert_eq!(close.code, CloseCode::Away);
    timeout(STEP, server.task).await.expect("server stops in time").unwrap();
}

// --- client mode -----------------------------------------------------------

/// One accepted connection of the test feed server.
struct FeedConnection {
    ws: WebSocketStream<TcpStream>,
    authorization: Option<String>,
}

async fn accept_feed(listener: &TcpListener) -> FeedConnection {
    let (stream, _) = timeout(STEP, listener.accept()).await.expect("client connects in time").unwrap();
    let mut authorization = None;
    // The Err type is fixed by tungstenite's handshake callback.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        authorization = request.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
        Ok(response)
    };
    let ws = timeout(STEP, tokio_tungstenite::accept_hdr_async(stream, callback)).await.unwrap().unwrap();
    FeedConnection { ws, authorization }
}

fn client_config(addr: SocketAddr) -> ClientConfig {
    ClientConfig {
        auth_header: Some(format!("Bearer {TOKEN}")),
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_millis(800),
        disconnect_grace: Duration::from_millis(10),
        ..ClientConfig::new("client-feed", format!("ws://{addr}/feed"))
    }
}

#[tokio::test]
async fn client_resumes_after_1012_with_backoff() {
    let mut pipeline = pipeline(true);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let client = tokio::spawn(run_client(
        client_config(listener.local_addr().unwrap()),
        pipeline.ingest.clone(),
        shutdown.clone(),
    ));
    let gaps_before = counter(telemetry::GAPS_TOTAL);
    let reconnects_before = counter(telemetry::RECONNECTS_TOTAL);

    // First connection: auth header, resume without "after", two events.
    let mut feed = accept_feed(&listener).await;
    assert_eq!(feed.authorization.as_deref(), Some("Bearer feed-token-1"));
    let resume = recv_json(&mut feed.ws).await;
    assert_eq!(resume["type"], "resume");
    assert!(resume.get("after").is_none(), "first connect has no resume point: {resume}");

    for (id, seq) in [("c-1", 1), ("c-2", 2)] {
        timeout(STEP, feed.ws.send(Message::text(event(id, seq, "u-1")))).await.unwrap().unwrap();
        let ack = recv_json(&mut feed.ws).await;
        assert_eq!((ack["id"].as_str(), ack["status"].as_str()), (Some(id), Some("accepted")));
    }
    assert_eq!(next_health(&mut pipeline).await, ("client-feed".to_string(), true));

    // Restart: close with 1012, the client must wait its backoff.
    let frame = CloseFrame { code: CloseCode::Restart, reason: "restarting".into() };
    timeout(STEP, feed.ws.close(Some(frame))).await.unwrap().unwrap();
    let closed_at = Instant::now();
    drop(feed);
    assert_eq!(next_health(&mut pipeline).await, ("client-feed".to_string(), false));

    let mut feed = accept_feed(&listener).await;
    let waited = closed_at.elapsed();
    assert!(waited >= Duration::from_millis(100), "reconnected after only {waited:?}");
    let resume = recv_json(&mut feed.ws).await;
    assert_eq!(resume["after"], "c-2", "resume carries the last acked id");

    // seq 4 after 2: a gap of one event, counted.
    timeout(STEP, feed.ws.send(Message::text(event("c-4", 4, "u-1")))).await.unwrap().unwrap();
    assert_eq!(recv_json(&mut feed.ws).await["status"], "accepted");
    assert!(counter(telemetry::GAPS_TOTAL) > gaps_before, "gap counted");
    assert!(counter(telemetry::RECONNECTS_TOTAL) > reconnects_before, "reconnect counted");
    assert_eq!(next_health(&mut pipeline).await, ("client-feed".to_string(), true));

    // seq 3 now lies behind 4: dropped and acked as duplicate.
    timeout(STEP, feed.ws.send(Message::text(event("c-3", 3, "u-1")))).await.unwrap().unwrap();
    assert_eq!(recv_json(&mut feed.ws).await["status"], "duplicate");

    shutdown.cancel();
    match timeout(STEP, feed.ws.next()).await.expect("close in time") {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected close 1001, got {other:?}"),
    }
    timeout(STEP, client).await.expect("client stops in time").unwrap().unwrap();
}

#[tokio::test]
async fn client_reports_unreachable_feed() {
    let mut pipeline = pipeline(true);
    // Bind and drop, so nothing listens on the port.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let client = tokio::spawn(run_client(client_config(addr), pipeline.ingest.clone(), shutdown.clone()));

    assert_eq!(next_health(&mut pipeline).await, ("client-feed".to_string(), false));
    shutdown.cancel();
    timeout(STEP, client).await.expect("client stops in time").unwrap().unwrap();
}

#[tokio::test]
async fn client_rejects_wss_url() {
    let pipeline = pipeline(true);
    let cfg = ClientConfig::new("feed", "wss://feed.example.com/v1");
    let result = run_client(cfg, pipeline.ingest.clone(), CancellationToken::new()).await;
    assert!(result.is_err(), "wss is not supported yet");
}

#[tokio::test]
async fn counters_are_shared_per_binary() {
    // Guards the helper itself: a counter bumped here is visible.
    counters();
    let before = counter(telemetry::RECONNECTS_TOTAL);
    telemetry::reconnect();
    assert!(counter(telemetry::RECONNECTS_TOTAL) > before);
}
