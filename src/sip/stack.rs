//! The SIP stack: rsipstack's transport and transaction layers behind our
//! own receive-path checks.
//!
//! UDP datagrams are read here, not by rsipstack, and pass
//! [`wire::inspect_from`]. Requests from networks outside `allowed_networks`
//! get 403, bad requests get the status the check chose, and garbage is
//! dropped, each with a metric and a rate-limited log line. The message the
//! check parsed goes straight to rsipstack's transaction layer.
//!
//! TCP connections from other networks are rejected at accept, and their
//! number is bounded. rsipstack's stream codec frames and parses TCP
//! messages, up to 65,535 bytes each.
//!
//! SUBSCRIBE requests are written here from the subscription manager's
//! actions, with the dialog data the manager owns (CSeq, remote tag and
//! target), and sent in rsipstack client transactions. rsipstack 0.7.14's
//! dialog layer is not used for them, because it does not re-key a client
//! subscription with the notifier's tag, so in-dialog NOTIFYs would not
//! match it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsipstack::dialog::authenticate::{Credential, handle_client_authenticate};
use rsipstack::sip::{Header, Request, Response, SipMessage, StatusCode};
use rsipstack::transaction::endpoint::{EndpointInnerRef, EndpointOption};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::{Endpoint, EndpointBuilder, Transaction};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TcpListenerConnection, TransportLayer};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::subscription::{Package, RemoteDialog, SubscribeResponse, SubscriptionId};
use super::telemetry::{self, LogLimiter};
use super::wire::{self, SourceFilter, Verdict, WireLimits};
use crate::config::{SipConfig, SipTransport};

/// Product token in User-Agent.
const USER_AGENT: &str = concat!("floorwatch/", env!("CARGO_PKG_VERSION"));

/// Largest UDP datagram read; larger ones are truncated by the kernel and
/// then rejected by the size check.
const UDP_READ_BYTES: usize = 65_536;

/// A running SIP stack.
pub(crate) struct Stack {
    endpoint: Arc<Endpoint>,
    /// Bound listeners with their real ports.
    pub local: Vec<(SipTransport, SocketAddr)>,
    proxy: crate::config::SipListener,
    identity: String,
    contact_user: String,
    credential: Option<Credential>,
}

/// The result of a client transaction for a SUBSCRIBE.
#[derive(Debug)]
pub(crate) struct SubscribeOutcome {
    pub id: SubscriptionId,
    pub package: Package,
    /// Highest CSeq sent, which a digest retry raises.
    pub cseq: u32,
    /// `None` when the transaction timed out or could not be sent.
    pub response: Option<SubscribeResponse>,
    pub unsubscribe: bool,
}

/// Dialog identifiers of a SUBSCRIBE we write.
#[derive(Debug, Clone)]
pub(crate) struct OutgoingSubscribe<'a> {
    pub aor: &'a str,
    pub package: Package,
    pub call_id: &'a str,
    pub local_tag: &'a str,
    pub cseq: u32,
    pub expires: u32,
    pub remote: &'a RemoteDialog,
}

/// A received NOTIFY, reduced to the fields the adapter reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct NotifyFields {
    pub call_id: String,
    /// To tag: the From tag of our SUBSCRIBE.
    pub local_tag: Option<String>,
    /// From tag: the notifier's tag.
    pub remote_tag: Option<String>,
    pub cseq: Option<u32>,
    pub contact: Option<String>,
    pub event: Option<String>,
    pub subscription_state: Option<String>,
    pub content_type: Option<String>,
}

// === impl Stack ===

