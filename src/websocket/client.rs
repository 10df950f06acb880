//! Client mode: floorwatch connects to the platform's event feed.
//!
//! [`run_client`] connects with the configured `Authorization` header, sends
//! `resume` with the last acknowledged event id, processes frames like the
//! server does and sends the acknowledgements back. When the connection ends
//! it reconnects after a jittered exponential backoff. A close with 1012
//! (service restart) or 1013 (try again later) never shortens that wait.
//! The source is reported unhealthy while disconnected. Only `ws://` URLs
//! are supported for now.

use std::fmt;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http::HeaderValue;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::backoff::{Backoff, BackoffPolicy};
use super::health::{HealthTracker, SeqTracker};
use super::schema::{resume_frame, validate_source_name};
use super::session::{self, FeedSession};
use super::telemetry::{self, ConnectionGauge, Mode};
use super::{WebSocketError, report_health, sleep_until_deadline};
use crate::ingest::IngestHandle;

type FeedStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Settings of client mode. `Debug` hides `auth_header`.
#[derive(Clone)]
pub struct ClientConfig {
    /// Source name the feed's events are tagged with, e.g. `platform-main`.
    pub name: String,
    /// Feed URL, `ws://host:port/path`.
    pub url: String,
    /// Full `Authorization` header value, e.g. `Bearer abc…`; a secret.
    pub auth_header: Option<String>,
    /// Nominal delay before the first reconnect.
    pub initial_backoff: Duration,
    /// Cap on every reconnect delay.
    pub max_backoff: Duration,
    /// Random deviation of each delay, as a fraction (0.2 to 0.9).
    pub jitter: f64,
    /// A connection that stayed up this long resets the backoff, unless the
    /// platform closed it with 1012 or 1013.
    pub reset_after: Duration,
    /// Largest frame and message accepted; bigger ones close with 1009.
    pub max_message_bytes: usize,
    /// The source is unhealthy after this long without event or heartbeat.
    pub silence_timeout: Duration,
    /// Wait after a disconnect before reporting the source unhealthy, so a
    /// quick reconnect does not flap the health. A failed connect reports
    /// at once.
    pub disconnect_grace: Duration,
    /// Interval of WebSocket pings to the platform.
    pub ping_interval: Duration,
    /// The connection is dropped and reopened after this long without any
    /// frame (pongs included).
    pub idle_timeout: Duration,
    /// Time allowed for TCP connect plus HTTP upgrade.
    pub connect_timeout: Duration,
}

/// Summary of one ended connection, for the reconnect decision.
#[derive(Debug)]
struct ConnectionEnd {
    lasted: Duration,
    peer_close: Option<CloseCode>,
}

/// State that outlives a connection.
struct FeedState {
    backoff: Backoff,
    health: HealthTracker,
    seq: SeqTracker,
    /// Id of the last event acknowledged; sent in `resume`.
    last_acked: Option<String>,
    connected_before: bool,
}

// === impl ClientConfig ===

