//! floorwatch-load: the load generator behind BENCHMARKS.md.
//!
//! Subcommands:
//! - `ingest` creates agents with `PutAgents`, then publishes state changes
//!   over `IngestService.Publish` streams with several batches in flight and
//!   reports events per second and batch acknowledgement latency.
//! - `echo-server` serves `IngestService` with no journal and no engine: it
//!   acknowledges each request as soon as it is decoded. It is the baseline
//!   for what tonic and HTTP/2 alone cost on this machine.
//! - `echo` is the `ingest` client aimed at an `echo-server`.
//! - `propagation` opens many `WatchFloor` streams, ingests state changes at
//!   a fixed rate and measures the delay from send to receipt of the
//!   matching `AgentView` on every watcher.
//!
//! With `--server-pid`, each measurement also reads the server's CPU time
//! (utime + stime from /proc/PID/stat) before and after the timed phase, so
//! the result line carries server CPU microseconds per event or message.
//! Each run ends with one `result` line of `key=value` fields for scripts.
//!
//! It talks only to the address given and is meant for 127.0.0.1.

#[path = "shared/cpu.rs"]
mod cpu;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, Parser, Subcommand};
use futures::Stream;
use prost::Message as _;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

use floorwatch::proto::floor_service_client::FloorServiceClient;
use floorwatch::proto::floor_update::Update;
use floorwatch::proto::ingest_event::Kind;
use floorwatch::proto::ingest_service_client::IngestServiceClient;
use floorwatch::proto::ingest_service_server::{IngestService, IngestServiceServer};
use floorwatch::proto::roster_service_client::RosterServiceClient;
use floorwatch::proto::{self, IngestEvent, PublishAck, PublishRequest};

/// State codes the load cycles through. All three are in the built-in
/// state code table and in config/floorwatch.toml.
const STATE_CODES: [&str; 3] = ["Beschikbaar", "Nawerk", "Pauze"];

/// Agents per `PutAgents` request, below the server's maximum of 10 000.
const PUT_AGENTS_CHUNK: usize = 5_000;

/// Source name on every published batch.
const SOURCE: &str = "floorwatch-load";

/// Largest message either side encodes or decodes, as the daemon allows.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Width of one bucket of the propagation histogram, in microseconds.
const HISTOGRAM_BUCKET_US: u64 = 10;

/// Number of buckets. Delays past the last bucket are counted in it.
const HISTOGRAM_BUCKETS: usize = 200_000;

#[derive(Parser)]
#[command(name = "floorwatch-load", about = "Load generator and gRPC echo baseline for floorwatch benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish events to floorwatch and report throughput and ack latency.
    Ingest(IngestArgs),
    /// Serve IngestService with immediate acks and no journal (baseline).
    EchoServer {
        /// Address to bind. Port 0 picks a free port, which is printed on stdout.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: String,
    },
    /// Publish events to an echo-server with the same client as `ingest`.
    Echo(IngestArgs),
    /// Measure the delay from ingest to delivery on many WatchFloor streams.
    Propagation(PropagationArgs),
}

#[derive(Args, Clone)]
struct Common {
    /// gRPC address of the server, for example http://127.0.0.1:50051.
    #[arg(long)]
    addr: String,
    /// Bearer token with the admin role (not used by `echo`).
    #[arg(long, env = "FLOORWATCH_TOKEN", default_value = "", hide_env_values = true)]
    token: String,
    /// Process id of the server, to read its CPU time from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Clock ticks per second of /proc/PID/stat times (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clock_ticks: u64,
}

#[derive(Args, Clone)]
struct IngestArgs {
    #[command(flatten)]
    common: Common,
    /// Agents to create (ids load-00001, load-00002, ...) and publish for.
    #[arg(long, default_value_t = 1_000)]
    agents: usize,
    /// Events to publish in the timed phase.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Events per PublishRequest.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Batches sent and not yet acknowledged, per stream.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Publish streams per connection. Each stream owns a disjoint set of
    /// agents, so no agent gets events out of time order.
    #[arg(long, default_value_t = 1)]
    streams_per_connection: usize,
}

