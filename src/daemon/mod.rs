//! The daemon: opens the journal, rebuilds today's state from it, binds the
//! listeners and runs every task until shutdown, then drains in order.
//!
//! [`start`] is what `floorwatch serve` and `floorwatch demo` call, and what
//! tests call with their own configuration; it returns once everything is
//! listening, with the bound addresses.

pub mod clock;
pub mod directory;
pub mod engine_task;
pub mod pipeline;
pub mod recovery;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::adherence::{EngineConfig, RuleMatrix, RuleSpec};
use crate::admin::{self, Component, Readiness};
use crate::api::auth::{Authenticator, Principal, Role, TokenEntry};
use crate::api::state::{ApiLimits, ApiState};
use crate::config::Config;
use crate::floor::FloorHub;
use crate::ingest::IngestHandle;
use crate::store::{Journal, JournalOptions};
use crate::telemetry;
use crate::websocket;
use crate::websocket::AuthRejection;
use clock::Clock;

/// How often the engine advances time when no input arrives.
const ENGINE_TICK: Duration = Duration::from_millis(200);

/// How long the drain waits for each stage at shutdown.
const DRAIN_STAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Options a caller adds to the configuration.
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub clock: Clock,
    /// Tokens added to the configured ones (the demo's generated tokens).
    pub extra_tokens: Vec<TokenEntry>,
    /// Tell systemd when ready and feed its watchdog.
    pub notify_systemd: bool,
}

/// A started daemon.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub websocket_addr: Option<SocketAddr>,
    /// Bound SIP listeners, with their real ports; empty without `[sip]`.
    pub sip_addrs: Vec<(crate::config::SipTransport, SocketAddr)>,
    pub shutdown: CancellationToken,
    servers: JoinSet<()>,
    background: Vec<tokio::task::JoinHandle<()>>,
    engine_join: tokio::task::JoinHandle<()>,
    pipeline_join: tokio::task::JoinHandle<()>,
    /// Tells the pipeline to commit what is queued and stop, even while a
    /// stuck connection still holds an ingest handle.
    pipeline_stop: CancellationToken,
    /// Tells the engine task to apply what is queued and stop; cancelled
    /// after the pipeline has stopped.
    engine_stop: CancellationToken,
    journal: Journal,
    notify_systemd: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions { clock: Clock::Real, extra_tokens: Vec::new(), notify_systemd: false }
    }
}

