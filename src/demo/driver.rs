//! `floorwatch demo`: the real daemon on an embedded configuration, with a
//! simulated platform that pushes a generated site's day through the
//! WebSocket ingest path over a real socket.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jiff::Timestamp;
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use rand::RngCore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Simulator, generate_site, sim_event_to_json_v1, site_agents_csv, site_roster_csv};
use crate::api::auth::{Principal, Role, TokenEntry, hash_token};
use crate::config::{Config, Env};
use crate::daemon::clock::Clock;
use crate::daemon::{self, StartOptions};
use crate::i18n::Locale;
use crate::roster::LabourRules;

/// Site time zone of the demo.
const DEMO_TIME_ZONE: &str = "Europe/Amsterdam";

/// Maximum of sent events kept for resending until acknowledged. Older ones
/// are dropped with a warning, so a daemon that stops acknowledging cannot
/// grow the simulator's memory.
const MAX_UNACKED: usize = 100_000;

/// Local time the simulated platform starts at, before the site opens.
const SIMULATION_START: Time = Time::constant(7, 0, 0, 0);

/// Maximum of events in one WebSocket batch frame: about 200 bytes each keeps a
/// frame well below the default 64 KiB message limit.
const FRAME_BATCH: usize = 200;

/// Source name the simulated platform uses.
const DEMO_SOURCE: &str = "demo-platform";

/// Options of `floorwatch demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub agents: usize,
    pub speed: f64,
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
    pub start: String,
    pub seed: u64,
    pub lang: String,
}

/// Runs the demo until SIGINT or SIGTERM; returns the exit code.
pub fn run_demo(options: DemoOptions) -> i32 {
    if !(options.speed > 0.0 && options.speed <= 3600.0) {
        eprintln!("floorwatch: --speed {} is out of range; use a value above 0 and at most 3600", options.speed);
        return crate::cli::EXIT_CONFIG;
    }
    if options.agents == 0 || options.agents > 5000 {
        eprintln!("floorwatch: --agents {} is out of range; use 1 to 5000", options.agents);
        return crate::cli::EXIT_CONFIG;
    }
    let Ok(start_time) = options.start.parse::<Time>() else {
        eprintln!("floorwatch: --start {:?} is not a time of day; use HH:MM, e.g. 09:50", options.start);
        return crate::cli::EXIT_CONFIG;
    };
    let Some(locale) = Locale::parse(&options.lang) else {
        eprintln!("floorwatch: --lang {:?} is not supported; use nl or en", options.lang);
        return crate::cli::EXIT_CONFIG;
    };
    // The demo's stdout is the user interface; the log shows only warnings
    // unless RUST_LOG sets more (for example RUST_LOG=floorwatch=info).
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string());
    if let Err(e) = crate::telemetry::init_tracing(crate::telemetry::LogFormat::Text, &filter) {
        eprintln!("floorwatch: {e}");
        return 1;
    }
    let runtime = match crate::commands::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("floorwatch: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(demo(options, start_time, locale)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("floorwatch: {e:#}");
            1
        }
    }
}

