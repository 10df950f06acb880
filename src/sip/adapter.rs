//! The SIP ingest adapter task: keeps the subscriptions of every agent in
//! the directory alive, turns accepted NOTIFY bodies into agent events for
//! the ingest pipeline, and reports each agent's SIP feed health.
//!
//! One task owns the subscription manager, the per-AOR state and the
//! dialog table, so none of them needs a lock. Client transactions run in
//! their own tasks and report back on a channel. A NOTIFY that changes the
//! agent's state gets its 200 only after its events are committed to the
//! journal, so a 200 means the change survives a crash.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rsipstack::sip::{Header, Method};
use rsipstack::transaction::Transaction;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::agent_state::{AgentSipState, SipStateConfig, VersionCheck};
use super::body::{self, BodyError, Limits};
use super::stack::{self, OutgoingSubscribe, Stack, SubscribeOutcome};
use super::subscription::{
    Action, ManagerConfig, ManagerEvent, Notify, NotifyVerdict, Package, SubState, SubscriptionId, SubscriptionManager,
};
use super::telemetry::{self, LogLimiter};
use crate::config::{SipConfig, SipTransport};
use crate::daemon::clock::Clock;
use crate::daemon::directory::{Directory, SharedDirectory};
use crate::domain::{AgentEvent, EventKind, SourceKind};
use crate::ingest::{IngestHandle, SubmitOutcome};

/// How often the adapter looks for directory changes, re-evaluates
/// time-bound presence and updates the subscription gauge.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// How long a replaced dialog stays known, so its late NOTIFYs get 200 from
/// the manager's linger rather than 481 from us.
const RETIRED_DIALOG_LINGER: Duration = Duration::from_secs(64);

/// Most requests handled before their events are flushed to the pipeline.
const MAX_REQUESTS_PER_FLUSH: usize = 256;

/// How long shutdown waits for the responses to the unsubscribes.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// The running adapter.
pub struct SipAdapter {
    /// Bound listeners with their real ports.
    pub local: Vec<(SipTransport, SocketAddr)>,
    join: JoinHandle<()>,
}

struct DialogEntry {
    id: SubscriptionId,
    agent: Arc<str>,
    aor: Arc<str>,
    package: Package,
    call_id: String,
    local_tag: String,
    retired_at: Option<Instant>,
}

struct Adapter {
    stack: Stack,
    manager: SubscriptionManager,
    packages: Vec<Package>,
    host: String,
    /// (Call-ID, our tag) → dialog.
    dialogs: HashMap<(String, String), DialogEntry>,
    by_id: HashMap<SubscriptionId, (String, String)>,
    current: HashMap<(Arc<str>, Arc<str>, Package), SubscriptionId>,
    states: HashMap<(Arc<str>, Arc<str>), AgentSipState>,
    state_config: SipStateConfig,
    body_limits: Limits,
    ingest: IngestHandle,
    directory: SharedDirectory,
    seen_directory: Option<Arc<Directory>>,
    clock: Clock,
    outcomes_tx: mpsc::Sender<SubscribeOutcome>,
    /// Feed health changes, reported in order by one task.
    health_tx: mpsc::UnboundedSender<(String, bool, Timestamp)>,
    /// Distinguishes event ids of this run from earlier runs.
    run_nonce: String,
    refresh_counter: u64,
    /// Events of NOTIFYs handled since the last flush, and the NOTIFYs that
    /// get their response once those events are committed.
    pending_events: Vec<AgentEvent>,
    pending_replies: Vec<(Transaction, Package)>,
    log: LogLimiter,
}

// === impl SipAdapter ===

