//! The admin HTTP endpoint over a real socket on 127.0.0.1.

use std::net::SocketAddr;
use std::time::Duration;

use floorwatch::admin::{Component, Readiness, serve_admin};
use floorwatch::telemetry::{self, EventRejected, metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running admin endpoint and the means to stop it.
struct Admin {
    addr: SocketAddr,
    ready: Readiness,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

/// Status code, header block and body of one response.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

async fn start_admin() -> Admin {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound listener has an address");
    let ready = Readiness::new();
    let shutdown = CancellationToken::new();
    let handle = telemetry::install_prometheus();
    let task = tokio::spawn(serve_admin(listener, handle, ready.clone(), shutdown.clone()));
    Admin { addr, ready, shutdown, task }
}

/// Sends one HTTP/1.1 request with `Connection: close` and reads the reply.
async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect to admin endpoint");
    let head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("send request");

    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("reply within 5 s")
        .expect("read reply");
    let raw = String::from_utf8(raw).expect("reply is UTF-8");

    let (head, body) = raw.split_once("\r\n\r\n").expect("reply has a header block");
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("status line has a code");
    Reply { status, head: head.to_owned(), body: body.to_owned() }
}

#[tokio::test]
async fn healthz_returns_ok() {
    let admin = start_admin().await;
    let reply = request(admin.addr, "GET", "/healthz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ok\n");
}

#[tokio::test]
async fn readyz_turns_ready_after_flags_set() {
    let admin = start_admin().await;

    let reply = request(admin.addr, "GET", "/readyz").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, "not ready: listeners, roster, journal, engine\n");

    admin.ready.set(Component::Listeners, true);
    admin.ready.set(Component::Journal, true);
    let reply = request(admin.addr, "GET", "/readyz").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, "not ready: roster, engine\n");

    admin.ready.set(Component::Roster, true);
    admin.ready.set(Component::Engine, true);
    let reply = request(admin.addr, "GET", "/readyz").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "ready\n");
}

#[tokio::test]
async fn metrics_renders_described_metric() {
    let admin = start_admin().await;
    EventRejected { source: "platform-main", field: "agent_ref", reason: "unknown_agent" }.emit();
    ::metrics::histogram!(metrics::JOURNAL_COMMIT_SECONDS).record(0.003);

    let reply = request(admin.addr, "GET", "/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(reply.head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{}", reply.head);

    let help = format!("# HELP {} ", metrics::EVENTS_REJECTED_TOTAL);
    assert!(reply.body.contains(&help), "{}", reply.body);
    let sample = format!("{}{{source=\"platform-main\",reason=\"unknown_agent\"}} 1", metrics::EVENTS_REJECTED_TOTAL);
    assert!(reply.body.contains(&sample), "{}", reply.body);

    // Buckets make the commit time a histogram rather than a summary.
    let bucket = format!("{}_bucket{{le=\"0.005\"}} 1", metrics::JOURNAL_COMMIT_SECONDS);
    assert!(reply.body.contains(&bucket), "{}", reply.body);
}

#[tokio::test]
async fn unknown_path_returns_404() {
    let admin = start_admin().await;
    let reply = request(admin.addr, "GET", "/debug").await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn post_returns_405() {
    let admin = start_admin().await;
    let reply = request(admin.addr, "POST", "/metrics").await;
    assert_eq!(reply.status, 405);
    assert!(reply.head.to_ascii_lowercase().contains("allow: get, head"), "{}", reply.head);
}

#[tokio::test]
async fn shutdown_stops_server() {
    let admin = start_admin().await;
    admin.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), admin.task)
        .await
        .expect("server stops within 10 s")
        .expect("server task does not panic");
    assert!(TcpStream::connect(admin.addr).await.is_err(), "listener must be closed");
}
