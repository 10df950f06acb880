//! Server mode: the platform connects to floorwatch and pushes events.
//!
//! [`run_server`] accepts WebSocket upgrades on `/v1/events`, checks the
//! bearer token through the caller's auth callback, bounds the number of
//! connections, and runs one task per connection that processes frames in
//! order. A health task turns connection opens, closes and activity into
//! source health reports. TLS is not handled here (put a TLS proxy in
//! front); neither is the HTTP admin endpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http::{HeaderValue, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::health::{HealthTracker, SeqTracker};
use super::schema::validate_source_name;
use super::session::{self, CLOSE_LINGER, FeedSession, SEND_TIMEOUT};
use super::telemetry::{self, ConnectionGauge, Mode};
use super::{WebSocketError, report_health, sleep_until_deadline};
use crate::ingest::IngestHandle;

/// The only path that accepts upgrades.
pub const EVENTS_PATH: &str = "/v1/events";

/// Maximum upgrades being rejected with 503 at once, beyond
/// `max_connections`. Past this, excess TCP connections are dropped without
/// a response.
const MAX_PENDING_REJECTIONS: usize = 32;

/// Checks the bearer token of an upgrade request. Receives the token after
/// `Bearer ` (or `None` when the header is missing or uses another scheme)
/// and returns the principal's name, or why the upgrade is refused.
pub type AuthFn = Arc<dyn Fn(Option<&str>) -> Result<String, AuthRejection> + Send + Sync>;

/// Why an upgrade was refused, with the message for the response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRejection {
    /// No token, or an unknown one: 401.
    Unauthenticated(String),
    /// A valid token whose role may not publish events: 403.
    Forbidden(String),
}

/// Settings of server mode.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Source name for connections that send neither `hello` nor
    /// `?source=`; when `None`, the authenticated principal's name is used.
    pub default_source: Option<String>,
    /// Open connections at most; further upgrades get 503.
    pub max_connections: usize,
    /// Largest frame and message accepted; bigger ones close with 1009.
    pub max_message_bytes: usize,
    /// A source is unhealthy after this long without event or heartbeat.
    pub silence_timeout: Duration,
    /// Wait after a source's last connection closed before reporting it
    /// unhealthy, so a quick reconnect does not flap the health.
    pub disconnect_grace: Duration,
    /// Time allowed for the HTTP upgrade after TCP accept.
    pub handshake_timeout: Duration,
    /// Interval of WebSocket pings, so dead peers are noticed.
    pub ping_interval: Duration,
    /// A connection with no frame at all (pongs included) for this long is
    /// closed.
    pub idle_timeout: Duration,
}

/// Everything a connection task needs.
struct Shared {
    cfg: ServerConfig,
    ingest: IngestHandle,
    auth: AuthFn,
    shutdown: CancellationToken,
    health: mpsc::Sender<HealthUpdate>,
}

/// A connection event for the health task.
#[derive(Debug)]
enum HealthUpdate {
    Opened(String),
    Activity(String, Instant),
    Closed(String, Instant),
}

/// Principal and source of an accepted upgrade request.
#[derive(Debug)]
struct Upgrade {
    principal: String,
    source: String,
}

// === impl ServerConfig ===

impl ServerConfig {
    /// Checks every setting; [`run_server`] refuses to start otherwise.
    pub fn validate(&self) -> Result<(), WebSocketError> {
        let invalid = |key: &'static str, message: String| Err(WebSocketError::InvalidConfig { key, message });

        if let Some(source) = &self.default_source
            && let Err(message) = validate_source_name(source)
        {
            return invalid("default_source", message);
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "is 0; allow at least 1 connection".to_string());
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_message_bytes) {
            return invalid(
                "max_message_bytes",
                format!("is {}; set it between 1024 and 67108864", self.max_message_bytes),
            );
        }
        for (key, value) in [
            ("silence_timeout", self.silence_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("ping_interval", self.ping_interval),
        ] {
            if value.is_zero() {
                return invalid(key, "is 0; set a positive duration".to_string());
            }
        }
        if self.idle_timeout <= self.ping_interval {
            return invalid(
                "idle_timeout",
                format!(
                    "is {:?}, not more than ping_interval {:?}; a live peer would be dropped, so make it at least twice ping_interval",
                    self.idle_timeout, self.ping_interval
                ),
            );
        }
        Ok(())
    }

    fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            default_source: None,
            max_connections: 64,
            max_message_bytes: 256 * 1024,
            silence_timeout: Duration::from_secs(30),
            disconnect_grace: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

/// Runs server mode on `listener` until `shutdown` is cancelled.
///
/// On shutdown it stops accepting, sends close 1001 on every connection,
/// waits for them to finish (bounded), and returns. Returns an error only
/// for an invalid configuration, before accepting anything.
pub async fn run_server(
    listener: TcpListener,
    cfg: ServerConfig,
    ingest: IngestHandle,
    auth: AuthFn,
    shutdown: CancellationToken,
) -> Result<(), WebSocketError> {
    cfg.validate()?;

    let tracker = HealthTracker::new(cfg.silence_timeout, cfg.disconnect_grace);
    let (health_tx, health_rx) = mpsc::channel(1024);
    let health_task = tokio::spawn(run_health(tracker, health_rx, ingest.clone()));

    let connection_slots = Arc::new(Semaphore::new(cfg.max_connections));
    let rejection_slots = Arc::new(Semaphore::new(MAX_PENDING_REJECTIONS));
    let tasks = TaskTracker::new();
    let shared = Arc::new(Shared { cfg, ingest, auth, shutdown: shutdown.clone(), health: health_tx });

    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, path = EVENTS_PATH, "websocket feed server listening"),
        Err(err) => tracing::info!(error = %err, path = EVENTS_PATH, "websocket feed server listening"),
    }

    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Usually out of file descriptors; pausing lets
                    // connections close instead of spinning.
                    tracing::warn!(error = %err, "accepting a feed connection failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };

        let slot = connection_slots.clone().try_acquire_owned().ok();
        let rejection = match slot {
            Some(_) => None,
            None => match rejection_slots.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    telemetry::upgrade_rejected(503);
                    tracing::warn!(%peer, "dropped feed connection: connection limit reached and too many rejections pending");
                    continue;
                }
            },
        };
        tasks.spawn(handle_connection(shared.clone(), stream, peer, slot, rejection));
    }

    tasks.close();
    let drain = SEND_TIMEOUT + CLOSE_LINGER;
    if tokio::time::timeout(drain, tasks.wait()).await.is_err() {
        tracing::warn!(timeout = ?drain, "feed connections did not close in time; dropping them");
    }
    drop(shared);
    let _ = tokio::time::timeout(CLOSE_LINGER, health_task).await;
    tracing::info!("websocket feed server stopped");
    Ok(())
}

/// Performs the upgrade and, when accepted, runs the connection.
/// `slot` is `None` when the connection limit is reached: the upgrade is
/// then rejected with 503 (holding `_rejection` meanwhile).
async fn handle_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
    _rejection: Option<OwnedSemaphorePermit>,
) {
    let _ = stream.set_nodelay(true);

    let mut upgrade = None;
    let has_slot = slot.is_some();
    // The Err type is fixed by tungstenite's handshake callback.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        match check_upgrade(request, has_slot, &shared) {
            Ok(accepted) => {
                upgrade = Some(accepted);
                Ok(response)
            }
            Err((status, message)) => {
                telemetry::upgrade_rejected(status.as_u16());
                tracing::info!(%peer, path = request.uri().path(), status = status.as_u16(), reason = %message, "rejected feed upgrade");
                Err(error_response(status, message))
            }
        }
    };

    let config = shared.cfg.websocket_config();
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config));
    let ws = match tokio::time::timeout(shared.cfg.handshake_timeout, handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "feed upgrade did not complete");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, timeout = ?shared.cfg.handshake_timeout, "feed upgrade timed out");
            return;
        }
    };
    let Some(upgrade) = upgrade else { return };

    serve_connection(&shared, ws, peer, upgrade).await;
    drop(slot);
}