/// Starts every part of the daemon. The configuration must already be
/// validated; nothing is bound before the journal and roster are loaded.
pub async fn start(config: Config, options: StartOptions) -> anyhow::Result<Running> {
    let shutdown = CancellationToken::new();
    let clock = options.clock.clone();
    let readiness = Readiness::new();
    let prometheus = telemetry::install_prometheus();
    crate::store::describe_metrics();
    crate::websocket::telemetry::describe_metrics();

    std::fs::create_dir_all(&config.storage.state_dir).with_context(|| {
        format!(
            "cannot create the state directory {}; set storage.state_dir to a writable directory",
            config.storage.state_dir.display()
        )
    })?;
    let journal = Journal::open(
        &config.storage.journal_path(),
        JournalOptions {
            batch_max: config.storage.journal_batch_max,
            batch_delay: Duration::from_millis(config.storage.journal_batch_delay_ms),
            queue: config.limits.ingest_queue,
        },
    )?;
    readiness.set(Component::Journal, true);

    let recovered = recovery::recover(&config, &journal, &clock).await?;
    readiness.set(Component::Roster, true);

    let hub = Arc::new(FloorHub::new(
        config.limits.floor_retained_changes,
        config.limits.floor_retained_changes.min(65_536),
        // Real time, not the demo's virtual clock: numbers must rise across restarts.
        crate::floor::first_seq_for(jiff::Timestamp::now()),
    ));
    let engine_stop = CancellationToken::new();
    let (engine, engine_join) = engine_task::spawn(
        recovered.engine,
        hub.clone(),
        recovered.directory.clone(),
        clock.clone(),
        engine_task::EngineTaskConfig { tick: ENGINE_TICK, team_summary_interval: Duration::from_secs(1) },
        config.limits.ingest_queue,
        engine_stop.clone(),
    );
    readiness.set(Component::Engine, true);

    let (ingest, ingest_rx) = IngestHandle::channel(config.limits.ingest_queue);
    let pipeline_stop = CancellationToken::new();
    let pipeline_join = tokio::spawn(pipeline::run(
        ingest_rx,
        journal.clone(),
        engine.clone(),
        recovered.directory.clone(),
        clock.clone(),
        pipeline::PipelineConfig {
            max_skew_ms: (config.engine.max_clock_skew_seconds as i64).saturating_mul(1000),
            max_batch: config.storage.journal_batch_max,
        },
        pipeline_stop.clone(),
    ));

    let grpc_listener = bind(config.listen.grpc, "grpc").await?;
    let admin_listener = bind(config.listen.admin, "admin").await?;
    let websocket_listener = match config.listen.websocket {
        Some(addr) => Some(bind(addr, "websocket").await?),
        None => None,
    };
    let grpc_addr = grpc_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let websocket_addr = websocket_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    info!(%grpc_addr, "gRPC API listening");
    info!(%admin_addr, "admin endpoint listening");
    if let Some(addr) = websocket_addr {
        info!(%addr, "WebSocket ingest listening");
    }

    let authenticator = authenticator(&config, options.extra_tokens);
    let api = Arc::new(ApiState::new(
        authenticator.clone(),
        hub.clone(),
        engine.clone(),
        journal.clone(),
        recovered.directory.clone(),
        recovered.roster,
        ingest.clone(),
        config.site.time_zone.clone(),
        config.site.locale,
        config.roster.labour_rules.clone(),
        ApiLimits {
            floor_client_buffer: config.limits.floor_client_buffer.max(1),
            max_stream_clients: config.limits.max_stream_clients,
            ingest_max_batch: config.limits.ingest_max_batch,
            ingest_in_flight: 8,
            max_agents: config.limits.max_agents,
            source_silence: Duration::from_secs(config.engine.source_silence_seconds),
            source_grace: Duration::from_secs(config.websocket.disconnect_grace_seconds),
        },
        clock.clone(),
        shutdown.clone(),
    ));

    let mut servers = JoinSet::new();
    {
        let shutdown = shutdown.clone();
        servers.spawn(async move {
            if let Err(e) = crate::api::server::serve(grpc_listener, api, shutdown.clone()).await {
                error!(error = %e, "gRPC server failed");
                shutdown.cancel();
            }
        });
    }
    servers.spawn(admin::serve_admin(admin_listener, prometheus, readiness.clone(), shutdown.clone()));
    if let Some(listener) = websocket_listener {
        let server_config = websocket_server_config(&config);
        let auth = websocket_auth(authenticator.clone());
        let ingest = ingest.clone();
        let shutdown = shutdown.clone();
        servers.spawn(async move {
            if let Err(e) = websocket::server::run_server(listener, server_config, ingest, auth, shutdown.clone()).await
            {
                error!(error = %e, "WebSocket ingest server failed");
                shutdown.cancel();
            }
        });
    }
    let mut sip_addrs = Vec::new();
    if let Some(sip) = &config.sip {
        let adapter = crate::sip::adapter::SipAdapter::start(
            sip,
            ingest.clone(),
            recovered.directory.clone(),
            clock.clone(),
            shutdown.clone(),
        )
        .await?;
        sip_addrs = adapter.local.clone();
        servers.spawn(adapter.join());
    }
    let mut background = Vec::new();
    for client in &config.websocket.clients {
        let client_config = websocket_client_config(&config, client)?;
        let ingest = ingest.clone();
        let shutdown = shutdown.clone();
        let name = client.name.clone();
        background.push(tokio::spawn(async move {
            if let Err(e) = websocket::client::run_client(client_config, ingest, shutdown).await {
                error!(source = %name, error = %e, "WebSocket feed client stopped");
            }
        }));
    }
    drop(ingest);

    readiness.set(Component::Listeners, true);
    if options.notify_systemd {
        notify_ready();
        background.push(tokio::spawn(feed_watchdog(engine.clone(), clock.clone(), shutdown.clone())));
    }
    info!(site = %config.site.name, agents = recovered.agent_count, "floorwatch ready");

    Ok(Running {
        grpc_addr,
        admin_addr,
        websocket_addr,
        sip_addrs,
        shutdown,
        servers,
        background,
        engine_join,
        pipeline_join,
        pipeline_stop,
        engine_stop,
        journal,
        notify_systemd: options.notify_systemd,
    })
}

// === impl Running ===

impl Running {
    /// Waits until shutdown is requested, then drains: servers stop (open
    /// streams end with UNAVAILABLE), the pipeline commits what it holds,
    /// the engine stops, and the journal is flushed and closed.
    pub async fn wait(mut self) {
        self.shutdown.cancelled().await;
        info!("shutting down");
        if self.notify_systemd {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        }

        let servers = async { while self.servers.join_next().await.is_some() {} };
        if tokio::time::timeout(DRAIN_STAGE_TIMEOUT, servers).await.is_err() {
            // A peer that stopped reading can hold a connection open; the
            // server tasks are stopped so they release the ingest handles.
            warn!("servers did not stop in time; stopping them");
            self.servers.shutdown().await;
        }
        for task in self.background.drain(..) {
            task.abort();
        }
        self.pipeline_stop.cancel();
        if tokio::time::timeout(DRAIN_STAGE_TIMEOUT, &mut self.pipeline_join).await.is_err() {
            warn!("ingest pipeline did not stop in time; uncommitted events were not acknowledged");
            self.pipeline_join.abort();
        }
        self.engine_stop.cancel();
        let _ = tokio::time::timeout(DRAIN_STAGE_TIMEOUT, &mut self.engine_join).await;
        if let Err(e) = self.journal.shutdown().await {
            error!(error = %e, "journal did not close cleanly");
        }
        info!("floorwatch stopped");
    }
}