impl SipAdapter {
    /// Binds the listeners and starts the adapter. It stops when `shutdown`
    /// is cancelled, after unsubscribing.
    pub async fn start(
        config: &SipConfig,
        ingest: IngestHandle,
        directory: SharedDirectory,
        clock: Clock,
        shutdown: CancellationToken,
    ) -> anyhow::Result<SipAdapter> {
        telemetry::describe_metrics();
        let stack_cancel = CancellationToken::new();
        let (stack, incoming) = Stack::start(config, stack_cancel.clone()).await?;
        let local = stack.local.clone();

        let packages: Vec<Package> = config
            .packages
            .iter()
            .filter_map(|p| match p.as_str() {
                "dialog" => Some(Package::Dialog),
                "presence" => Some(Package::Presence),
                "reg" => Some(Package::Reg),
                _ => None,
            })
            .collect();
        let manager_config = ManagerConfig {
            packages: packages.clone(),
            requested_expires: config.expires_seconds,
            start_spread: Duration::from_secs(config.start_spread_seconds),
            health_grace: Duration::from_secs(config.health_grace_seconds),
            max_subscriptions_per_agent: config.max_subscriptions_per_agent,
            ..ManagerConfig::default()
        };
        let seed = rand::random::<u64>();
        let manager = SubscriptionManager::new(manager_config, seed)
            .map_err(|e| anyhow::anyhow!("SIP subscription settings: {e}"))?;
        let state_config = SipStateConfig {
            presence_codes: config.presence_codes.clone(),
            expired_is_logout: config.expired_is_logout,
            max_items: config.max_items,
            ..SipStateConfig::default()
        };
        let body_limits = Limits {
            max_body_bytes: config.max_body_bytes,
            max_depth: config.max_xml_depth,
            max_items: config.max_items,
        };
        let (outcomes_tx, outcomes_rx) = mpsc::channel(1024);
        let (health_tx, health_rx) = mpsc::unbounded_channel();
        tokio::spawn(report_health(ingest.clone(), health_rx));
        let host = config.identity.rsplit_once('@').map_or("localhost", |(_, h)| h).to_owned();

        let adapter = Adapter {
            stack,
            manager,
            packages,
            host,
            dialogs: HashMap::new(),
            by_id: HashMap::new(),
            current: HashMap::new(),
            states: HashMap::new(),
            state_config,
            body_limits,
            ingest,
            directory,
            seen_directory: None,
            clock,
            outcomes_tx,
            health_tx,
            run_nonce: rsipstack::transaction::random_text(8),
            refresh_counter: 0,
            pending_events: Vec::new(),
            pending_replies: Vec::new(),
            log: LogLimiter::new(Duration::from_secs(10)),
        };
        for (transport, addr) in &local {
            info!(%addr, transport = ?transport, "SIP listener bound");
        }
        let join = tokio::spawn(async move {
            adapter.run(incoming, outcomes_rx, shutdown).await;
            stack_cancel.cancel();
        });
        Ok(SipAdapter { local, join })
    }

    /// Waits until the adapter has unsubscribed and stopped.
    pub async fn join(self) {
        if let Err(e) = self.join.await {
            warn!(error = %e, "SIP adapter task failed");
        }
    }
}

// === impl Adapter ===