#[derive(Args, Clone)]
struct PropagationArgs {
    #[command(flatten)]
    common: Common,
    /// Agents to create.
    #[arg(long, default_value_t = 20_000)]
    agents: usize,
    /// Teams the agents are spread over.
    #[arg(long, default_value_t = 20)]
    teams: usize,
    /// WatchFloor streams, each over all agents.
    #[arg(long, default_value_t = 1_000)]
    watchers: usize,
    /// HTTP/2 connections the watchers share.
    #[arg(long, default_value_t = 10)]
    connections: usize,
    /// Watchers that may be receiving their snapshot at the same time,
    /// because the server builds a whole snapshot in memory per stream.
    #[arg(long, default_value_t = 25)]
    open_concurrency: usize,
    /// Events per second in the timed phase.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Length of the timed phase in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Milliseconds between sends. Each send carries rate × tick events.
    #[arg(long, default_value_t = 5)]
    tick_ms: u64,
    /// Seconds to keep watching after the last send.
    #[arg(long, default_value_t = 2)]
    settle_seconds: u64,
    /// Seconds all watchers may take to receive their snapshots.
    #[arg(long, default_value_t = 600)]
    snapshot_timeout_seconds: u64,
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("floorwatch-load: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Ingest(args) => run_ingest(args, true).await,
            Command::Echo(args) => run_ingest(args, false).await,
            Command::EchoServer { addr } => run_echo_server(&addr).await,
            Command::Propagation(args) => run_propagation(args).await,
        }
    });
    // Watcher tasks may still hold streams, which the runtime shutdown drops.
    runtime.shutdown_timeout(Duration::from_secs(2));
    if let Err(message) = outcome {
        eprintln!("floorwatch-load: {message}");
        std::process::exit(1);
    }
}

// === CPU time ===

/// CPU used by the server and by this process over a timed phase.
struct CpuWindow {
    server_pid: Option<u32>,
    clock_ticks: u64,
    server_start: Option<u64>,
    client_start: Option<u64>,
}

impl CpuWindow {
    fn start(common: &Common) -> CpuWindow {
        CpuWindow {
            server_pid: common.server_pid,
            clock_ticks: common.clock_ticks,
            server_start: common.server_pid.and_then(|pid| cpu::cpu_micros(Some(pid), common.clock_ticks)),
            client_start: cpu::cpu_micros(None, common.clock_ticks),
        }
    }

    /// Returns (server, client) CPU microseconds since `start`. The server
    /// part is None without a readable --server-pid.
    fn finish(&self) -> (Option<u64>, Option<u64>) {
        let server =
            match (self.server_start, self.server_pid.and_then(|pid| cpu::cpu_micros(Some(pid), self.clock_ticks))) {
                (Some(start), Some(end)) => Some(end.saturating_sub(start)),
                _ => None,
            };
        let client = match (self.client_start, cpu::cpu_micros(None, self.clock_ticks)) {
            (Some(start), Some(end)) => Some(end.saturating_sub(start)),
            _ => None,
        };
        (server, client)
    }
}

fn per_unit(micros: Option<u64>, units: u64) -> String {
    match micros {
        Some(micros) if units > 0 => format!("{:.2}", micros as f64 / units as f64),
        _ => "na".to_string(),
    }
}

// === Connections and requests ===