async fn demo(options: DemoOptions, start_time: Time, locale: Locale) -> anyhow::Result<()> {
    let tz = TimeZone::get(DEMO_TIME_ZONE)?;
    let mut day = tz.to_datetime(Timestamp::now()).date();
    // The simulated site is closed on Sundays; show the Friday before.
    if day.weekday() == Weekday::Sunday {
        day = day.checked_sub(jiff::Span::new().days(2))?;
    }
    let monday = day.checked_sub(jiff::Span::new().days(i64::from(day.weekday().to_monday_zero_offset())))?;
    let origin = day.to_datetime(start_time).to_zoned_datetime(tz.clone())?.timestamp();

    let site = generate_site(options.seed, options.agents, monday, &tz, &LabourRules::default());
    let state_dir = std::env::temp_dir().join(format!("floorwatch-demo-{}", std::process::id()));
    std::fs::create_dir_all(&state_dir)?;
    let agents_file = state_dir.join("agents.csv");
    let roster_file = state_dir.join("roster.csv");
    std::fs::write(&agents_file, site_agents_csv(&site))?;
    std::fs::write(&roster_file, site_roster_csv(&site, &tz))?;

    let env = Env::empty()
        .with("FLOORWATCH_LISTEN_GRPC", &options.grpc.to_string())
        .with("FLOORWATCH_LISTEN_ADMIN", &options.admin.to_string())
        .with("FLOORWATCH_LISTEN_WEBSOCKET", "127.0.0.1:0")
        .with("FLOORWATCH_STORAGE_STATE_DIR", &state_dir.display().to_string())
        .with("FLOORWATCH_ROSTER_AGENTS_FILE", &agents_file.display().to_string())
        .with("FLOORWATCH_ROSTER_ROSTER_FILE", &roster_file.display().to_string())
        .with("FLOORWATCH_SITE_TIME_ZONE", DEMO_TIME_ZONE)
        .with("FLOORWATCH_SITE_LOCALE", locale.as_str())
        // The morning before the start time is replayed at start-up with its
        // original event times, which lie hours before the receive time.
        .with("FLOORWATCH_ENGINE_MAX_CLOCK_SKEW_SECONDS", "86400");
    let config =
        Config::embedded_default_with(&env).map_err(|errors| anyhow::anyhow!("embedded configuration: {errors}"))?;

    let admin_token = random_token();
    let ingest_token = random_token();
    let extra_tokens = vec![
        token_entry(&admin_token, "demo-admin", Role::Admin),
        token_entry(&ingest_token, "demo-platform", Role::Ingest),
    ];
    let clock = Clock::scaled(origin, options.speed);
    let options_for_start = StartOptions { clock: clock.clone(), extra_tokens, notify_systemd: false };
    let running = match daemon::start(config, options_for_start).await {
        Ok(running) => running,
        Err(e) => {
            // Nothing is left running; a failed start leaves no files behind.
            let _ = std::fs::remove_dir_all(&state_dir);
            return Err(
                e.context("the demo could not start (for a port in use, pass --grpc or --admin with another address)")
            );
        }
    };

    let websocket_addr =
        running.websocket_addr.ok_or_else(|| anyhow::anyhow!("the demo needs the WebSocket listener"))?;
    println!(
        "floorwatch demo: {} agents, simulated day {day} from {start_time} at {}x speed",
        options.agents, options.speed
    );
    println!("gRPC API:        http://{}", running.grpc_addr);
    println!("admin/metrics:   http://{}/metrics", running.admin_addr);
    println!("state directory: {}", state_dir.display());
    println!("export FLOORWATCH_TOKEN={admin_token}");
    println!("watch the floor: floorwatch watch --addr http://{}", running.grpc_addr);
    println!(
        "or with grpcurl: grpcurl -plaintext -H \"authorization: Bearer $FLOORWATCH_TOKEN\" {} floorwatch.v1.FloorService/WatchFloor",
        running.grpc_addr
    );
    println!("stop with Ctrl-C");

    let shutdown = running.shutdown.clone();
    crate::commands::spawn_signal_handler(shutdown.clone());
    // The simulation starts before opening; the first advance replays the
    // morning up to the start time in one burst, so the day's figures are
    // complete from the first second.
    let morning = day.to_datetime(SIMULATION_START).to_zoned_datetime(tz.clone())?.timestamp().min(origin);
    let simulator = Simulator::new(&site, options.seed, morning);
    let feed = tokio::spawn(feed_platform(websocket_addr, ingest_token, simulator, clock, shutdown));

    running.wait().await;
    feed.abort();
    if let Err(e) = std::fs::remove_dir_all(&state_dir) {
        warn!(path = %state_dir.display(), error = %e, "could not remove the demo state directory");
    }
    Ok(())
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn token_entry(token: &str, name: &str, role: Role) -> TokenEntry {
    TokenEntry {
        sha256_hex: hash_token(token),
        principal: Principal { name: name.to_string(), role, teams: Default::default(), agent_id: None },
    }
}

/// Pushes the simulator's events to the daemon as a platform would,
/// reconnecting when the connection drops. Events not yet acknowledged are
/// sent again after a reconnect; the daemon drops the duplicates.
async fn feed_platform(
    addr: SocketAddr,
    token: String,
    mut simulator: Simulator,
    clock: Clock,
    shutdown: CancellationToken,
) {
    let url = format!("ws://{addr}/v1/events?source={DEMO_SOURCE}");
    let mut seq = 0u64;
    let mut unacked: std::collections::VecDeque<(String, String)> = Default::default();

    while !shutdown.is_cancelled() {
        let mut request = match url.as_str().into_client_request() {
            Ok(request) => request,
            Err(e) => {
                warn!(error = %e, "demo feed URL is invalid");
                return;
            }
        };
        if let Ok(value) = format!("Bearer {token}").parse() {
            request.headers_mut().insert("authorization", value);
        }
        let (socket, _) = match tokio_tungstenite::connect_async(request).await {
            Ok(connected) => connected,
            Err(e) => {
                warn!(error = %e, "demo platform cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        info!(%addr, "demo platform connected");
        let (mut sink, mut stream) = socket.split();

        let resend: Vec<&String> = unacked.iter().map(|(_, frame)| frame).collect();
        for chunk in resend.chunks(FRAME_BATCH) {
            let joined: Vec<&str> = chunk.iter().map(|f| f.as_str()).collect();
            let frame = format!("{{\"v\":1,\"type\":\"batch\",\"events\":[{}]}}", joined.join(","));
            if sink.send(Message::text(frame)).await.is_err() {
                break;
            }
        }

        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = sink.close().await;
                    return;
                }
                _ = tick.tick() => {
                    let events = simulator.advance(clock.now());
                    let mut failed = false;
                    for chunk in events.chunks(FRAME_BATCH) {
                        let mut batch = Vec::with_capacity(chunk.len());
                        for event in chunk {
                            seq += 1;
                            let frame = sim_event_to_json_v1(event, seq);
                            if unacked.len() == MAX_UNACKED {
                                warn!("the daemon is not acknowledging; the oldest unacknowledged event is dropped");
                                unacked.pop_front();
                            }
                            unacked.push_back((event.event_id.clone(), frame.clone()));
                            batch.push(frame);
                        }
                        let frame = format!("{{\"v\":1,\"type\":\"batch\",\"events\":[{}]}}", batch.join(","));
                        if sink.send(Message::text(frame)).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed {
                        break;
                    }
                }
                message = stream.next() => match message {
                    Some(Ok(Message::Text(text))) => acknowledge(&mut unacked, &text),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
        }
        warn!("demo platform connection lost; reconnecting");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn acknowledge(unacked: &mut std::collections::VecDeque<(String, String)>, text: &str) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else { return };
    match value.get("type").and_then(|t| t.as_str()) {
        Some("ack") => {
            if let Some(id) = value.get("id").and_then(|i| i.as_str())
                && let Some(position) = unacked.iter().position(|(event_id, _)| event_id == id)
            {
                unacked.remove(position);
            }
        }
        Some("error") => warn!(frame = %text, "the daemon rejected a simulated event"),
        _ => {}
    }
}