impl Stack {
    /// Binds the listeners and starts rsipstack. The returned receiver
    /// yields every request that passed the checks, as a server transaction.
    pub async fn start(
        config: &SipConfig,
        cancel: CancellationToken,
    ) -> anyhow::Result<(Stack, mpsc::UnboundedReceiver<Transaction>)> {
        let filter = Arc::new(SourceFilter::new(&config.allowed_networks)?);
        let limits = WireLimits { max_message_bytes: config.max_message_bytes, max_body_bytes: config.max_body_bytes };
        let transport_layer = TransportLayer::new(cancel.child_token());
        let mut local = Vec::new();
        let mut udp_receivers = Vec::new();

        for listener in &config.listeners {
            match listener.transport {
                SipTransport::Udp => {
                    let socket = Arc::new(
                        tokio::net::UdpSocket::bind(listener.addr)
                            .await
                            .map_err(|e| anyhow::anyhow!("cannot bind SIP UDP listener {}: {e}", listener.addr))?,
                    );
                    let addr = socket.local_addr()?;
                    // rsipstack sends on this socket but never reads it: the
                    // receive loop below reads, checks and hands messages on.
                    let sender = SendOnlyUdpSocket { socket: socket.clone() };
                    let conn = UdpConnection::from_socket(Arc::new(sender), None, Some(cancel.child_token()))
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot start SIP UDP listener {addr}: {e}"))?;
                    transport_layer.add_transport(SipConnection::Udp(conn.clone()));
                    udp_receivers.push(UdpReceiver {
                        socket,
                        conn,
                        filter: filter.clone(),
                        limits: limits.clone(),
                        log: LogLimiter::new(Duration::from_secs(10)),
                    });
                    local.push((SipTransport::Udp, addr));
                }
                SipTransport::Tcp => {
                    // rsipstack binds the listener when the endpoint starts;
                    // probe the address now so a busy port fails the start.
                    drop(
                        std::net::TcpListener::bind(listener.addr)
                            .map_err(|e| anyhow::anyhow!("cannot bind SIP TCP listener {}: {e}", listener.addr))?,
                    );
                    let conn = TcpListenerConnection::new(listener.addr, None)
                        .await
                        .map_err(|e| anyhow::anyhow!("cannot start SIP TCP listener {}: {e}", listener.addr))?;
                    transport_layer.add_transport(SipConnection::TcpListener(conn));
                    local.push((SipTransport::Tcp, listener.addr));
                }
            }
        }

        // The whitelist runs inside the transport layer, which the endpoint
        // owns; it reaches the connection count through a weak reference set
        // once the endpoint exists.
        let endpoint_ref: Arc<std::sync::OnceLock<std::sync::Weak<rsipstack::transaction::endpoint::EndpointInner>>> =
            Arc::new(std::sync::OnceLock::new());
        let guard_ref = endpoint_ref.clone();
        let max_connections = config.max_tcp_connections;
        let accept_filter = filter.clone();
        let rejected_log = Arc::new(LogLimiter::new(Duration::from_secs(10)));
        transport_layer.set_whitelist(move |ip: IpAddr| {
            let allowed = accept_filter.allows(ip);
            let open = guard_ref
                .get()
                .and_then(std::sync::Weak::upgrade)
                .map_or(0, |inner| inner.transport_layer.connections_count());
            let rejected_log = rejected_log.clone();
            async move {
                if !allowed {
                    telemetry::dropped("source_not_allowed");
                    if let Some(suppressed) = rejected_log.allow(Instant::now()) {
                        warn!(peer = %ip, suppressed, "rejected SIP connection from a network not in sip.allowed_networks");
                    }
                    return false;
                }
                // NOTE: rsipstack's count also contains one entry per UDP peer
                // it has sent to, so the limit is slightly lower than configured.
                if open >= max_connections {
                    telemetry::dropped("connection_limit");
                    if let Some(suppressed) = rejected_log.allow(Instant::now()) {
                        warn!(peer = %ip, open, suppressed, "rejected SIP connection: sip.max_tcp_connections reached; raise it if the platform needs more");
                    }
                    return false;
                }
                true
            }
        });

        let host = config.identity.rsplit_once('@').map_or("localhost", |(_, h)| h).to_owned();
        let option = EndpointOption { callid_suffix: Some(host), ..EndpointOption::default() };
        let endpoint = EndpointBuilder::new()
            .with_user_agent(USER_AGENT)
            .with_transport_layer(transport_layer)
            .with_cancel_token(cancel.child_token())
            .with_option(option)
            .build();
        let _ = endpoint_ref.set(Arc::downgrade(&endpoint.inner));
        let incoming = endpoint.incoming_transactions().map_err(|e| anyhow::anyhow!("SIP endpoint: {e}"))?;
        let endpoint = Arc::new(endpoint);
        let serving = endpoint.clone();
        tokio::spawn(async move { serving.serve().await });
        for receiver in udp_receivers {
            tokio::spawn(receiver.run(endpoint.inner.clone(), cancel.child_token()));
        }

        let contact_user = config
            .identity
            .strip_prefix("sip:")
            .and_then(|rest| rest.split_once('@'))
            .map_or("floorwatch", |(user, _)| user)
            .to_owned();
        let credential = match (&config.auth_username, &config.auth_password) {
            (Some(username), Some(password)) => Some(Credential {
                username: username.clone(),
                password: password.clone(),
                realm: None,
                auth_username: None,
            }),
            _ => None,
        };
        let stack = Stack {
            endpoint,
            local,
            proxy: config.outbound_proxy,
            identity: config.identity.clone(),
            contact_user,
            credential,
        };
        Ok((stack, incoming))
    }

