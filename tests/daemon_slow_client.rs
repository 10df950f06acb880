//! A floor client that stops reading must not slow ingest or other clients,
//! and must not grow the daemon's memory: it gets a `coalesced` marker and
//! the latest state per agent when it reads again.
//!
//! The stalled client has its own HTTP/2 connection with the smallest
//! windows (64 KiB), so what it leaves unread stops at the daemon rather
//! than in the client's receive buffers. The test makes about 20 000 floor
//! changes. With 1024 retained changes the stalled client falls behind the
//! daemon's change ring. With the default limits it must fall behind its
//! 256-message client buffer (`limits.floor_client_buffer`).

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

/// Messages read from the stalled stream before giving up on a
/// `coalesced` marker: a catch-up sends one view per agent, so a stream
/// that delivers this many without a marker is replaying every change.
const STALLED_READ_LIMIT: usize = 4000;

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

/// What one run measured.
#[derive(Debug)]
struct Run {
    ingest_time: Duration,
    slowest_ack: Duration,
    /// Floor changes made by the ingest, from the sequence numbers.
    changes: usize,
    normal_messages: usize,
    /// Time from the last ack until the normal watcher had every final state.
    normal_latency: Duration,
    rss_before: u64,
    rss_peak: u64,
    rss_after: u64,
    stalled_messages: usize,
    coalesced_markers: usize,
    /// Agents whose last view on the stalled stream has the final code.
    stalled_final: usize,
}

fn final_count(codes: &HashMap<String, String>) -> usize {
    codes.values().filter(|code| *code == FINAL_CODE).count()
}

/// Stores the agents, stalls one floor stream, ingests every round while a
/// second stream reads, then reads the stalled stream.
async fn stall_and_ingest(extra_toml: &str) -> Run {
    let site = Site::new(SiteConfig { extra_toml: extra_toml.to_string(), ..SiteConfig::default() });
    let daemon = site.start();
    let mut roster = daemon.roster(Some(ADMIN.token)).await;
    let agents = (0..AGENT_COUNT)
        .map(|i| agent(&agent_id(i), if i % 2 == 0 { "team-a" } else { "team-b" }, 20.0, &[]))
        .collect();
    put_agents(&mut roster, agents).await;

    let endpoint = Endpoint::from_shared(format!("http://{}", daemon.grpc_addr))
        .expect("the address must form a URI")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535);
    let mut stalled_client =
        FloorServiceClient::with_interceptor(connect(endpoint).await, Bearer::new(Some(ADMIN.token)));
    let mut stalled =
        watch_floor(&mut stalled_client, WatchFloorRequest::default()).await.expect("WatchFloor must be allowed");

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
    let mut ingest =
        IngestSession::open(&mut ingest_client, "cti-bridge-1").await.expect("the ingest token may publish");
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
        assert!(
            Instant::now() < deadline,
            "the normal watcher must see every agent's final state within {STEP:?} of the last ack"
        );
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
    while (coalesced_markers == 0 || final_count(&stalled_codes) < AGENT_COUNT) && stalled.received < STALLED_READ_LIMIT
    {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        match stalled.next(remaining).await.update {
            Some(Update::Coalesced(_)) => coalesced_markers += 1,
            Some(Update::Agent(view)) => {
                stalled_codes.insert(view.agent_id, view.state_code);
            }
            _ => {}
        }
    }

    let run = Run {
        ingest_time,
        slowest_ack,
        changes: changes as usize,
        normal_messages,
        normal_latency,
        rss_before,
        rss_peak,
        rss_after,
        stalled_messages: stalled.received,
        coalesced_markers,
        stalled_final: final_count(&stalled_codes),
    };
    eprintln!(
        "slow client, limits {extra_toml:?}: {} events in {:?}, slowest ack {:?}, {} floor changes; \
         normal watcher: {} messages, final states {:?} after the last ack; \
         stalled watcher: {} messages, {} coalesced markers, {} final states; \
         RSS before {} KiB, peak {} KiB, after {} KiB",
        AGENT_COUNT * EVENTS_PER_AGENT,
        run.ingest_time,
        run.slowest_ack,
        run.changes,
        run.normal_messages,
        run.normal_latency,
        run.stalled_messages,
        run.coalesced_markers,
        run.stalled_final,
        run.rss_before,
        run.rss_peak,
        run.rss_after,
    );
    run
}

/// Checks what a stalled client must never cause, whatever it reads later.
fn assert_ingest_unaffected(run: &Run) {
    assert!(run.slowest_ack < Duration::from_secs(5), "acks must keep flowing: slowest {:?}", run.slowest_ack);
    assert!(run.rss_peak < RSS_LIMIT_KIB, "RSS peaked at {} KiB", run.rss_peak);
    assert!(
        run.rss_peak.saturating_sub(run.rss_before) < RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {} to {} KiB",
        run.rss_before,
        run.rss_peak
    );
    assert!(
        run.changes >= AGENT_COUNT * EVENTS_PER_AGENT / 2,
        "each round must change every agent: {} changes",
        run.changes
    );
}

/// Checks that the stalled client got the latest state per agent instead
/// of every change.
fn assert_coalesced(run: &Run) {
    assert!(
        run.coalesced_markers > 0,
        "the stalled watcher got {} messages and no coalesced marker",
        run.stalled_messages
    );
    assert!(
        run.stalled_messages < run.changes / 2,
        "the stalled watcher got {} messages for {} changes",
        run.stalled_messages,
        run.changes
    );
    assert_eq!(run.stalled_final, AGENT_COUNT, "the stalled watcher must end with every agent's final state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_watcher_gets_coalesced_updates() {
    let run = stall_and_ingest("[limits]\nfloor_retained_changes = 1024\n").await;
    assert_ingest_unaffected(&run);
    assert_coalesced(&run);
}

// The hub's change ring has room for min(floor_retained_changes, 65536)
// changes. A stream task waits on its full client buffer instead of
// skipping ahead. So with the default limits a stalled client lags, and is
// coalesced, only after 65 536 changes, not after the 256 messages of
// floor_client_buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_watcher_coalesces_with_default_limits() {
    let run = stall_and_ingest("").await;
    assert_ingest_unaffected(&run);
    assert_coalesced(&run);
}
