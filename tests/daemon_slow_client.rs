//! A floor client that stops reading must not slow ingest or other clients,
//! and must not grow the daemon's memory: it gets a `coalesced` marker and
//! the latest state per agent when it reads again.
//!
//! The stalled client has its own HTTP/2 connection with the smallest
//! windows (64 KiB), so what it leaves unread stops at the daemon rather
//! than in the client's receive buffers. The daemon keeps 1024 changes in
//! its ring (`limits.floor_retained_changes`), far fewer than the test
//! makes, so the stalled client must fall behind the ring.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use floorwatch::proto::floor_service_client::FloorServiceClient;
use floorwatch::proto::floor_update::Update;
use floorwatch::proto::{IngestEvent, WatchFloorRequest};
use jiff::{SignedDuration, Timestamp};
use tonic::transport::Endpoint;

const AGENT_COUNT: usize = 200;
const EVENTS_PER_AGENT: usize = 100;

/// State codes the agents cycle through; the last event of every agent is
/// `FINAL_CODE`, which no earlier event uses.
const CODES: [&str; 4] = ["Beschikbaar", "Nawerk", "Pauze", "Overleg"];
const FINAL_CODE: &str = "Storing";

/// Most the daemon's RSS may reach, and grow by, over the run.
const RSS_LIMIT_KIB: u64 = 300 * 1024;
const RSS_GROWTH_LIMIT_KIB: u64 = 100 * 1024;

fn agent_id(index: usize) -> String {
    format!("s-{index:03}")
}

/// What the normal watcher has seen.
#[derive(Default)]
struct Seen {
    codes: HashMap<String, String>,
    messages: usize,
    last_seq: u64,
    error: Option<String>,
}

/// Returns the batch of round `round`: one event per agent.
fn batch(round: usize, time: Timestamp) -> Vec<IngestEvent> {
    (0..AGENT_COUNT)
        .map(|index| {
            let id = format!("ev-{round}-{index}");
            let agent = agent_id(index);
            let time = time + SignedDuration::from_micros(index as i64);
            match round {
                0 => event(&id, &agent, time, login()),
                r if r == EVENTS_PER_AGENT - 1 => event(&id, &agent, time, state(FINAL_CODE)),
                r => event(&id, &agent, time, state(CODES[(r + index) % CODES.len()])),
            }
        })
        .collect()
}

fn final_count(codes: &HashMap<String, String>) -> usize {
    codes.values().filter(|code| *code == FINAL_CODE).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_watcher_gets_coalesced_updates() {
    let site = Site::new(SiteConfig { extra_toml: "[limits]\nfloor_retained_changes = 1024\n".into(), ..SiteConfig::default() });
    let daemon = site.start();
    let mut roster = daemon.roster(Some(ADMIN.token)).await;
    let agents = (0..AGENT_COUNT).map(|i| agent(&agent_id(i), if i % 2 == 0 { "team-a" } else { "team-b" }, 20.0, &[])).collect();
    put_agents(&mut roster, agents).await;

    let endpoint = Endpoint::from_shared(format!("http://{}", daemon.grpc_addr))
        .expect("the address must form a URI")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535);
    let mut stalled_client = FloorServiceClient::with_interceptor(connect(endpoint).await, Bearer::new(Some(ADMIN.token)));
    let mut stalled = watch_floor(&mut stalled_client, WatchFloorRequest::default()).await.expect("WatchFloor must be allowed");

    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut normal_client = daemon.floor(Some(ADMIN.token)).await;
    let mut normal = watch_all(&mut normal_client).await;
    let first_seq = normal.snapshot().await.seq;
    let watcher = {
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                let message = normal.next_result(Duration::from_secs(60)).await;
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                match message {
                    Ok(Some(update)) => {
                        seen.messages += 1;
                        seen.last_seq = seen.last_seq.max(update.seq);
                        if let Some(Update::Agent(view)) = update.update {
                            seen.codes.insert(view.agent_id, view.state_code);
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        seen.error = Some(status.to_string());
                        return;
                    }
                }
            }
        })
    };

    let rss_before = daemon.rss_kib();
    let mut ingest_client = daemon.ingest(Some(INGEST.token)).await;
    let mut ingest = IngestSession::open(&mut ingest_client, "cti-bridge-1").await.expect("the ingest token may publish");
    let started = Instant::now();
    let mut slowest_ack = Duration::ZERO;
    let mut rss_peak = rss_before;
    for round in 0..EVENTS_PER_AGENT {
        let sent = Instant::now();
        let ack = ingest.publish(batch(round, Timestamp::now())).await;
        slowest_ack = slowest_ack.max(sent.elapsed());
        assert_eq!(ack.accepted as usize, AGENT_COUNT, "round {round}: {ack:?}");
        if round % 10 == 0 {
            rss_peak = rss_peak.max(daemon.rss_kib());
        }
    }
    let ingest_time = started.elapsed();
    let last_ack = Instant::now();

    let deadline = last_ack + STEP;
    loop {
        let (done, error) = {
            let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            (final_count(&seen.codes) == AGENT_COUNT, seen.error.clone())
        };
        assert!(error.is_none(), "the normal watcher failed: {error:?}");
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the normal watcher must see every agent's final state within {STEP:?} of the last ack");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let normal_latency = last_ack.elapsed();
    let rss_after = daemon.rss_kib();
    rss_peak = rss_peak.max(rss_after);
    let (changes, normal_messages) = {
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        (seen.last_seq.saturating_sub(first_seq), seen.messages)
    };
    watcher.abort();

    let mut stalled_codes: HashMap<String, String> = HashMap::new();
    let mut coalesced_markers = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while coalesced_markers == 0 || final_count(&stalled_codes) < AGENT_COUNT {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        match stalled.next(remaining).await.update {
            Some(Update::Coalesced(_)) => coalesced_markers += 1,
            Some(Update::Agent(view)) => {
                stalled_codes.insert(view.agent_id, view.state_code);
            }
            _ => {}
        }
    }

    eprintln!(
        "slow client: {} events in {ingest_time:?}, slowest ack {slowest_ack:?}, {changes} floor changes; \
         normal watcher {normal_messages} messages, final states {normal_latency:?} after the last ack; \
         stalled watcher {} messages, {coalesced_markers} coalesced markers; \
         RSS before {rss_before} KiB, peak {rss_peak} KiB, after {rss_after} KiB",
        AGENT_COUNT * EVENTS_PER_AGENT,
        stalled.received,
    );
    assert!(slowest_ack < Duration::from_secs(5), "acks must keep flowing: slowest {slowest_ack:?}");
    assert!(rss_peak < RSS_LIMIT_KIB, "RSS peaked at {rss_peak} KiB");
    assert!(rss_peak.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KIB, "RSS grew from {rss_before} to {rss_peak} KiB");
    assert!(changes as usize >= AGENT_COUNT * EVENTS_PER_AGENT / 2, "each round must change every agent: {changes} changes");
    assert!(stalled.received < changes as usize / 2, "the stalled watcher got {} messages for {changes} changes", stalled.received);
    assert_eq!(stalled_codes.len(), AGENT_COUNT, "the stalled watcher must end with every agent's final state");
}