    fn inner(&self) -> EndpointInnerRef {
        self.endpoint.inner.clone()
    }

    /// Returns the listener SUBSCRIBEs go out on: the first one with the
    /// proxy's transport.
    fn local_for_proxy(&self) -> SocketAddr {
        self.local
            .iter()
            .find(|(t, _)| *t == self.proxy.transport)
            .or(self.local.first())
            .map(|(_, a)| *a)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)))
    }

    /// Writes a SUBSCRIBE. Every request goes through the outbound proxy
    /// (a Route header); inside a dialog the Request-URI is the notifier's
    /// Contact and To carries its tag.
    pub fn subscribe_request(&self, s: &OutgoingSubscribe<'_>) -> anyhow::Result<Request> {
        let local = self.local_for_proxy();
        let (via_transport, uri_param) = match self.proxy.transport {
            SipTransport::Udp => ("UDP", ""),
            SipTransport::Tcp => ("TCP", ";transport=tcp"),
        };
        let request_uri = s.remote.target.as_deref().filter(|_| s.remote.tag.is_some()).unwrap_or(s.aor);
        let to_tag = s.remote.tag.as_deref().map(|t| format!(";tag={t}")).unwrap_or_default();
        let branch = format!("z9hG4bK{}", rsipstack::transaction::random_text(16));
        let text = format!(
            "SUBSCRIBE {request_uri} SIP/2.0\r\n\
             Via: SIP/2.0/{via_transport} {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             Route: <sip:{proxy}{uri_param};lr>\r\n\
             From: <{identity}>;tag={local_tag}\r\n\
             To: <{aor}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} SUBSCRIBE\r\n\
             Contact: <sip:{user}@{local}{uri_param}>\r\n\
             Event: {event}\r\n\
             Accept: {accept}\r\n\
             Expires: {expires}\r\n\
             User-Agent: {USER_AGENT}\r\n\
             Content-Length: 0\r\n\r\n",
            proxy = self.proxy.addr,
            identity = self.identity,
            local_tag = s.local_tag,
            aor = s.aor,
            call_id = s.call_id,
            cseq = s.cseq,
            user = self.contact_user,
            event = s.package.event(),
            accept = s.package.content_type(),
            expires = s.expires,
        );
        Request::try_from(text.as_str()).map_err(|e| anyhow::anyhow!("cannot build SUBSCRIBE for {}: {e}", s.aor))
    }

    /// Sends a SUBSCRIBE in a client transaction and reports its final
    /// response (or timeout) on `done`. After a 401 or 407 it retries once
    /// with the configured credentials.
    pub fn spawn_subscribe(
        &self,
        id: SubscriptionId,
        package: Package,
        request: Request,
        unsubscribe: bool,
        done: mpsc::Sender<SubscribeOutcome>,
    ) {
        let inner = self.inner();
        let credential = self.credential.clone();
        tokio::spawn(async move {
            let cseq = header(&request.headers, "CSeq", None).and_then(leading_u32).unwrap_or(1);
            let outcome = run_client(inner, request, credential, id, cseq).await;
            let (cseq, response) = outcome;
            let _ = done.send(SubscribeOutcome { id, package, cseq, response, unsubscribe }).await;
        });
    }
}

