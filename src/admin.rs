//! The HTTP admin endpoint: `/metrics` for Prometheus, `/healthz` for
//! liveness and `/readyz` for readiness.
//!
//! It serves plain HTTP/1.1 on the listener the caller bound (normally on
//! loopback) and has no authentication, so it must not be exposed beyond the
//! host or a trusted scrape network. It renders metrics; it does not define
//! them (see `crate::telemetry`).

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Content type of the Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Most admin connections served at once; further ones wait in the listen
/// backlog.
const MAX_CONNECTIONS: usize = 64;

/// A client must send its request head within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Interval of the recorder's upkeep. Upkeep drains histogram samples, so it
/// must run even without scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How long open connections may finish after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A part of the daemon that must be up before `/readyz` reports ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// Every configured listener is bound.
    Listeners,
    /// The agent directory and roster are loaded.
    Roster,
    /// The journal is open and recovered.
    Journal,
    /// The adherence engine is running.
    Engine,
}

/// Readiness flags shared between the daemon, which sets them, and the admin
/// endpoint, which reports them. Clones share the same flags; all start
/// unset.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    flags: Arc<[AtomicBool; Component::ALL.len()]>,
}

// === impl Component ===

impl Component {
    pub const ALL: [Component; 4] = [Component::Listeners, Component::Roster, Component::Journal, Component::Engine];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Listeners => "listeners",
            Component::Roster => "roster",
            Component::Journal => "journal",
            Component::Engine => "engine",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Readiness ===

impl Readiness {
    pub fn new() -> Readiness {
        Readiness::default()
    }

    pub fn set(&self, component: Component, ready: bool) {
        self.flags[component.index()].store(ready, Ordering::Release);
    }

    pub fn is_set(&self, component: Component) -> bool {
        self.flags[component.index()].load(Ordering::Acquire)
    }

    /// Returns the components not yet ready, in [`Component::ALL`] order.
    pub fn not_ready(&self) -> Vec<Component> {
        Component::ALL.into_iter().filter(|c| !self.is_set(*c)).collect()
    }

    pub fn is_ready(&self) -> bool {
        self.not_ready().is_empty()
    }
}

/// Serves the admin endpoint on `listener` until `shutdown` is cancelled,
/// then lets open connections finish for a few seconds.
pub async fn serve_admin(
    listener: TcpListener,
    handle: PrometheusHandle,
    ready: Readiness,
    shutdown: CancellationToken,
) {
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "admin endpoint listening"),
        Err(error) => tracing::warn!(%error, "admin endpoint listening on an unknown address"),
    }

    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = TaskTracker::new();
    connections.spawn(run_upkeep(handle.clone(), shutdown.clone()));

    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };

        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Usually EMFILE or a reset before accept; pause so a
                // persistent error does not spin.
                tracing::warn!(%error, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };

        let handle = handle.clone();
        let ready = ready.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            serve_connection(stream, handle, ready, shutdown).await;
            tracing::trace!(%peer, "admin connection closed");
            drop(permit);
        });
    }

    connections.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, connections.wait()).await.is_err() {
        tracing::warn!(open = connections.len(), "admin connections still open after shutdown; dropping them");
    }
    tracing::info!("admin endpoint stopped");
}

async fn run_upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => handle.run_upkeep(),
        }
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    handle: PrometheusHandle,
    ready: Readiness,
    shutdown: CancellationToken,
) {
    let service = service_fn(move |request: Request<Incoming>| {
        let response = route(&request, &handle, &ready);
        async move { Ok::<_, Infallible>(response) }
    });

    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);

    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "admin connection failed");
    }
}

/// Returns the response for one request.
fn route<B>(request: &Request<B>, handle: &PrometheusHandle, ready: &Readiness) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let known = matches!(path, "/metrics" | "/healthz" | "/readyz");
    if !known {
        return text(StatusCode::NOT_FOUND, "not found; paths are /metrics, /healthz, /readyz\n");
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed; use GET\n");
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }

    match path {
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(handle.render())));
            response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(METRICS_CONTENT_TYPE));
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        _ => readiness_response(ready),
    }
}

fn readiness_response(ready: &Readiness) -> Response<Full<Bytes>> {
    let missing = ready.not_ready();
    if missing.is_empty() {
        return text(StatusCode::OK, "ready\n");
    }
    let names: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
    text(StatusCode::SERVICE_UNAVAILABLE, &format!("not ready: {}\n", names.join(", ")))
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_lists_missing_components() {
        let ready = Readiness::new();
        ready.set(Component::Listeners, true);
        ready.set(Component::Journal, true);
        assert_eq!(ready.not_ready(), vec![Component::Roster, Component::Engine]);
    }

    #[test]
    fn readiness_clones_share_flags() {
        let ready = Readiness::new();
        let clone = ready.clone();
        for component in Component::ALL {
            clone.set(component, true);
        }
        assert!(ready.is_ready());
    }

    #[test]
    fn route_rejects_post_with_allow_header() {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
        let request = Request::post("/healthz").body(()).expect("static request is valid");
        let response = route(&request, &handle, &Readiness::new());
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers().get(header::ALLOW).map(|v| v.as_bytes()), Some(&b"GET, HEAD"[..]));
    }
}