async fn connect(addr: &str) -> Result<Channel, String> {
    Channel::from_shared(addr.to_string())
        .map_err(|e| format!("--addr {addr:?} is not a valid URI: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))
}

fn authorized<T>(message: T, token: &str) -> Result<Request<T>, String> {
    let mut request = Request::new(message);
    if !token.is_empty() {
        let value: MetadataValue<_> = format!("Bearer {token}")
            .parse()
            .map_err(|_| "the token contains characters not allowed in a header".to_string())?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

fn agent_id(index: usize) -> String {
    format!("load-{:05}", index + 1)
}

/// Returns the index behind an id made by [`agent_id`].
fn agent_index(id: &str) -> Option<usize> {
    id.strip_prefix("load-")?.parse::<usize>().ok()?.checked_sub(1)
}

fn code_index(code: &str) -> Option<u8> {
    STATE_CODES.iter().position(|c| *c == code).map(|i| i as u8)
}

fn now_proto() -> prost_types::Timestamp {
    prost_types::Timestamp::from(SystemTime::now())
}

/// Creates `count` agents spread over `teams` teams.
async fn put_agents(channel: Channel, token: &str, count: usize, teams: usize) -> Result<(), String> {
    let mut client = RosterServiceClient::new(channel).max_encoding_message_size(MAX_MESSAGE_BYTES);
    let ids: Vec<usize> = (0..count).collect();
    for chunk in ids.chunks(PUT_AGENTS_CHUNK) {
        let agents = chunk
            .iter()
            .map(|&i| proto::Agent {
                id: agent_id(i),
                display_name: format!("Load Agent {}", i + 1),
                team: format!("load-team-{:02}", i % teams.max(1)),
                contract_hours: 24.0,
                platform_ids: Vec::new(),
            })
            .collect();
        client
            .put_agents(authorized(proto::PutAgentsRequest { agents }, token)?)
            .await
            .map_err(|s| format!("PutAgents failed: {:?}: {}", s.code(), s.message()))?;
    }
    Ok(())
}

fn state_event(event_id: String, agent: usize, code: u8) -> IngestEvent {
    IngestEvent {
        event_id,
        agent: agent_id(agent),
        time: None,
        kind: Some(Kind::StateCode(STATE_CODES[code as usize].to_string())),
    }
}

/// Returns a tag that keeps event ids of separate runs against one journal apart.
fn run_tag() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

// === ingest and echo ===

/// Counts of one publish stream.
#[derive(Default)]
struct StreamTally {
    events: u64,
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    ack_latencies: Vec<Duration>,
    first_rejection: Option<String>,
}

async fn run_ingest(args: IngestArgs, floorwatch: bool) -> Result<(), String> {
    let streams = args.connections.max(1) * args.streams_per_connection.max(1);
    let batch = args.batch.max(1);
    let agents = args.agents.max(streams);
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(connect(&args.common.addr).await?);
    }
    if floorwatch {
        put_agents(channels[0].clone(), &args.common.token, agents, 20).await?;
    }

    // Stream s publishes for agents s, s + streams, s + 2 × streams, …
    let tag = run_tag();
    let per_stream = args.events / streams;
    let mut plans = Vec::with_capacity(streams);
    for s in 0..streams {
        let own_agents: Vec<usize> = (s..agents).step_by(streams).collect();
        let mut batches = Vec::with_capacity(per_stream.div_ceil(batch));
        let mut events = Vec::with_capacity(batch);
        for j in 0..per_stream {
            let agent = own_agents[j % own_agents.len()];
            let round = j / own_agents.len();
            events.push(state_event(format!("e{tag}-{s}-{j}"), agent, (round % STATE_CODES.len()) as u8));
            if events.len() == batch || j + 1 == per_stream {
                let batch_id = batches.len() as u64;
                batches.push(PublishRequest {
                    batch_id,
                    source: SOURCE.to_string(),
                    events: std::mem::take(&mut events),
                    source_healthy: None,
                });
            }
        }
        plans.push(batches);
    }
    let sample = PublishRequest {
        batch_id: 1,
        source: SOURCE.to_string(),
        events: vec![IngestEvent { time: Some(now_proto()), ..state_event(format!("e{tag}-0-0"), 0, 0) }],
        source_healthy: None,
    };

    let cpu = CpuWindow::start(&args.common);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (s, batches) in plans.into_iter().enumerate() {
        let channel = channels[s % channels.len()].clone();
        let token = args.common.token.clone();
        let in_flight = args.in_flight.max(1);
        tasks.push(tokio::spawn(async move { publish_stream(channel, token, batches, in_flight).await }));
    }
    let mut total = StreamTally::default();
    for task in tasks {
        let tally = task.await.map_err(|e| format!("a publish task failed: {e}"))??;
        total.events += tally.events;
        total.accepted += tally.accepted;
        total.duplicates += tally.duplicates;
        total.rejected += tally.rejected;
        total.ack_latencies.extend(tally.ack_latencies);
        total.first_rejection = total.first_rejection.or(tally.first_rejection);
    }
    let elapsed = started.elapsed();
    let (server_cpu, client_cpu) = cpu.finish();

    if let Some(rejection) = &total.first_rejection {
        eprintln!("floorwatch-load: first rejected event: {rejection}");
    }
    total.ack_latencies.sort();
    let rate = total.events as f64 / elapsed.as_secs_f64();
    println!(
        "result mode={} events={} batch={} streams={} in_flight={} request_bytes_1_event={} elapsed_s={:.3} events_per_s={:.0} \
         server_cpu_us_per_event={} client_cpu_us_per_event={} accepted={} duplicates={} rejected={} ack_p50_ms={:.3} ack_p99_ms={:.3}",
        if floorwatch { "ingest" } else { "echo" },
        total.events,
        batch,
        streams,
        args.in_flight,
        sample.encoded_len(),
        elapsed.as_secs_f64(),
        rate,
        per_unit(server_cpu, total.events),
        per_unit(client_cpu, total.events),
        total.accepted,
        total.duplicates,
        total.rejected,
        millis(percentile(&total.ack_latencies, 0.50)),
        millis(percentile(&total.ack_latencies, 0.99)),
    );
    Ok(())
}

/// Publishes `batches` on one stream with up to `in_flight` unacknowledged.
/// Each event's time is set when its batch is sent.
async fn publish_stream(
    channel: Channel,
    token: String,
    batches: Vec<PublishRequest>,
    in_flight: usize,
) -> Result<StreamTally, String> {
    let mut client = IngestServiceClient::new(channel)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let (tx, rx) = mpsc::channel::<PublishRequest>(in_flight);
    let mut tx = Some(tx);
    let mut pending = batches.into_iter();
    let mut sent_at: VecDeque<Instant> = VecDeque::with_capacity(in_flight);
    let mut tally = StreamTally::default();

    // The first batches go into the channel before the call, so the request
    // body has data as soon as the stream opens.
    fill(&mut tx, &mut pending, &mut sent_at, &mut tally, in_flight).await;
    let mut acks = client
        .publish(authorized(ReceiverStream::new(rx), &token)?)
        .await
        .map_err(|s| format!("Publish failed: {:?}: {}", s.code(), s.message()))?
        .into_inner();

    while !sent_at.is_empty() {
        let ack = acks
            .message()
            .await
            .map_err(|s| format!("Publish stream failed: {:?}: {}", s.code(), s.message()))?
            .ok_or("the server closed the Publish stream before acknowledging every batch")?;
        if let Some(at) = sent_at.pop_front() {
            tally.ack_latencies.push(at.elapsed());
        }
        tally.accepted += u64::from(ack.accepted);
        tally.duplicates += u64::from(ack.duplicates);
        tally.rejected += ack.rejected.len() as u64;
        if tally.first_rejection.is_none() {
            tally.first_rejection = ack.rejected.first().map(|r| format!("{} {}: {}", r.event_id, r.field, r.message));
        }
        fill(&mut tx, &mut pending, &mut sent_at, &mut tally, in_flight).await;
    }
    Ok(tally)
}

/// Sends batches until `in_flight` are unacknowledged, and closes the request
/// stream once every batch is sent.
async fn fill(
    tx: &mut Option<mpsc::Sender<PublishRequest>>,
    pending: &mut impl Iterator<Item = PublishRequest>,
    sent_at: &mut VecDeque<Instant>,
    tally: &mut StreamTally,
    in_flight: usize,
) {
    while sent_at.len() < in_flight {
        let Some(sender) = tx.as_ref() else { return };
        let Some(mut batch) = pending.next() else {
            *tx = None;
            return;
        };
        let time = now_proto();
        for event in &mut batch.events {
            event.time = Some(time);
        }
        tally.events += batch.events.len() as u64;
        sent_at.push_back(Instant::now());
        if sender.send(batch).await.is_err() {
            *tx = None;
            return;
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// === echo-server ===

/// `IngestService` that acknowledges each request on receipt.
struct EchoIngest;

type AckStream = Pin<Box<dyn Stream<Item = Result<PublishAck, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl IngestService for EchoIngest {
    type PublishStream = AckStream;

    async fn publish(&self, request: Request<Streaming<PublishRequest>>) -> Result<Response<AckStream>, Status> {
        let acks = request.into_inner().map(|request| {
            request.map(|request| PublishAck {
                batch_id: request.batch_id,
                accepted: request.events.len() as u32,
                duplicates: 0,
                rejected: Vec::new(),
            })
        });
        Ok(Response::new(Box::pin(acks)))
    }
}

async fn run_echo_server(addr: &str) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot bind {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
    println!("echo-server listening on {bound}");
    // The script reads the address from a pipe, so flush now.
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    // Same transport settings as the daemon's gRPC server.
    let service = IngestServiceServer::new(EchoIngest).max_decoding_message_size(MAX_MESSAGE_BYTES);
    Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(service)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("echo server failed: {e}"))
}

// === propagation ===

/// Delays from send to receipt, in buckets of [`HISTOGRAM_BUCKET_US`].
struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram { buckets: (0..HISTOGRAM_BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }

    fn record(&self, micros: u64) {
        let bucket = ((micros / HISTOGRAM_BUCKET_US) as usize).min(HISTOGRAM_BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Returns the upper edge, in milliseconds, of the bucket holding the
    /// q-quantile.
    fn quantile_ms(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return ((i as u64 + 1) * HISTOGRAM_BUCKET_US) as f64 / 1000.0;
            }
        }
        (HISTOGRAM_BUCKETS as u64 * HISTOGRAM_BUCKET_US) as f64 / 1000.0
    }
}

/// State shared by the paced sender and the watchers.
struct Probe {
    base: Instant,
    /// Per agent: the state code index of its latest sent change in the top
    /// byte, the send instant in microseconds after `base` below it.
    sent: Vec<AtomicU64>,
    delays: Histogram,
    /// Agent views whose state code is not the latest sent one (a view
    /// republished for another reason, or one overtaken by a newer send).
    unmatched: AtomicU64,
    coalesced: AtomicU64,
    agent_views: AtomicU64,
    snapshots_done: AtomicUsize,
    snapshot_agents_min: AtomicUsize,
}

const SENT_TIME_MASK: u64 = (1 << 56) - 1;

impl Probe {
    fn micros_since_base(&self) -> u64 {
        self.base.elapsed().as_micros() as u64 & SENT_TIME_MASK
    }

    fn mark_sent(&self, agent: usize, code: u8, at_micros: u64) {
        self.sent[agent].store((u64::from(code) << 56) | at_micros, Ordering::Release);
    }

    /// Records the receipt of `code` for `agent` at `now_micros`.
    fn record_receipt(&self, agent: usize, code: u8, now_micros: u64) {
        let Some(sent) = self.sent.get(agent).map(|s| s.load(Ordering::Acquire)) else {
            return;
        };
        if sent == 0 || (sent >> 56) as u8 != code {
            self.unmatched.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.delays.record(now_micros.saturating_sub(sent & SENT_TIME_MASK));
    }
}

async fn run_propagation(args: PropagationArgs) -> Result<(), String> {
    let common = &args.common;
    let setup_channel = connect(&common.addr).await?;
    put_agents(setup_channel.clone(), &common.token, args.agents, args.teams).await?;
    wait_for_floor(setup_channel.clone(), &common.token, args.agents).await?;

    let probe = Arc::new(Probe {
        base: Instant::now(),
        sent: (0..args.agents).map(|_| AtomicU64::new(0)).collect(),
        delays: Histogram::new(),
        unmatched: AtomicU64::new(0),
        coalesced: AtomicU64::new(0),
        agent_views: AtomicU64::new(0),
        snapshots_done: AtomicUsize::new(0),
        snapshot_agents_min: AtomicUsize::new(usize::MAX),
    });

    // Watchers: spread over the connections, at most open_concurrency of
    // them receiving a snapshot at once.
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(connect(&common.addr).await?);
    }
    let opening = Arc::new(Semaphore::new(args.open_concurrency.max(1)));
    let snapshot_started = Instant::now();
    let snapshot_cpu = CpuWindow::start(common);
    let mut watchers = Vec::new();
    for w in 0..args.watchers {
        let channel = channels[w % channels.len()].clone();
        let token = common.token.clone();
        let probe = probe.clone();
        let opening = opening.clone();
        let agents = args.agents;
        watchers.push(tokio::spawn(async move {
            if let Err(message) = watch(channel, token, probe.clone(), opening, agents).await {
                eprintln!("floorwatch-load: watcher {w}: {message}");
            }
        }));
    }
    let all_open = async {
        while probe.snapshots_done.load(Ordering::Acquire) < args.watchers {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(args.snapshot_timeout_seconds), all_open).await.map_err(|_| {
        format!(
            "only {} of {} watchers received their snapshot within {} s",
            probe.snapshots_done.load(Ordering::Acquire),
            args.watchers,
            args.snapshot_timeout_seconds
        )
    })?;
    let snapshot_elapsed = snapshot_started.elapsed();
    let (snapshot_server_cpu, _) = snapshot_cpu.finish();
    let snapshot_agents = probe.snapshot_agents_min.load(Ordering::Acquire);
    eprintln!(
        "floorwatch-load: {} watchers received snapshots of at least {} agents in {:.1} s",
        args.watchers,
        snapshot_agents,
        snapshot_elapsed.as_secs_f64()
    );

    // Timed phase: a paced publish stream on its own connection.
    let views_before = probe.agent_views.load(Ordering::Relaxed);
    let cpu = CpuWindow::start(common);
    let sent = publish_paced(setup_channel, &common.token, probe.clone(), &args).await?;
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let (server_cpu, client_cpu) = cpu.finish();
    let views = probe.agent_views.load(Ordering::Relaxed) - views_before;

    for watcher in &watchers {
        watcher.abort();
    }
    let delivered = probe.delays.count();
    let expected = sent.events * args.watchers as u64;
    println!(
        "result mode=propagation agents={} watchers={} connections={} rate={} seconds={} events={} \
         deliveries={} expected={} unmatched={} coalesced={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} \
         ingest_ack_p50_ms={:.3} ingest_ack_p99_ms={:.3} agent_views={} server_cpu_us_per_view={} client_cpu_us_per_view={} \
         snapshot_s={:.1} snapshot_server_cpu_us_per_view={}",
        args.agents,
        args.watchers,
        args.connections,
        args.rate,
        args.seconds,
        sent.events,
        delivered,
        expected,
        probe.unmatched.load(Ordering::Relaxed),
        probe.coalesced.load(Ordering::Relaxed),
        probe.delays.quantile_ms(0.50),
        probe.delays.quantile_ms(0.99),
        probe.delays.quantile_ms(1.0),
        millis(percentile(&sent.ack_latencies, 0.50)),
        millis(percentile(&sent.ack_latencies, 0.99)),
        views,
        per_unit(server_cpu, views),
        per_unit(client_cpu, views),
        snapshot_elapsed.as_secs_f64(),
        per_unit(snapshot_server_cpu, (args.watchers * snapshot_agents.min(args.agents)) as u64),
    );
    Ok(())
}

/// Waits until a floor snapshot contains `agents` agents, because
/// `PutAgents` returns before the engine has published the new agents.
async fn wait_for_floor(channel: Channel, token: &str, agents: usize) -> Result<(), String> {
    let mut client = FloorServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let request = proto::WatchFloorRequest { teams: Vec::new(), resume_after_seq: 0, lang: "en".into() };
        let mut stream = client
            .watch_floor(authorized(request, token)?)
            .await
            .map_err(|s| format!("WatchFloor failed: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        let first =
            stream.message().await.map_err(|s| format!("WatchFloor stream failed: {:?}: {}", s.code(), s.message()))?;
        let count = match first.and_then(|u| u.update) {
            Some(Update::SnapshotBegin(begin)) => begin.agent_count as usize,
            _ => 0,
        };
        if count >= agents {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the floor shows {count} of {agents} agents 60 s after PutAgents"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opens one WatchFloor stream once a permit is free, reads the snapshot,
/// then records every agent view whose state code changed.
async fn watch(
    channel: Channel,
    token: String,
    probe: Arc<Probe>,
    opening: Arc<Semaphore>,
    agents: usize,
) -> Result<(), String> {
    let permit = opening.acquire_owned().await.map_err(|_| "the open semaphore closed".to_string())?;
    let mut client = FloorServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let request = proto::WatchFloorRequest { teams: Vec::new(), resume_after_seq: 0, lang: "en".into() };
    let mut stream = client
        .watch_floor(authorized(request, &token)?)
        .await
        .map_err(|s| format!("WatchFloor failed: {:?}: {}", s.code(), s.message()))?
        .into_inner();

    // Last state code index seen per agent, or u8::MAX before the first.
    let mut seen = vec![u8::MAX; agents];
    let mut permit = Some(permit);
    let mut snapshot_agents = 0usize;
    loop {
        let update = stream
            .message()
            .await
            .map_err(|s| format!("WatchFloor stream failed: {:?}: {}", s.code(), s.message()))?
            .ok_or("the server closed the WatchFloor stream")?;
        match update.update {
            Some(Update::Agent(view)) => {
                let now = probe.micros_since_base();
                let Some(index) = agent_index(&view.agent_id).filter(|&i| i < agents) else {
                    continue;
                };
                let Some(code) = code_index(&view.state_code) else {
                    continue;
                };
                if permit.is_some() {
                    seen[index] = code;
                    continue;
                }
                probe.agent_views.fetch_add(1, Ordering::Relaxed);
                if seen[index] != code {
                    seen[index] = code;
                    probe.record_receipt(index, code, now);
                }
            }
            Some(Update::SnapshotBegin(begin)) if permit.is_some() => snapshot_agents = begin.agent_count as usize,
            Some(Update::SnapshotEnd(_)) if permit.is_some() => {
                drop(permit.take());
                probe.snapshot_agents_min.fetch_min(snapshot_agents, Ordering::AcqRel);
                probe.snapshots_done.fetch_add(1, Ordering::AcqRel);
            }
            Some(Update::Coalesced(_)) => {
                probe.coalesced.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Counts of the paced sender.
struct PacedTally {
    events: u64,
    ack_latencies: Vec<Duration>,
}

/// Publishes state changes at `args.rate` for `args.seconds`, one batch per
/// tick. Agents are taken round robin and each change moves the agent to
/// the next state code, so every change is visible in the agent view.
async fn publish_paced(
    channel: Channel,
    token: &str,
    probe: Arc<Probe>,
    args: &PropagationArgs,
) -> Result<PacedTally, String> {
    let mut client = IngestServiceClient::new(channel);
    let (tx, rx) = mpsc::channel::<PublishRequest>(1024);
    let mut acks = client
        .publish(authorized(ReceiverStream::new(rx), token)?)
        .await
        .map_err(|s| format!("Publish failed: {:?}: {}", s.code(), s.message()))?
        .into_inner();

    let sent_at: Arc<Mutex<VecDeque<Instant>>> = Arc::new(Mutex::new(VecDeque::new()));
    let ack_reader = {
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut rejected = 0u64;
            while let Ok(Some(ack)) = acks.message().await {
                rejected += ack.rejected.len() as u64;
                let at = sent_at.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                if let Some(at) = at {
                    latencies.push(at.elapsed());
                }
            }
            (latencies, rejected)
        })
    };

    let tag = run_tag();
    let tick = Duration::from_millis(args.tick_ms.max(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let mut n: u64 = 0;
    let mut batch_id = 0u64;
    while Instant::now() < end {
        ticker.tick().await;
        // Events due by now at the configured rate, so pacing does not drift.
        let due = (started.elapsed().as_secs_f64() * args.rate as f64) as u64;
        if due <= n {
            continue;
        }
        let time = now_proto();
        let at = probe.micros_since_base();
        let mut events = Vec::with_capacity((due - n) as usize);
        while n < due {
            let agent = (n % args.agents as u64) as usize;
            // Start at code 1: the snapshot shows no code for a new agent.
            let code = (((n / args.agents as u64) + 1) % STATE_CODES.len() as u64) as u8;
            probe.mark_sent(agent, code, at);
            events.push(IngestEvent { time: Some(time), ..state_event(format!("p{tag}-{n}"), agent, code) });
            n += 1;
        }
        sent_at.lock().unwrap_or_else(|p| p.into_inner()).push_back(Instant::now());
        batch_id += 1;
        let request = PublishRequest { batch_id, source: SOURCE.to_string(), events, source_healthy: None };
        if tx.send(request).await.is_err() {
            return Err("the Publish stream closed during the timed phase".into());
        }
    }
    drop(tx);
    let (mut ack_latencies, rejected) = tokio::time::timeout(Duration::from_secs(30), ack_reader)
        .await
        .map_err(|_| "acknowledgements did not arrive within 30 s after the last send".to_string())?
        .map_err(|e| format!("the ack reader failed: {e}"))?;
    if rejected > 0 {
        eprintln!("floorwatch-load: {rejected} events were rejected during the propagation run");
    }
    ack_latencies.sort();
    Ok(PacedTally { events: n, ack_latencies })
}