impl ClientConfig {
    /// Creates a config with the default timings for the feed `name` at `url`.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            name: name.into(),
            url: url.into(),
            auth_header: None,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            jitter: 0.5,
            reset_after: Duration::from_secs(60),
            max_message_bytes: 256 * 1024,
            silence_timeout: Duration::from_secs(30),
            disconnect_grace: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(10),
        }
    }

    fn backoff_policy(&self) -> BackoffPolicy {
        BackoffPolicy { initial: self.initial_backoff, max: self.max_backoff, jitter: self.jitter }
    }

    /// Checks every setting; [`run_client`] refuses to start otherwise.
    pub fn validate(&self) -> Result<(), WebSocketError> {
        let invalid = |key: &'static str, message: String| Err(WebSocketError::InvalidConfig { key, message });

        if let Err(message) = validate_source_name(&self.name) {
            return invalid("name", message);
        }
        if !self.url.starts_with("ws://") {
            return invalid("url", format!("\"{}\" is not a ws:// URL; wss:// (TLS) is not supported yet", self.url));
        }
        if let Err(err) = self.url.as_str().into_client_request() {
            return invalid("url", format!("\"{}\" is invalid: {err}", self.url));
        }
        if let Some(header) = &self.auth_header
            && HeaderValue::from_str(header).is_err()
        {
            return invalid("auth_header", "contains characters not allowed in an HTTP header".to_string());
        }
        if let Err(err) = self.backoff_policy().validate() {
            return invalid("backoff", err.to_string());
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_message_bytes) {
            return invalid(
                "max_message_bytes",
                format!("is {}; set it between 1024 and 67108864", self.max_message_bytes),
            );
        }
        for (key, value) in [
            ("silence_timeout", self.silence_timeout),
            ("ping_interval", self.ping_interval),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return invalid(key, "is 0; set a positive duration".to_string());
            }
        }
        if self.idle_timeout <= self.ping_interval {
            return invalid(
                "idle_timeout",
                format!(
                    "is {:?}, not more than ping_interval {:?}; make it at least twice ping_interval",
                    self.idle_timeout, self.ping_interval
                ),
            );
        }
        Ok(())
    }

    fn request(&self) -> Result<Request, String> {
        let mut request = self.url.as_str().into_client_request().map_err(|err| err.to_string())?;
        if let Some(header) = &self.auth_header {
            let value = HeaderValue::from_str(header).map_err(|_| "invalid auth_header".to_string())?;
            request.headers_mut().insert(http::header::AUTHORIZATION, value);
        }
        Ok(request)
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("auth_header", &self.auth_header.as_ref().map(|_| "<redacted>"))
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("jitter", &self.jitter)
            .field("reset_after", &self.reset_after)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("silence_timeout", &self.silence_timeout)
            .field("disconnect_grace", &self.disconnect_grace)
            .field("ping_interval", &self.ping_interval)
            .field("idle_timeout", &self.idle_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Runs client mode until `shutdown` is cancelled: connect, process,
/// reconnect. Returns an error only for an invalid configuration.
pub async fn run_client(
    cfg: ClientConfig,
    ingest: IngestHandle,
    shutdown: CancellationToken,
) -> Result<(), WebSocketError> {
    cfg.validate()?;

    let mut rng = StdRng::from_os_rng();
    let mut state = FeedState {
        backoff: Backoff::new(cfg.backoff_policy()),
        health: HealthTracker::retaining(cfg.silence_timeout, cfg.disconnect_grace),
        seq: SeqTracker::default(),
        last_acked: None,
        connected_before: false,
    };
    tracing::info!(source = %cfg.name, url = %cfg.url, "websocket feed client starting");

    loop {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => break,
            attempt = tokio::time::timeout(cfg.connect_timeout, connect(&cfg)) => attempt,
        };

        match attempt {
            Ok(Ok(ws)) => {
                let end = run_connection(&cfg, ws, &ingest, &shutdown, &mut state).await;
                state.connected_before = true;
                if shutdown.is_cancelled() {
                    break;
                }

                let asked_to_wait = matches!(end.peer_close, Some(CloseCode::Restart | CloseCode::Again));
                if asked_to_wait {
                    tracing::info!(source = %cfg.name, close_code = end.peer_close.map(u16::from), "feed asked to reconnect later; keeping the backoff");
                } else if end.lasted >= cfg.reset_after {
                    state.backoff.reset();
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(source = %cfg.name, url = %cfg.url, %error, "connecting to feed failed");
                mark_unreachable(&cfg, &ingest, &mut state).await;
            }
            Err(_) => {
                tracing::warn!(source = %cfg.name, url = %cfg.url, timeout = ?cfg.connect_timeout, "connecting to feed timed out");
                mark_unreachable(&cfg, &ingest, &mut state).await;
            }
        }

        let delay = state.backoff.next_delay(&mut rng);
        telemetry::reconnect();
        tracing::info!(
            source = %cfg.name,
            attempt = state.backoff.attempt(),
            delay_ms = delay.as_millis() as u64,
            "reconnecting to feed after backoff",
        );
        if !wait(delay, &ingest, &shutdown, &mut state).await {
            break;
        }
    }

    tracing::info!(source = %cfg.name, "websocket feed client stopped");
    Ok(())
}

async fn connect(cfg: &ClientConfig) -> Result<FeedStream, String> {
    let request = cfg.request()?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message_bytes))
        .max_frame_size(Some(cfg.max_message_bytes));

    match tokio_tungstenite::connect_async_with_config(request, Some(config), true).await {
        Ok((ws, _response)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(format!("upgrade rejected with HTTP {}", response.status()))
        }
        Err(err) => Err(err.to_string()),
    }
}