impl Adapter {
    async fn run(
        mut self,
        mut incoming: mpsc::UnboundedReceiver<Transaction>,
        mut outcomes: mpsc::Receiver<SubscribeOutcome>,
        shutdown: CancellationToken,
    ) {
        info!(packages = ?self.packages, "SIP adapter started");
        self.housekeeping(Instant::now()).await;
        let mut next_housekeeping = Instant::now() + HOUSEKEEPING;
        let mut stop_by: Option<Instant> = None;

        loop {
            let now = Instant::now();
            self.drain_manager(now).await;
            if let Some(deadline) = stop_by
                && (self.manager.is_idle() || now >= deadline)
            {
                break;
            }
            let mut wake = self.manager.next_timeout().unwrap_or(next_housekeeping).min(next_housekeeping);
            if let Some(deadline) = stop_by {
                wake = wake.min(deadline);
            }

            tokio::select! {
                _ = shutdown.cancelled(), if stop_by.is_none() => {
                    info!("SIP adapter unsubscribing");
                    self.manager.shutdown(Instant::now());
                    stop_by = Some(Instant::now() + SHUTDOWN_WAIT);
                }
                request = incoming.recv() => match request {
                    Some(tx) => {
                        // Requests that queued up meanwhile are handled
                        // together, and their events go to the journal in
                        // one commit request.
                        self.on_request(tx).await;
                        for _ in 1..MAX_REQUESTS_PER_FLUSH {
                            match incoming.try_recv() {
                                Ok(tx) => self.on_request(tx).await,
                                Err(_) => break,
                            }
                        }
                        self.flush().await;
                    }
                    None => {
                        warn!("SIP stack stopped; SIP adapter stops");
                        break;
                    }
                },
                Some(outcome) = outcomes.recv() => self.on_outcome(outcome),
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    self.manager.handle_timeout(now);
                    if now >= next_housekeeping {
                        if stop_by.is_none() {
                            self.housekeeping(now).await;
                        }
                        next_housekeeping = now + HOUSEKEEPING;
                    }
                }
            }
        }
        info!("SIP adapter stopped");
    }

    /// Sends the manager's requests and reports its events.
    async fn drain_manager(&mut self, now: Instant) {
        while let Some(action) = self.manager.poll_action(now) {
            self.send(action);
        }
        while let Some(event) = self.manager.poll_event() {
            match event {
                ManagerEvent::Health { agent, healthy } => {
                    if healthy {
                        info!(agent_id = %agent, "SIP feed of agent healthy");
                    } else {
                        warn!(agent_id = %agent, "SIP feed of agent down: its state shows unknown");
                    }
                    // A dropped receiver means the daemon is stopping.
                    let _ = self.health_tx.send((source_name(&agent), healthy, self.clock.now()));
                }
                ManagerEvent::Failed { agent, aor, package, reason } => {
                    warn!(agent_id = %agent, %aor, package = package.event(), %reason, "SIP subscription stopped");
                }
            }
        }
    }

    fn send(&mut self, action: Action) {
        let (id, agent, aor, package, expires, cseq, remote, new_dialog, unsubscribe) = match action {
            Action::SendSubscribe { id, agent, aor, package, expires, new_dialog, cseq, remote } => {
                (id, agent, aor, package, expires, cseq, remote, new_dialog, false)
            }
            Action::SendUnsubscribe { id, agent, aor, package, cseq, remote } => {
                (id, agent, aor, package, 0, cseq, remote, false, true)
            }
        };
        if new_dialog {
            let call_id = format!("{}@{}", rsipstack::transaction::random_text(20), self.host);
            let local_tag = rsipstack::transaction::random_text(12);
            let key = (call_id.clone(), local_tag.clone());
            if let Some(old) = self.current.insert((agent.clone(), aor.clone(), package), id)
                && let Some(old_key) = self.by_id.get(&old)
                && let Some(entry) = self.dialogs.get_mut(old_key)
            {
                entry.retired_at = Some(Instant::now());
            }
            self.dialogs.insert(
                key.clone(),
                DialogEntry {
                    id,
                    agent: agent.clone(),
                    aor: aor.clone(),
                    package,
                    call_id,
                    local_tag,
                    retired_at: None,
                },
            );
            self.by_id.insert(id, key);
            if let Some(state) = self.states.get_mut(&(agent.clone(), aor.clone())) {
                state.reset_version(body_package(package));
            }
        }
        let Some(entry) = self.by_id.get(&id).and_then(|key| self.dialogs.get_mut(key)) else {
            debug!(subscription_id = %id, "no dialog for a SUBSCRIBE; dropped");
            return;
        };
        if unsubscribe {
            // The dialog stays known for the notifier's final NOTIFY.
            entry.retired_at = Some(Instant::now());
            self.current.remove(&(agent.clone(), aor.clone(), package));
        }
        let outgoing = OutgoingSubscribe {
            aor: &aor,
            package,
            call_id: &entry.call_id,
            local_tag: &entry.local_tag,
            cseq,
            expires,
            remote: &remote,
        };
        match self.stack.subscribe_request(&outgoing) {
            Ok(request) => {
                debug!(agent_id = %agent, %aor, package = package.event(), expires, cseq, "sending SUBSCRIBE");
                self.stack.spawn_subscribe(id, package, request, unsubscribe, self.outcomes_tx.clone());
            }
            Err(e) => {
                warn!(agent_id = %agent, %aor, error = %e, "cannot write SUBSCRIBE");
                if !unsubscribe {
                    self.manager.on_timeout(Instant::now(), id);
                }
            }
        }
    }

    fn on_outcome(&mut self, outcome: SubscribeOutcome) {
        let now = Instant::now();
        self.manager.note_cseq(outcome.id, outcome.cseq);
        match outcome.response {
            Some(response) => {
                if !(200..300).contains(&response.status) && !outcome.unsubscribe {
                    telemetry::refresh_failure(outcome.package, response.status.to_string());
                    debug!(subscription_id = %outcome.id, status = response.status, "SUBSCRIBE failed");
                }
                self.manager.on_response(now, outcome.id, response);
            }
            None => {
                if !outcome.unsubscribe {
                    telemetry::refresh_failure(outcome.package, "timeout".into());
                }
                debug!(subscription_id = %outcome.id, "SUBSCRIBE timed out");
                self.manager.on_timeout(now, outcome.id);
            }
        }
    }

    async fn on_request(&mut self, mut tx: Transaction) {
        match tx.original.method {
            Method::Notify => self.on_notify(tx).await,
            Method::Options => {
                let allow = Header::Other("Allow".into(), "NOTIFY, OPTIONS".into());
                stack::reply(&mut tx, 200, vec![allow]).await;
            }
            Method::Ack => {}
            _ => {
                let allow = Header::Other("Allow".into(), "NOTIFY, OPTIONS".into());
                stack::reply(&mut tx, 405, vec![allow]).await;
            }
        }
    }

    async fn on_notify(&mut self, mut tx: Transaction) {
        let now = Instant::now();
        let mut fields = stack::notify_fields(&tx.original);
        let key = (std::mem::take(&mut fields.call_id), fields.local_tag.take().unwrap_or_default());
        let Some(entry) = self.dialogs.get(&key) else {
            telemetry::notify("unknown", 481);
            debug!(call_id = %key.0, "NOTIFY for no known subscription; 481");
            stack::reply(&mut tx, 481, Vec::new()).await;
            return;
        };
        let package = entry.package;
        let (id, agent, aor) = (entry.id, entry.agent.clone(), entry.aor.clone());

        if fields.event.as_deref().is_none_or(|e| !e.eq_ignore_ascii_case(package.event())) {
            telemetry::notify(package.event(), 489);
            self.warn_bad(&agent, "NOTIFY Event header does not match the subscription's package");
            stack::reply(&mut tx, 489, vec![warning("Event header must be ".to_owned() + package.event())]).await;
            return;
        }
        let (Some(cseq), Some(state)) = (fields.cseq, fields.subscription_state.as_deref().and_then(SubState::parse))
        else {
            telemetry::notify(package.event(), 400);
            telemetry::parse_error("notify_headers");
            self.warn_bad(&agent, "NOTIFY without a valid CSeq or Subscription-State");
            stack::reply(&mut tx, 400, vec![warning("missing or invalid Subscription-State or CSeq".into())]).await;
            return;
        };

        let notify = Notify { cseq, remote_tag: fields.remote_tag.take(), remote_target: fields.contact.take(), state };
        let verdict = self.manager.on_notify(now, id, notify);
        if verdict != NotifyVerdict::Accept {
            let status = verdict.status_code();
            telemetry::notify(package.event(), status);
            stack::reply(&mut tx, status, Vec::new()).await;
            return;
        }

        let body = &tx.original.body;
        if body.iter().all(u8::is_ascii_whitespace) {
            telemetry::notify(package.event(), 200);
            stack::reply(&mut tx, 200, Vec::new()).await;
            return;
        }
        if fields.content_type.as_deref() != Some(package.content_type()) {
            telemetry::notify(package.event(), 415);
            telemetry::parse_error("content_type");
            self.warn_bad(&agent, "NOTIFY body type does not match the package");
            let accept = Header::Other("Accept".into(), package.content_type().into());
            stack::reply(&mut tx, 415, vec![accept]).await;
            return;
        }

        let at = self.clock.now();
        let config = &self.state_config;
        let state = self
            .states
            .entry((agent.clone(), aor.clone()))
            .or_insert_with(|| AgentSipState::new(aor.as_ref(), config.clone()));
        let update = match package {
            Package::Dialog => body::parse_dialog_info(body, &self.body_limits)
                .map_err(BadBody::Parse)
                .and_then(|doc| state.apply_dialog_info(doc, at).map_err(BadBody::State)),
            Package::Presence => body::parse_pidf(body, &self.body_limits)
                .map_err(BadBody::Parse)
                .map(|doc| state.apply_presence(doc, at)),
            Package::Reg => body::parse_reginfo(body, &self.body_limits)
                .map_err(BadBody::Parse)
                .and_then(|doc| state.apply_reginfo(doc, at).map_err(BadBody::State)),
        };
        let update = match update {
            Ok(update) => update,
            Err(bad) => {
                let (kind, text) = match &bad {
                    BadBody::Parse(e) => (error_kind(e), e.to_string()),
                    BadBody::State(e) => ("state_limit", e.to_string()),
                };
                telemetry::parse_error(kind);
                telemetry::notify(package.event(), 400);
                self.warn_bad(&agent, &text);
                stack::reply(&mut tx, 400, vec![warning(text)]).await;
                return;
            }
        };
        match update.version {
            VersionCheck::Stale { last } => {
                debug!(agent_id = %agent, %aor, last, "stale NOTIFY body ignored");
            }
            VersionCheck::Gap => {
                // A refresh makes the notifier send the full state.
                debug!(agent_id = %agent, %aor, "NOTIFY body version gap; refreshing the subscription");
                self.manager.refresh_now(now, id);
            }
            VersionCheck::InOrder => {}
        }
        if update.events.is_empty() {
            telemetry::notify(package.event(), 200);
            stack::reply(&mut tx, 200, Vec::new()).await;
            return;
        }
        telemetry::events(package, update.events.len());
        let events = self.agent_events(&agent, &format!("{}:{cseq}", key.0), update.events, at);
        self.pending_events.extend(events);
        self.pending_replies.push((tx, package));
    }

    /// Sends the pending events to the pipeline as one request and answers
    /// their NOTIFYs once it is committed.
    async fn flush(&mut self) {
        if self.pending_events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.pending_events);
        let replies = std::mem::take(&mut self.pending_replies);
        self.submit(events, replies).await;
    }

    /// Queues events for the pipeline and responds to `replies` after the
    /// commit.
    async fn submit(&mut self, events: Vec<AgentEvent>, replies: Vec<(Transaction, Package)>) {
        let pending = self.ingest.enqueue(events).await;
        tokio::spawn(async move {
            let committed = match pending {
                Ok(answer) => answer.await.ok().and_then(Result::ok),
                Err(_) => None,
            };
            let status = match &committed {
                Some(outcomes) => {
                    for outcome in outcomes {
                        if let SubmitOutcome::Rejected { field, message } = outcome {
                            warn!(field, message, "SIP agent event rejected by the pipeline");
                        }
                    }
                    200
                }
                None => 500,
            };
            for (mut tx, package) in replies {
                telemetry::notify(package.event(), status);
                stack::reply(&mut tx, status, Vec::new()).await;
            }
        });
    }

    fn agent_events(&self, agent: &str, id_prefix: &str, kinds: Vec<EventKind>, at: Timestamp) -> Vec<AgentEvent> {
        let source = source_name(agent);
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| AgentEvent {
                source_kind: SourceKind::Sip,
                source: source.clone(),
                source_event_id: format!("{id_prefix}:{i}"),
                agent_ref: agent.to_owned(),
                source_time: at,
                received_at: at,
                kind,
            })
            .collect()
    }

    async fn housekeeping(&mut self, now: Instant) {
        let directory = self.directory.load();
        if self.seen_directory.as_ref().is_none_or(|seen| !Arc::ptr_eq(seen, &directory)) {
            let targets = sip_targets(&directory);
            info!(agents = directory.len(), targets = targets.len(), "SIP subscription targets updated");
            let listed: std::collections::HashSet<(Arc<str>, Arc<str>)> =
                targets.iter().map(|(a, o)| (Arc::from(a.as_str()), Arc::from(o.as_str()))).collect();
            self.states.retain(|key, _| listed.contains(key));
            self.manager.set_targets(now, targets);
            self.seen_directory = Some(directory);
        }

        let at = self.clock.now();
        let mut pending = Vec::new();
        for ((agent, _), state) in &mut self.states {
            let kinds = state.refresh(at);
            if !kinds.is_empty() {
                pending.push((agent.clone(), kinds));
            }
        }
        for (agent, kinds) in pending {
            self.refresh_counter += 1;
            let prefix = format!("refresh-{}-{}", self.run_nonce, self.refresh_counter);
            let events = self.agent_events(&agent, &prefix, kinds, at);
            self.submit(events, Vec::new()).await;
        }

        let by_id = &mut self.by_id;
        self.dialogs.retain(|_, entry| {
            let keep = entry.retired_at.is_none_or(|at| now.duration_since(at) < RETIRED_DIALOG_LINGER);
            if !keep {
                by_id.remove(&entry.id);
            }
            keep
        });
        telemetry::subscriptions(&self.manager.counts(), &self.packages);
    }

    fn warn_bad(&self, agent: &str, problem: &str) {
        if let Some(suppressed) = self.log.allow(Instant::now()) {
            warn!(agent_id = %agent, problem, suppressed, "bad NOTIFY");
        }
    }
}