async fn run_client(
    inner: EndpointInnerRef,
    request: Request,
    credential: Option<Credential>,
    id: SubscriptionId,
    mut cseq: u32,
) -> (u32, Option<SubscribeResponse>) {
    let key = match TransactionKey::from_request(&request, TransactionRole::Client) {
        Ok(key) => key,
        Err(e) => {
            warn!(subscription_id = %id, error = %e, "cannot key a SUBSCRIBE transaction");
            return (cseq, None);
        }
    };
    let mut tx = Transaction::new_client(key, request, inner, None);
    if let Err(e) = tx.send().await {
        warn!(subscription_id = %id, error = %e, "cannot send SUBSCRIBE");
        return (cseq, None);
    }
    let mut retried_with_credentials = false;
    loop {
        match tx.receive().await {
            Some(SipMessage::Response(response)) => {
                let status = response.status_code.code();
                if status < 200 {
                    continue;
                }
                if (status == 401 || status == 407)
                    && !retried_with_credentials
                    && let Some(credential) = &credential
                {
                    retried_with_credentials = true;
                    match handle_client_authenticate(cseq + 1, &tx, response.clone(), credential).await {
                        Ok(mut retry) => {
                            cseq += 1;
                            if let Err(e) = retry.send().await {
                                warn!(subscription_id = %id, error = %e, "cannot send authenticated SUBSCRIBE");
                                return (cseq, None);
                            }
                            tx = retry;
                            continue;
                        }
                        Err(e) => {
                            warn!(subscription_id = %id, error = %e, status, "cannot respond to the digest challenge")
                        }
                    }
                }
                return (cseq, Some(subscribe_response(&response)));
            }
            Some(SipMessage::Request(_)) => continue,
            None => return (cseq, None),
        }
    }
}

fn subscribe_response(response: &Response) -> SubscribeResponse {
    let headers = &response.headers;
    let number = |name: &str| header(headers, name, None).and_then(leading_u32);
    SubscribeResponse {
        status: response.status_code.code(),
        expires: number("Expires"),
        retry_after: number("Retry-After"),
        min_expires: number("Min-Expires"),
        remote_tag: header(headers, "To", Some("t")).and_then(tag_param),
        remote_target: header(headers, "Contact", Some("m")).and_then(name_addr_uri),
    }
}

/// Reads the fields of a NOTIFY the adapter needs.
pub(crate) fn notify_fields(request: &Request) -> NotifyFields {
    let headers = &request.headers;
    NotifyFields {
        call_id: header(headers, "Call-ID", Some("i")).unwrap_or_default().trim().to_owned(),
        local_tag: header(headers, "To", Some("t")).and_then(tag_param),
        remote_tag: header(headers, "From", Some("f")).and_then(tag_param),
        cseq: header(headers, "CSeq", None).and_then(leading_u32),
        contact: header(headers, "Contact", Some("m")).and_then(name_addr_uri),
        event: header(headers, "Event", Some("o")).map(|v| v.split(';').next().unwrap_or("").trim().to_owned()),
        subscription_state: header(headers, "Subscription-State", None).map(str::to_owned),
        content_type: header(headers, "Content-Type", Some("c"))
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase()),
    }
}

/// Sends the final response `status`, with optional extra headers, on a
/// server transaction.
pub(crate) async fn reply(tx: &mut Transaction, status: u16, headers: Vec<Header>) {
    if let Err(e) = tx.reply_with(StatusCode::from(status), headers, None).await {
        debug!(error = %e, status, "cannot send SIP response");
        return;
    }
    telemetry::response_sent(status);
}

fn header<'a>(headers: &'a rsipstack::sip::Headers, name: &str, compact: Option<&str>) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name) || compact.is_some_and(|c| h.name().eq_ignore_ascii_case(c)))
        .map(|h| h.value())
}