async fn bind(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {name}; check listen.{name} and that the port is free"))
}

/// Builds the engine settings from the configuration.
pub fn engine_config(config: &Config) -> EngineConfig {
    let specs: Vec<RuleSpec> = config
        .adherence
        .rules
        .iter()
        .map(|rule| RuleSpec {
            activity: rule.activity,
            in_groups: rule.in_adherence.clone(),
            neutral_groups: rule.neutral.clone(),
            threshold_ms: (rule.threshold_seconds as i64).saturating_mul(1000),
        })
        .collect();
    let default_threshold_ms = (config.engine.default_alarm_threshold_seconds as i64).saturating_mul(1000);
    let state_codes: HashMap<String, _> =
        config.state_codes.iter().map(|(code, group)| (code.to_string(), group)).collect();
    EngineConfig {
        tz: config.site.time_zone.clone(),
        rules: RuleMatrix::new(&specs, default_threshold_ms),
        state_codes,
        history_limit: config.engine.history_limit_per_agent_day,
    }
}

fn authenticator(config: &Config, extra: Vec<TokenEntry>) -> Authenticator {
    let mut tokens: Vec<TokenEntry> = config
        .auth
        .tokens
        .iter()
        .map(|token| TokenEntry {
            sha256_hex: hex::encode(token.sha256),
            principal: Principal {
                name: token.name.clone(),
                role: token.role,
                teams: token.teams.iter().cloned().collect(),
                agent_id: token.agent_id.clone(),
            },
        })
        .collect();
    tokens.extend(extra);
    Authenticator::new(tokens)
}

fn websocket_auth(authenticator: Authenticator) -> websocket::server::AuthFn {
    // The adapter passes the token after "Bearer ", or None without one.
    Arc::new(move |token: Option<&str>| {
        let token = token.ok_or_else(|| {
            AuthRejection::Unauthenticated("missing Authorization header; send \"Bearer <token>\"".to_string())
        })?;
        let principal = authenticator
            .authenticate_token(token)
            .map_err(|status| AuthRejection::Unauthenticated(status.message().to_string()))?;
        match principal.role {
            Role::Admin | Role::Ingest => Ok(principal.name),
            other => Err(AuthRejection::Forbidden(format!(
                "token \"{}\" has role {} and may not publish events",
                principal.name,
                other.as_str()
            ))),
        }
    })
}

fn websocket_server_config(config: &Config) -> websocket::server::ServerConfig {
    websocket::server::ServerConfig {
        max_message_bytes: config.websocket.max_message_bytes,
        max_connections: config.websocket.max_connections,
        silence_timeout: Duration::from_secs(config.websocket.silence_timeout_seconds),
        disconnect_grace: Duration::from_secs(config.websocket.disconnect_grace_seconds),
        ..Default::default()
    }
}

fn websocket_client_config(
    config: &Config,
    client: &crate::config::WebSocketClientConfig,
) -> anyhow::Result<websocket::client::ClientConfig> {
    let mut feed = websocket::client::ClientConfig::new(client.name.clone(), client.url.clone());
    if let Some(variable) = &client.auth_header_env {
        feed.auth_header = Some(std::env::var(variable).with_context(|| {
            format!(
                "websocket.client \"{}\": environment variable {variable} (auth_header_env) is not set",
                client.name
            )
        })?);
    }
    feed.initial_backoff = Duration::from_millis(client.initial_backoff_ms);
    feed.max_backoff = Duration::from_millis(client.max_backoff_ms);
    feed.max_message_bytes = config.websocket.max_message_bytes;
    feed.silence_timeout = Duration::from_secs(config.websocket.silence_timeout_seconds);
    feed.disconnect_grace = Duration::from_secs(config.websocket.disconnect_grace_seconds);
    Ok(feed)
}

fn notify_ready() {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        warn!(error = %e, "could not tell systemd the daemon is ready");
    }
}

/// Feeds the systemd watchdog, but only while the engine advances: a stuck
/// engine lets the watchdog fire and systemd restarts the daemon.
async fn feed_watchdog(engine: engine_task::EngineHandle, clock: Clock, shutdown: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled().map(|period| period / 2) else {
        return;
    };
    let mut last = engine.last_advance_ms();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let current = engine.last_advance_ms();
        if current > last || clock.speed() == 0.0 {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        } else {
            warn!(last_advance_ms = current, "engine has not advanced; withholding the watchdog ping");
        }
        last = current;
    }
}