/// Reports feed health changes to the pipeline one after another, so a
/// quick down-and-up cannot arrive in the wrong order.
async fn report_health(ingest: IngestHandle, mut changes: mpsc::UnboundedReceiver<(String, bool, Timestamp)>) {
    while let Some((source, healthy, at)) = changes.recv().await {
        if let Err(e) = ingest.source_health(&source, SourceKind::Sip, healthy, at).await {
            warn!(error = %e, source, healthy, "cannot report SIP feed health");
        }
    }
}

enum BadBody {
    Parse(BodyError),
    State(super::agent_state::StateError),
}

/// Returns the feed name an agent's SIP events carry, so each agent's feed
/// health follows its own subscriptions.
pub fn source_name(agent: &str) -> String {
    format!("sip/{agent}")
}

/// Returns every (agent id, AOR) pair: the `sip:` platform ids of each agent.
pub fn sip_targets(directory: &Directory) -> Vec<(String, String)> {
    let mut targets = Vec::new();
    for agent in directory.agents() {
        for id in &agent.platform_ids {
            if id.len() > 4 && id[..4].eq_ignore_ascii_case("sip:") {
                targets.push((agent.id.to_string(), id.clone()));
            }
        }
    }
    targets.sort();
    targets
}

fn body_package(package: Package) -> body::Package {
    match package {
        Package::Dialog => body::Package::DialogInfo,
        Package::Presence => body::Package::Pidf,
        Package::Reg => body::Package::RegInfo,
    }
}

fn error_kind(error: &BodyError) -> &'static str {
    match error {
        BodyError::TooLarge { .. } => "body_too_large",
        BodyError::TooDeep { .. } => "xml_too_deep",
        BodyError::TooManyItems { .. } => "too_many_items",
        BodyError::NotUtf8 { .. } => "not_utf8",
        BodyError::Malformed { .. } => "malformed_xml",
        BodyError::Empty { .. } => "empty_body",
        _ => "invalid_document",
    }
}

/// Builds a Warning header (RFC 3261 section 20.43) that names the problem
/// for the notifier, in at most 200 characters.
fn warning(text: String) -> Header {
    let mut text: String = text.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).take(200).collect();
    if text.is_empty() {
        text.push_str("rejected");
    }
    Header::Other("Warning".into(), format!("399 floorwatch \"{text}\""))
}