fn leading_u32(value: &str) -> Option<u32> {
    let digits: String = value.trim().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Returns the `tag` parameter of a From or To value.
fn tag_param(value: &str) -> Option<String> {
    let params = value.rsplit_once('>').map_or(value, |(_, p)| p);
    params.split(';').find_map(|p| {
        let (name, tag) = p.trim().split_once('=')?;
        (name.trim().eq_ignore_ascii_case("tag") && !tag.trim().is_empty()).then(|| tag.trim().to_owned())
    })
}

/// Returns the URI of a name-addr (`"x" <sip:a@b>;p`) or addr-spec
/// (`sip:a@b;p`).
fn name_addr_uri(value: &str) -> Option<String> {
    let first = value.split(',').next()?.trim();
    if let Some(start) = first.find('<') {
        let end = first[start..].find('>')? + start;
        return Some(first[start + 1..end].trim().to_owned()).filter(|u| !u.is_empty());
    }
    let uri = first.split(';').next()?.trim();
    (!uri.is_empty() && uri != "*").then(|| uri.to_owned())
}

// === UDP receive path ===

/// The reader of one UDP listener. It runs the receive checks on each
/// datagram, responds to or drops what fails them, and passes the message
/// the checks parsed straight to the transaction layer, so it is parsed once.
struct UdpReceiver {
    socket: Arc<tokio::net::UdpSocket>,
    /// The connection rsipstack sends on; replies go out through it.
    conn: UdpConnection,
    filter: Arc<SourceFilter>,
    limits: WireLimits,
    log: LogLimiter,
}

impl UdpReceiver {
    async fn run(self, endpoint: EndpointInnerRef, cancel: CancellationToken) {
        let mut buffer = vec![0; UDP_READ_BYTES];
        loop {
            let received = tokio::select! {
                _ = cancel.cancelled() => return,
                received = self.socket.recv_from(&mut buffer) => received,
            };
            let (len, from) = match received {
                Ok(received) => received,
                Err(e) => {
                    // ICMP errors of earlier sends surface here on Linux.
                    debug!(error = %e, "SIP UDP receive failed");
                    continue;
                }
            };
            let data = &buffer[..len];
            if data.iter().all(u8::is_ascii_whitespace) {
                continue; // keep-alive
            }
            match wire::inspect_from(from.ip(), &self.filter, data, wire::Transport::Udp, &self.limits) {
                Verdict::Process(accepted) => self.deliver(&endpoint, accepted.message, from).await,
                Verdict::Respond(rejection) => self.reject(&rejection, from).await,
                Verdict::Drop { log_reason } => {
                    telemetry::dropped("invalid_message");
                    telemetry::parse_error("dropped_message");
                    if let Some(suppressed) = self.log.allow(Instant::now()) {
                        warn!(peer = %from, reason = %log_reason, suppressed, "dropped SIP message");
                    }
                }
            }
        }
    }

    async fn deliver(&self, endpoint: &EndpointInnerRef, message: SipMessage, from: SocketAddr) {
        let message = match SipConnection::update_msg_received(message, from, rsipstack::sip::Transport::Udp) {
            Ok(message) => message,
            Err(e) => {
                telemetry::dropped("invalid_via");
                if let Some(suppressed) = self.log.allow(Instant::now()) {
                    warn!(peer = %from, error = %e, suppressed, "dropped SIP request: cannot record its source in Via");
                }
                return;
            }
        };
        let source = SipAddr { r#type: Some(rsipstack::sip::Transport::Udp), addr: from.into() };
        if let Err(e) = endpoint.on_received_message(message, SipConnection::Udp(self.conn.clone()), &source).await {
            debug!(peer = %from, error = %e, "SIP transaction layer rejected a message");
        }
    }

    async fn reject(&self, rejection: &wire::Rejection, from: SocketAddr) {
        let tag = rsipstack::transaction::random_text(10);
        let bytes = rejection.to_response_bytes(&tag);
        if let Err(e) = self.socket.send_to(&bytes, from).await {
            debug!(peer = %from, error = %e, "cannot send SIP error response");
        } else {
            telemetry::response_sent(rejection.status);
        }
        telemetry::parse_error(if rejection.status == 403 { "forbidden_source" } else { "bad_request" });
        if let Some(suppressed) = self.log.allow(Instant::now()) {
            warn!(peer = %from, status = rejection.status, reason = %rejection.log_reason, suppressed, "rejected SIP request");
        }
    }
}

/// The socket rsipstack's UDP connection sends on. Its receive never
/// completes, because [`UdpReceiver`] reads the socket.
struct SendOnlyUdpSocket {
    socket: Arc<tokio::net::UdpSocket>,
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for SendOnlyUdpSocket {
    async fn recv_from(&self, _buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        std::future::pending().await
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_param_reads_tag_after_uri() {
        assert_eq!(tag_param("<sip:a@example.com;tag=x>;tag=abc").as_deref(), Some("abc"));
    }

    #[test]
    fn name_addr_uri_reads_both_forms() {
        assert_eq!(name_addr_uri("\"A\" <sip:a@192.0.2.1:5060>;expires=3").as_deref(), Some("sip:a@192.0.2.1:5060"));
        assert_eq!(name_addr_uri("sip:a@192.0.2.1;transport=tcp").as_deref(), Some("sip:a@192.0.2.1"));
    }
}
