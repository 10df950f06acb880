//! WebSocket ingest (server mode, schema v1) on the real daemon: frames in,
//! acknowledgements and error frames out, and the result on the floor
//! stream. Agents come from tests/fixtures/agents.csv; a-1 has the feed user
//! id u-1001.

mod common;

use common::*;
use floorwatch::proto::StateGroup;
use futures::{SinkExt, StreamExt};
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Feed = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn site() -> Site {
    Site::new(SiteConfig { websocket: true, agents_file: Some(fixture("agents.csv")), ..SiteConfig::default() })
}

fn feed_url(daemon: &Daemon) -> String {
    let addr = daemon.websocket_addr.expect("the WebSocket listener must be configured");
    format!("ws://{addr}/v1/events?source=test-feed")
}

async fn connect_feed(daemon: &Daemon, token: &str) -> Feed {
    let mut request = feed_url(daemon).into_client_request().expect("the feed URL must be valid");
    let bearer = format!("Bearer {token}").parse().expect("test tokens are ASCII");
    request.headers_mut().insert("authorization", bearer);
    let (socket, _) = within(STEP, tokio_tungstenite::connect_async(request), "connecting to the feed")
        .await
        .expect("the ingest token must be allowed to connect");
    socket
}

fn event_frame(id: &str, agent: &str, event: &str, extra: Value) -> String {
    let mut frame = json!({"v": 1, "type": "event", "id": id, "time": Timestamp::now().to_string(), "agent": agent, "event": event});
    if let (Some(frame), Value::Object(extra)) = (frame.as_object_mut(), extra) {
        frame.extend(extra);
    }
    frame.to_string()
}

/// Returns the next text frame as JSON, skipping pings and pongs.
async fn next_frame(feed: &mut Feed) -> Value {
    loop {
        let message = within(STEP, feed.next(), "waiting for a frame from floorwatch")
            .await
            .expect("the connection must stay open")
            .expect("the connection must not fail");
        match message {
            Message::Text(text) => {
                return serde_json::from_str(&text).expect("floorwatch sends JSON text frames");
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame: {other:?}"),
        }
    }
}

async fn send(feed: &mut Feed, frame: String) {
    within(STEP, feed.send(Message::text(frame)), "sending a frame").await.expect("the connection must accept a frame");
}

#[tokio::test]
async fn feed_events_are_acked_and_reach_floor() {
    let site = site();
    let daemon = site.start();
    let mut floor = daemon.floor(Some(ADMIN.token)).await;
    let mut stream = watch_all(&mut floor).await;
    stream.snapshot().await;
    let mut feed = connect_feed(&daemon, INGEST.token).await;

    send(&mut feed, event_frame("ws-1", "u-1001", "login", json!({}))).await;
    assert_eq!(next_frame(&mut feed).await, json!({"v": 1, "type": "ack", "id": "ws-1", "status": "accepted"}));
    send(&mut feed, event_frame("ws-2", "u-1001", "state", json!({"code": "Beschikbaar"}))).await;
    assert_eq!(next_frame(&mut feed).await, json!({"v": 1, "type": "ack", "id": "ws-2", "status": "accepted"}));

    let view = stream.wait_for_agent(STEP, |v| v.agent_id == "a-1" && v.state == StateGroup::Available as i32).await;
    assert_eq!(view.source, "test-feed", "the source is the ?source= of the upgrade");

    send(&mut feed, event_frame("ws-2", "u-1001", "state", json!({"code": "Beschikbaar"}))).await;
    assert_eq!(next_frame(&mut feed).await, json!({"v": 1, "type": "ack", "id": "ws-2", "status": "duplicate"}));
}

#[tokio::test]
async fn malformed_frame_gets_error_and_connection_lives() {
    let site = site();
    let daemon = site.start();
    let mut floor = daemon.floor(Some(ADMIN.token)).await;
    let mut stream = watch_all(&mut floor).await;
    stream.snapshot().await;
    let mut feed = connect_feed(&daemon, INGEST.token).await;

    send(&mut feed, "{\"v\":1,\"type\":\"event\",".to_string()).await;
    let error = next_frame(&mut feed).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "invalid_json", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "the error must say what is wrong: {error}");

    send(&mut feed, event_frame("ws-10", "u-1001", "state", json!({}))).await;
    let error = next_frame(&mut feed).await;
    assert_eq!(error["code"], "invalid_field", "a state event without code: {error}");
    assert_eq!(error["field"], "code", "{error}");
    assert_eq!(error["id"], "ws-10", "{error}");

    send(&mut feed, event_frame("ws-11", "u-9999", "login", json!({}))).await;
    let error = next_frame(&mut feed).await;
    assert_eq!(error["code"], "rejected", "an unknown agent: {error}");
    assert_eq!(error["field"], "agent", "{error}");

    send(&mut feed, event_frame("ws-12", "u-1001", "login", json!({}))).await;
    assert_eq!(next_frame(&mut feed).await["status"], "accepted", "the connection keeps working after errors");
    send(&mut feed, event_frame("ws-13", "u-1001", "state", json!({"code": "Pauze"}))).await;
    assert_eq!(next_frame(&mut feed).await["status"], "accepted");
    stream.wait_for_agent(STEP, |v| v.agent_id == "a-1" && v.state == StateGroup::NotReadyBreak as i32).await;
}

#[tokio::test]
async fn upgrade_without_token_is_401() {
    let site = site();
    let daemon = site.start();

    let result = within(STEP, tokio_tungstenite::connect_async(feed_url(&daemon)), "connecting without a token").await;
    match result {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 401, "{response:?}"),
        Err(other) => panic!("expected HTTP 401, got {other:?}"),
        Ok(_) => panic!("an upgrade without a token must be refused"),
    }
}

#[tokio::test]
async fn upgrade_with_wallboard_token_is_refused() {
    let site = site();
    let daemon = site.start();
    let mut request = feed_url(&daemon).into_client_request().expect("the feed URL must be valid");
    let bearer = format!("Bearer {}", WALLBOARD.token).parse().expect("test tokens are ASCII");
    request.headers_mut().insert("authorization", bearer);

    let result = within(STEP, tokio_tungstenite::connect_async(request), "connecting with a wallboard token").await;
    match result {
        // A known token without the ingest role is forbidden, not unknown.
        Err(WsError::Http(response)) => assert_eq!(response.status(), 403, "{response:?}"),
        Err(other) => panic!("expected HTTP 403, got {other:?}"),
        Ok(_) => panic!("a wallboard token may not publish events"),
    }
}