/// Decides an upgrade: 404 for another path, 401 when auth fails, 503 at
/// the connection limit, 400 for an invalid `?source=`.
fn check_upgrade(request: &Request, has_slot: bool, shared: &Shared) -> Result<Upgrade, (StatusCode, String)> {
    let path = request.uri().path();
    if path != EVENTS_PATH {
        return Err((StatusCode::NOT_FOUND, format!("no WebSocket endpoint at {path}; connect to {EVENTS_PATH}")));
    }

    let token =
        request.headers().get(http::header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(bearer_token);
    let principal = (shared.auth)(token).map_err(|rejection| match rejection {
        AuthRejection::Unauthenticated(message) => (StatusCode::UNAUTHORIZED, message),
        AuthRejection::Forbidden(message) => (StatusCode::FORBIDDEN, message),
    })?;

    if !has_slot {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("connection limit of {} reached; retry later", shared.cfg.max_connections),
        ));
    }

    let query_source = request
        .uri()
        .query()
        .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("source=")).map(str::to_string));
    if let Some(source) = &query_source {
        validate_source_name(source).map_err(|message| (StatusCode::BAD_REQUEST, message))?;
    }

    let source = query_source.or_else(|| shared.cfg.default_source.clone()).unwrap_or_else(|| principal.clone());
    Ok(Upgrade { principal, source })
}

/// Returns the token of a `Bearer` authorization value (scheme matched
/// case-insensitively, as RFC 7235 section 2.1 requires).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

fn error_response(status: StatusCode, message: String) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(message));
    *response.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// Runs one accepted connection until it closes, it idles out or shutdown.
async fn serve_connection(shared: &Shared, mut ws: WebSocketStream<TcpStream>, peer: SocketAddr, upgrade: Upgrade) {
    let _gauge = ConnectionGauge::open(Mode::Server);
    let cfg = &shared.cfg;
    tracing::info!(%peer, source = %upgrade.source, principal = %upgrade.principal, "feed connection opened");

    let mut session =
        FeedSession::new(Mode::Server, upgrade.source, peer.to_string(), cfg.max_message_bytes, SeqTracker::default());
    // Set once the source has shown activity and the health task tracks it.
    let mut registered: Option<String> = None;
    let mut ping = tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_frame = Instant::now();

    let reason = loop {
        tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => {
                session::close(&mut ws, CloseCode::Away, "floorwatch is shutting down").await;
                break "shutdown".to_string();
            }
            message = ws.next() => {
                last_frame = Instant::now();
                let step = session.process(&mut ws, message, &shared.ingest, &shared.shutdown).await;

                if step.activity {
                    if registered.is_none() {
                        registered = Some(session.source().to_string());
                        let _ = shared.health.send(HealthUpdate::Opened(session.source().to_string())).await;
                    }
                    let _ = shared.health.send(HealthUpdate::Activity(session.source().to_string(), Instant::now())).await;
                }
                if let Some(ended) = step.ended {
                    break ended.reason;
                }
            }
            _ = ping.tick() => {
                if let Err(err) = ws.send(Message::Ping(Default::default())).await {
                    break format!("ping failed: {err}");
                }
            }
            _ = tokio::time::sleep_until(last_frame + cfg.idle_timeout) => {
                let reason = format!("no frame for {} s", cfg.idle_timeout.as_secs());
                session::close(&mut ws, CloseCode::Normal, &reason).await;
                break reason;
            }
        }
    };

    if let Some(source) = registered {
        let _ = shared.health.send(HealthUpdate::Closed(source, Instant::now())).await;
    }
    tracing::info!(%peer, source = %session.source(), %reason, "feed connection closed");
}

/// Owns the health tracker: applies connection updates, waits for the next
/// deadline, and reports every change to the pipeline in order. Ends when
/// every sender is gone.
async fn run_health(mut tracker: HealthTracker, mut updates: mpsc::Receiver<HealthUpdate>, ingest: IngestHandle) {
    loop {
        let update = tokio::select! {
            update = updates.recv() => match update {
                Some(update) => Some(update),
                None => break,
            },
            _ = sleep_until_deadline(tracker.next_deadline()) => None,
        };

        let mut changes = Vec::new();
        match update {
            Some(HealthUpdate::Opened(source)) => tracker.opened(&source, Instant::now()),
            Some(HealthUpdate::Activity(source, at)) => changes.extend(tracker.activity(&source, at)),
            Some(HealthUpdate::Closed(source, at)) => tracker.closed(&source, at),
            None => {}
        }
        changes.extend(tracker.poll(Instant::now()));

        for change in changes {
            report_health(&ingest, &change).await;
        }
    }
}