async fn mark_unreachable(cfg: &ClientConfig, ingest: &IngestHandle, state: &mut FeedState) {
    if let Some(change) = state.health.unreachable(&cfg.name) {
        report_health(ingest, &change).await;
    }
}

/// Sleeps `delay` while reporting health deadlines that fall in it.
/// Returns false when shutdown came first.
async fn wait(delay: Duration, ingest: &IngestHandle, shutdown: &CancellationToken, state: &mut FeedState) -> bool {
    let until = Instant::now() + delay;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep_until(until) => return true,
            _ = sleep_until_deadline(state.health.next_deadline()) => {
                for change in state.health.poll(Instant::now()) {
                    report_health(ingest, &change).await;
                }
            }
        }
    }
}

/// Runs one connection: resume, then frames until it ends.
async fn run_connection(
    cfg: &ClientConfig,
    mut ws: FeedStream,
    ingest: &IngestHandle,
    shutdown: &CancellationToken,
    state: &mut FeedState,
) -> ConnectionEnd {
    let _gauge = ConnectionGauge::open(Mode::Client);
    let started = Instant::now();
    tracing::info!(source = %cfg.name, url = %cfg.url, resume_after = state.last_acked.as_deref(), "connected to feed");

    if state.connected_before {
        state.seq.reconnected();
    }
    let mut session =
        FeedSession::new(Mode::Client, cfg.name.clone(), cfg.url.clone(), cfg.max_message_bytes, state.seq);
    state.health.opened(&cfg.name, started);

    let mut ping = tokio::time::interval_at(started + cfg.ping_interval, cfg.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_frame = started;

    let resume = session::send_text(&mut ws, resume_frame(state.last_acked.as_deref())).await;
    let ended = match resume {
        Err(reason) => session::Ended { reason: format!("sending resume failed: {reason}"), peer_close: None },
        Ok(()) => loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    session::close(&mut ws, CloseCode::Away, "floorwatch is shutting down").await;
                    break session::Ended { reason: "shutdown".to_string(), peer_close: None };
                }
                message = ws.next() => {
                    last_frame = Instant::now();
                    let step = session.process(&mut ws, message, ingest, shutdown).await;
                    if let Some(id) = session.last_acked() {
                        state.last_acked = Some(id.to_string());
                    }
                    if step.activity
                        && let Some(change) = state.health.activity(&cfg.name, Instant::now())
                    {
                        report_health(ingest, &change).await;
                    }
                    if let Some(ended) = step.ended {
                        break ended;
                    }
                }
                _ = ping.tick() => {
                    if let Err(err) = ws.send(Message::Ping(Default::default())).await {
                        break session::Ended { reason: format!("ping failed: {err}"), peer_close: None };
                    }
                }
                _ = sleep_until_deadline(state.health.next_deadline()) => {
                    for change in state.health.poll(Instant::now()) {
                        report_health(ingest, &change).await;
                    }
                }
                _ = tokio::time::sleep_until(last_frame + cfg.idle_timeout) => {
                    let reason = format!("no frame for {} s", cfg.idle_timeout.as_secs());
                    session::close(&mut ws, CloseCode::Normal, &reason).await;
                    break session::Ended { reason, peer_close: None };
                }
            }
        },
    };

    state.seq = session.seq();
    state.health.closed(&cfg.name, Instant::now());
    let lasted = started.elapsed();
    tracing::info!(
        source = %cfg.name,
        reason = %ended.reason,
        close_code = ended.peer_close.map(u16::from),
        connected_ms = lasted.as_millis() as u64,
        "feed connection closed",
    );
    ConnectionEnd { lasted, peer_close: ended.peer_close }
}
