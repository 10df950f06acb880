//! The subscription table, its timers and the per-agent feed health.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::{debug, info, warn};

use super::{
    Action, ConfigError, FailureReason, ManagerConfig, ManagerEvent, Notify, NotifyVerdict, Package, Reason,
    RemoteDialog, SubStateValue, SubscribeResponse, SubscriptionId,
};

/// Maximum expiry taken from a 423 Min-Expires, one day. It bounds the timer
/// arithmetic against absurd header values.
const MAX_EXPIRES_SECS: u32 = 86_400;

/// Final responses after which another SUBSCRIBE cannot succeed until the
/// platform's configuration changes: forbidden, not found, method not
/// allowed, gone, unsupported URI scheme, address incomplete, bad event, not
/// implemented, decline and does not exist anywhere.
const PERMANENT_STATUSES: [u16; 10] = [403, 404, 405, 410, 416, 484, 489, 501, 603, 604];

/// Final responses to a refresh that end the dialog but after which a new
/// dialog may succeed: temporarily unavailable, loop detected, too many hops
/// and ambiguous. 481 and 408 have their own rules.
const DIALOG_ENDING_STATUSES: [u16; 4] = [480, 482, 483, 485];

/// Agent, AOR and package of one subscription. The BTree order keeps every
/// agent's subscriptions together and makes the output order deterministic.
type SlotKey = (Arc<str>, Arc<str>, Package);

/// One target and its current subscription dialog.
struct Slot {
    /// The current dialog's id; `None` while no dialog exists or is being
    /// created (waiting or failed).
    id: Option<SubscriptionId>,
    phase: Phase,
    /// CSeq of the last SUBSCRIBE sent in the current dialog.
    cseq: u32,
    remote: RemoteDialog,
    /// CSeq of the last accepted NOTIFY in the current dialog.
    last_notify_cseq: Option<u32>,
    /// When the notifier drops the subscription unless refreshed, from the
    /// last 2xx or NOTIFY expires.
    expires_at: Option<Instant>,
    /// Expires value to request, in seconds; a 423 raises it.
    request_expires: u32,
    /// Consecutive failures; reset when a NOTIFY reports the subscription
    /// active.
    failures: u32,
    /// A refresh was requested while the SUBSCRIBE was still out; it goes
    /// out as soon as the subscription is accepted.
    refresh_requested: bool,
    health: SlotHealth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No dialog: a SUBSCRIBE creating one goes out at `at`.
    Waiting { at: Instant },
    /// A SUBSCRIBE is out; without a final response by `deadline` it counts
    /// as timed out.
    Requesting { refresh: bool, deadline: Instant },
    /// The notifier accepted; the next refresh goes out at `refresh_at`.
    Established { refresh_at: Instant },
    /// Stopped; tried again at `retry_at` if `failed_retry` is configured.
    Failed { retry_at: Option<Instant> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotHealth {
    /// The last NOTIFY of the current dialog reported `active`.
    Up,
    /// Not known to be active; the agent is reported unhealthy from
    /// `report_at` on.
    Down { report_at: Instant, reported: bool },
}

/// The delay rule for re-creating a broken subscription.
#[derive(Debug, Clone, Copy)]
enum Retry {
    /// At once after the first failure, with backoff after repeated ones, so a
    /// notifier that ends every new subscription cannot cause a SUBSCRIBE
    /// storm.
    // NOTE: nothing paces first failures across targets, so a notifier
    // restart that deactivates every subscription gets all SUBSCRIBEs at once.
    Now,
    /// After the notifier's Retry-After if given, else after backoff.
    Backoff { retry_after: Option<u32> },
}

/// A subscription whose unsubscribe went out; kept so that the notifier's
/// final NOTIFY gets a 200 and not a 481.
struct Ending {
    until: Instant,
}

#[derive(Debug, Default)]
struct AgentEntry {
    /// Some of the agent's targets did not fit the subscription limits.
    over_limit: bool,
    /// The health last reported; `None` before the first report.
    reported: Option<bool>,
}

/// Keeps one RFC 6665 subscription alive per target (agent, AOR) and event
/// package.
///
/// Invariant: every target has exactly one slot, and at most one SUBSCRIBE
/// of its is out at a time. Each dialog has its own [`SubscriptionId`], so a
/// response or NOTIFY for a dialog the manager has given up is recognized
/// and ignored or rejected with 481.
///
/// The caller's duties:
/// - feed every final response ([`on_response`](Self::on_response)),
///   transaction timeout ([`on_timeout`](Self::on_timeout)) and NOTIFY
///   ([`on_notify`](Self::on_notify)) of a dialog it created for an id,
///   resolving a NOTIFY to the id by Call-ID, local tag and Event header; a
///   NOTIFY it cannot resolve it answers 481 itself;
/// - answer digest challenges itself and pass a 401 or 407 on only when it
///   cannot answer them;
/// - drain [`poll_action`](Self::poll_action) until `None`, then
///   [`poll_event`](Self::poll_event), then sleep until
///   [`next_timeout`](Self::next_timeout) or the next input.
pub struct SubscriptionManager {
    config: ManagerConfig,
    /// Jitter of the backoff; seeded so that tests and replays repeat.
    rng: StdRng,
    slots: BTreeMap<SlotKey, Slot>,
    /// Current dialog id of each slot that has one.
    by_id: HashMap<SubscriptionId, SlotKey>,
    /// Bounded by `max_subscriptions`; past it, unsubscribed dialogs are not
    /// kept and their final NOTIFY gets a 481, which is harmless.
    ending: HashMap<SubscriptionId, Ending>,
    agents: BTreeMap<Arc<str>, AgentEntry>,
    next_id: u64,
    actions: VecDeque<Action>,
    events: VecDeque<ManagerEvent>,
    shutting_down: bool,
}

// === impl Slot ===

impl Slot {
    fn new(start_at: Instant, request_expires: u32, report_at: Instant) -> Slot {
        Slot {
            id: None,
            phase: Phase::Waiting { at: start_at },
            cseq: 0,
            remote: RemoteDialog::default(),
            last_notify_cseq: None,
            expires_at: None,
            request_expires,
            failures: 0,
            refresh_requested: false,
            health: SlotHealth::Down { report_at, reported: false },
        }
    }

    /// Returns the earliest instant at which this slot has work to do.
    fn deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Waiting { at } => Some(at),
            Phase::Requesting { deadline, .. } => Some(deadline),
            Phase::Established { refresh_at } => Some(refresh_at),
            Phase::Failed { retry_at } => retry_at,
        };

        let health = match self.health {
            SlotHealth::Down { report_at, reported: false } => Some(report_at),
            _ => None,
        };

        match (phase, health) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Marks the slot down, keeping an earlier report instant.
    fn mark_down(&mut self, report_at: Instant) {
        self.health = match self.health {
            SlotHealth::Up => SlotHealth::Down { report_at, reported: false },
            SlotHealth::Down { report_at: earlier, reported } => {
                SlotHealth::Down { report_at: earlier.min(report_at), reported }
            }
        };
    }
}

// === impl SubscriptionManager ===

impl SubscriptionManager {
    /// Creates a manager with no targets. `seed` seeds the backoff jitter.
    pub fn new(config: ManagerConfig, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;

        Ok(SubscriptionManager {
            config,
            rng: StdRng::seed_from_u64(seed),
            slots: BTreeMap::new(),
            by_id: HashMap::new(),
            ending: HashMap::new(),
            agents: BTreeMap::new(),
            next_id: 1,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            shutting_down: false,
        })
    }

    /// Replaces the set of targets, one `(agent id, AOR)` pair each; an agent
    /// may have several AORs, and duplicates count once.
    ///
    /// - A new target gets one subscription per configured package. The
    ///   initial SUBSCRIBEs of all new targets are spaced evenly over
    ///   `start_spread`.
    /// - A target no longer listed loses its subscriptions: an established
    ///   dialog gets an unsubscribe (Expires: 0), others are dropped.
    /// - A target beyond `max_subscriptions` or `max_subscriptions_per_agent`
    ///   gets no subscription and a [`ManagerEvent::Failed`], on every call
    ///   while it does not fit, and its agent is reported unhealthy.
    ///
    /// Ignored after [`shutdown`](Self::shutdown).
    pub fn set_targets(&mut self, now: Instant, targets: Vec<(String, String)>) {
        if self.shutting_down {
            debug!("ignoring new SIP subscription targets during shutdown");
            return;
        }

        let listed: BTreeSet<(Arc<str>, Arc<str>)> =
            targets.into_iter().map(|(agent, aor)| (Arc::from(agent), Arc::from(aor))).collect();

        let removed: Vec<SlotKey> = self
            .slots
            .keys()
            .filter(|(agent, aor, _)| !listed.contains(&(agent.clone(), aor.clone())))
            .cloned()
            .collect();
        for key in &removed {
            self.remove_slot(now, key);
        }

        let listed_agents: BTreeSet<Arc<str>> = listed.iter().map(|(agent, _)| agent.clone()).collect();
        self.agents.retain(|agent, _| listed_agents.contains(agent));
        for agent in &listed_agents {
            self.agents.entry(agent.clone()).or_default().over_limit = false;
        }

        let new_keys = self.admit_targets(&listed);
        let added = new_keys.len();
        for (index, key) in new_keys.into_iter().enumerate() {
            let offset = self.config.start_spread.mul_f64(index as f64 / added as f64);
            let start_at = now + offset;
            let report_at = start_at + self.config.health_grace;
            let slot = Slot::new(start_at, self.config.requested_expires, report_at);
            self.slots.insert(key, slot);
        }

        if added > 0 || !removed.is_empty() {
            info!(
                added,
                removed = removed.len(),
                subscriptions = self.slots.len(),
                "following the roster with SIP subscriptions"
            );
        }

        for agent in &listed_agents {
            self.update_health(now, agent);
        }
    }

    /// Applies a final response to the SUBSCRIBE last sent for `id`.
    ///
    /// - 2xx: the subscription is accepted for the granted Expires (the
    ///   requested value if missing or larger). A new dialog counts as down
    ///   until a NOTIFY reports `active`.
    /// - 423 with a larger Min-Expires: sent again at once with that value.
    /// - 481 to a refresh: the notifier lost the subscription, so the agent's
    ///   state may have been stale for a while. A new dialog is created at
    ///   once, and the agent is reported unhealthy until a NOTIFY arrives.
    /// - 408: the dialog ends (RFC 3261 section 12.2.1.2); a new one is
    ///   created after backoff.
    /// - 403, 404, 405, 410, 416, 484, 489, 501, 603, 604: the subscription
    ///   stops with [`ManagerEvent::Failed`].
    /// - 480, 482, 483, 485 to a refresh: a new dialog after backoff.
    /// - Any other failure to a refresh, including a 401 or 407 the caller
    ///   could not answer: the subscription stays valid until it expires,
    ///   and the refresh is tried again after backoff or Retry-After.
    /// - Any other failure to an initial SUBSCRIBE: a new one after backoff
    ///   or Retry-After.
    ///
    /// Provisional responses and responses for ids without a SUBSCRIBE out
    /// are ignored.
    pub fn on_response(&mut self, now: Instant, id: SubscriptionId, response: SubscribeResponse) {
        let status = response.status;
        if status < 200 {
            return;
        }

        if self.ending.contains_key(&id) {
            // The final NOTIFY follows a 2xx to an unsubscribe. After any
            // other response none will come.
            if !(200..300).contains(&status) {
                self.ending.remove(&id);
            }
            return;
        }

        let Some(key) = self.by_id.get(&id).cloned() else {
            debug!(subscription_id = %id, status, "ignoring response for an ended SIP subscription");
            return;
        };
        let Some(slot) = self.slots.get(&key) else {
            return;
        };
        let Phase::Requesting { refresh, .. } = slot.phase else {
            debug!(subscription_id = %id, status, "ignoring response without a SUBSCRIBE out");
            return;
        };

        let retry_after = response.retry_after;
        match status {
            200..=299 => self.accept_subscription(now, &key, &response),
            423 => self.raise_expires(now, &key, response.min_expires, refresh),
            481 if refresh => self.restart_after_failure(now, &key, Retry::Now, true),
            408 => self.restart_after_failure(now, &key, Retry::Backoff { retry_after }, false),
            _ if PERMANENT_STATUSES.contains(&status) => self.fail(now, &key, FailureReason::Rejected { status }),
            _ if refresh && DIALOG_ENDING_STATUSES.contains(&status) => {
                self.restart_after_failure(now, &key, Retry::Backoff { retry_after }, false)
            }
            _ if refresh => self.retry_refresh(now, &key, status, retry_after),
            _ => self.restart_after_failure(now, &key, Retry::Backoff { retry_after }, false),
        }

        self.update_health(now, &key.0);
    }

    /// Applies a transaction timeout of the SUBSCRIBE last sent for `id`:
    /// the dialog ends (RFC 3261 section 12.2.1.2) and a new one is created
    /// after backoff. For an unsubscribe, the subscription is forgotten.
    pub fn on_timeout(&mut self, now: Instant, id: SubscriptionId) {
        if self.ending.remove(&id).is_some() {
            return;
        }

        let Some(key) = self.by_id.get(&id).cloned() else {
            return;
        };
        let requesting = self.slots.get(&key).is_some_and(|slot| matches!(slot.phase, Phase::Requesting { .. }));
        if !requesting {
            return;
        }

        warn!(
            agent_id = %key.0, aor = %key.1, package = %key.2, subscription_id = %id,
            "SIP SUBSCRIBE timed out"
        );
        self.restart_after_failure(now, &key, Retry::Backoff { retry_after: None }, false);
        self.update_health(now, &key.0);
    }

    /// Checks a NOTIFY for `id` and applies its Subscription-State.
    ///
    /// - Unknown or ended id, or a From tag other than the dialog's (a
    ///   second dialog from a forked SUBSCRIBE): [`NotifyVerdict::UnknownSubscription`].
    /// - CSeq not above the last accepted NOTIFY of the dialog:
    ///   [`NotifyVerdict::Stale`]; the notifier lost its dialog state, so a
    ///   new dialog is created.
    /// - Otherwise [`NotifyVerdict::Accept`], also before the 2xx to the
    ///   SUBSCRIBE (the NOTIFY then sets the dialog's remote tag), and also
    ///   for a subscription being unsubscribed.
    ///
    /// `active` marks the subscription up. An expires parameter moves the
    /// expiry and can only move the refresh earlier. Without one, the timers
    /// stay as they are. `pending` marks it down. `terminated` ends
    /// the dialog: deactivated or timeout create a new one at once,
    /// probation or giveup after retry-after or backoff, rejected,
    /// noresource or invariant stop it with [`ManagerEvent::Failed`], and no
    /// reason or an unknown one retries after retry-after or backoff.
    pub fn on_notify(&mut self, now: Instant, id: SubscriptionId, notify: Notify) -> NotifyVerdict {
        if self.ending.contains_key(&id) {
            if notify.state.state == SubStateValue::Terminated {
                self.ending.remove(&id);
            }
            return NotifyVerdict::Accept;
        }

        let Some(key) = self.by_id.get(&id).cloned() else {
            debug!(subscription_id = %id, cseq = notify.cseq, "NOTIFY for an unknown SIP subscription");
            return NotifyVerdict::UnknownSubscription;
        };
        let Some(slot) = self.slots.get_mut(&key) else {
            return NotifyVerdict::UnknownSubscription;
        };

        if let (Some(known), Some(tag)) = (&slot.remote.tag, &notify.remote_tag)
            && known != tag
        {
            debug!(subscription_id = %id, "NOTIFY from a second dialog of a forked SUBSCRIBE");
            return NotifyVerdict::UnknownSubscription;
        }

        if let Some(last) = slot.last_notify_cseq
            && notify.cseq <= last
        {
            warn!(
                agent_id = %key.0, aor = %key.1, package = %key.2, subscription_id = %id,
                cseq = notify.cseq, last_cseq = last,
                "NOTIFY CSeq went backwards; creating a new SIP subscription"
            );
            self.restart_after_failure(now, &key, Retry::Now, false);
            self.update_health(now, &key.0);
            return NotifyVerdict::Stale;
        }

        slot.last_notify_cseq = Some(notify.cseq);
        if slot.remote.tag.is_none() {
            slot.remote.tag = notify.remote_tag;
        }
        if notify.remote_target.is_some() {
            slot.remote.target = notify.remote_target;
        }

        let state = notify.state;
        match state.state {
            SubStateValue::Active | SubStateValue::Pending => {
                if let Some(expires) = state.expires {
                    let expires = expires.min(slot.request_expires);
                    let delay = refresh_delay(&self.config, expires);
                    slot.expires_at = Some(now + secs(expires));
                    if let Phase::Established { refresh_at } = &mut slot.phase {
                        *refresh_at = (*refresh_at).min(now + delay);
                    }
                }

                if state.state == SubStateValue::Active {
                    slot.failures = 0;
                    slot.health = SlotHealth::Up;
                } else {
                    slot.mark_down(now + self.config.health_grace);
                }
            }
            SubStateValue::Terminated => {
                info!(
                    agent_id = %key.0, aor = %key.1, package = %key.2, subscription_id = %id,
                    reason = state.reason.as_ref().map(|reason| reason.to_string()),
                    "notifier terminated SIP subscription"
                );
                let retry_after = state.retry_after;
                match state.reason {
                    Some(Reason::Deactivated | Reason::Timeout) => {
                        self.restart_after_failure(now, &key, Retry::Now, false)
                    }
                    Some(reason @ (Reason::Rejected | Reason::Noresource | Reason::Invariant)) => {
                        self.fail(now, &key, FailureReason::Terminated(reason))
                    }
                    Some(Reason::Probation | Reason::Giveup | Reason::Other(_)) | None => {
                        self.restart_after_failure(now, &key, Retry::Backoff { retry_after }, false)
                    }
                }
            }
        }

        self.update_health(now, &key.0);
        NotifyVerdict::Accept
    }

    /// Ends every subscription: established dialogs get an unsubscribe,
    /// the others are dropped, and later targets are ignored. The caller
    /// drains the actions and may wait until [`is_idle`](Self::is_idle) or
    /// its own deadline for the final NOTIFYs.
    pub fn shutdown(&mut self, now: Instant) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;

        let keys: Vec<SlotKey> = self.slots.keys().cloned().collect();
        for key in &keys {
            self.remove_slot(now, key);
        }
        self.agents.clear();

        info!(unsubscribes = self.actions.len(), "stopping SIP subscriptions");
    }

    /// Runs every timer due at `now`: initial and retried SUBSCRIBEs,
    /// refreshes, response deadlines, health reports and the end of
    /// unsubscribed dialogs. [`poll_action`](Self::poll_action) calls it.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ending.retain(|_, ending| ending.until > now);

        // A timer can make another one due at once, because an expired
        // subscription is re-created at once. Each round moves a slot one
        // step forward, and the longest chain has two steps.
        for _ in 0..4 {
            let mut due: Vec<(Instant, SlotKey)> = self
                .slots
                .iter()
                .filter_map(|(key, slot)| {
                    let deadline = slot.deadline()?;
                    (deadline <= now).then(|| (deadline, key.clone()))
                })
                .collect();
            if due.is_empty() {
                return;
            }

            due.sort();
            for (_, key) in &due {
                self.fire(now, key);
            }
        }
    }

    /// Returns the next request to send, after running the timers due at
    /// `now` once the queue is empty.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        if self.actions.is_empty() {
            self.handle_timeout(now);
        }
        self.actions.pop_front()
    }

    /// Returns the next event. Timer-driven health events appear only after
    /// [`poll_action`](Self::poll_action) or
    /// [`handle_timeout`](Self::handle_timeout) ran.
    pub fn poll_event(&mut self) -> Option<ManagerEvent> {
        self.events.pop_front()
    }

    /// Returns when the next timer is due, or `None` when nothing is
    /// scheduled. Call it after draining [`poll_action`](Self::poll_action).
    pub fn next_timeout(&self) -> Option<Instant> {
        let slots = self.slots.values().filter_map(Slot::deadline);
        let ending = self.ending.values().map(|ending| ending.until);
        slots.chain(ending).min()
    }

    /// Returns the number of subscriptions, one per target and package.
    pub fn subscription_count(&self) -> usize {
        self.slots.len()
    }

    /// Returns the number of subscriptions per package and phase name
    /// (`waiting`, `requesting`, `active`, `pending`, `failed`), for metrics.
    /// `active` and `pending` split established subscriptions by whether the
    /// last NOTIFY reported them active.
    pub fn counts(&self) -> BTreeMap<(Package, &'static str), usize> {
        let mut counts = BTreeMap::new();
        for ((_, _, package), slot) in &self.slots {
            let phase = match slot.phase {
                Phase::Waiting { .. } => "waiting",
                Phase::Requesting { .. } => "requesting",
                Phase::Established { .. } if slot.health == SlotHealth::Up => "active",
                Phase::Established { .. } => "pending",
                Phase::Failed { .. } => "failed",
            };
            *counts.entry((*package, phase)).or_insert(0) += 1;
        }
        counts
    }

    /// Moves the refresh of an established subscription to `now`, so the
    /// notifier sends its full state again. The caller uses it when a
    /// partial document skipped versions (RFC 4235 section 4.1).
    pub fn refresh_now(&mut self, now: Instant, id: SubscriptionId) {
        let Some(slot) = self.by_id.get(&id).and_then(|key| self.slots.get_mut(key)) else {
            return;
        };
        match slot.phase {
            Phase::Established { refresh_at } if refresh_at > now => {
                slot.phase = Phase::Established { refresh_at: now };
            }
            Phase::Requesting { .. } => slot.refresh_requested = true,
            _ => {}
        }
    }

    /// Records that the caller sent a SUBSCRIBE of `id` with `cseq`, such as
    /// the retry with digest credentials after a challenge, so that later requests in
    /// the dialog use a higher CSeq.
    pub fn note_cseq(&mut self, id: SubscriptionId, cseq: u32) {
        if let Some(slot) = self.by_id.get(&id).and_then(|key| self.slots.get_mut(key)) {
            slot.cseq = slot.cseq.max(cseq);
        }
    }

    /// Returns whether no subscription, unsubscribed dialog or request is
    /// left; after [`shutdown`](Self::shutdown) this means the caller may
    /// stop.
    pub fn is_idle(&self) -> bool {
        self.slots.is_empty() && self.ending.is_empty() && self.actions.is_empty()
    }

    /// Picks the targets that get a new slot, in target order, and reports
    /// the ones beyond the limits.
    fn admit_targets(&mut self, listed: &BTreeSet<(Arc<str>, Arc<str>)>) -> Vec<SlotKey> {
        let mut per_agent: HashMap<Arc<str>, usize> = HashMap::new();
        for (agent, _, _) in self.slots.keys() {
            *per_agent.entry(agent.clone()).or_default() += 1;
        }

        let mut total = self.slots.len();
        let mut new_keys = Vec::new();
        for (agent, aor) in listed {
            for &package in &self.config.packages {
                let key = (agent.clone(), aor.clone(), package);
                if self.slots.contains_key(&key) {
                    continue;
                }

                let agent_count = per_agent.entry(agent.clone()).or_default();
                let reason = if *agent_count >= self.config.max_subscriptions_per_agent {
                    Some(FailureReason::AgentLimitReached { max: self.config.max_subscriptions_per_agent })
                } else if total >= self.config.max_subscriptions {
                    Some(FailureReason::LimitReached { max: self.config.max_subscriptions })
                } else {
                    None
                };

                if let Some(reason) = reason {
                    warn!(agent_id = %agent, aor = %aor, package = %package, %reason, "SIP subscription not created");
                    self.agents.entry(agent.clone()).or_default().over_limit = true;
                    self.events.push_back(ManagerEvent::Failed {
                        agent: agent.clone(),
                        aor: aor.clone(),
                        package,
                        reason,
                    });
                    continue;
                }

                *agent_count += 1;
                total += 1;
                new_keys.push(key);
            }
        }

        new_keys
    }

    /// Runs the slot's due timers.
    fn fire(&mut self, now: Instant, key: &SlotKey) {
        let Some(phase) = self.slots.get(key).map(|slot| slot.phase) else {
            return;
        };

        match phase {
            Phase::Waiting { at } if at <= now => self.send_create(now, key),
            Phase::Requesting { deadline, .. } if deadline <= now => {
                warn!(
                    agent_id = %key.0, aor = %key.1, package = %key.2,
                    "no final response to SIP SUBSCRIBE in time"
                );
                self.restart_after_failure(now, key, Retry::Backoff { retry_after: None }, false);
            }
            Phase::Established { refresh_at } if refresh_at <= now => self.send_refresh(now, key),
            Phase::Failed { retry_at: Some(at) } if at <= now => {
                info!(agent_id = %key.0, aor = %key.1, package = %key.2, "trying failed SIP subscription again");
                if let Some(slot) = self.slots.get_mut(key) {
                    slot.phase = Phase::Waiting { at: now };
                }
            }
            _ => {}
        }

        self.update_health(now, &key.0);
    }

    fn send_create(&mut self, now: Instant, key: &SlotKey) {
        let id = SubscriptionId(self.next_id);
        self.next_id += 1;

        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        slot.id = Some(id);
        slot.cseq = 1;
        slot.remote = RemoteDialog::default();
        slot.last_notify_cseq = None;
        slot.expires_at = None;
        slot.phase = Phase::Requesting { refresh: false, deadline: now + self.config.request_timeout };
        self.by_id.insert(id, key.clone());

        debug!(agent_id = %key.0, aor = %key.1, package = %key.2, subscription_id = %id, "sending SIP SUBSCRIBE");
        self.actions.push_back(Action::SendSubscribe {
            id,
            agent: key.0.clone(),
            aor: key.1.clone(),
            package: key.2,
            expires: slot.request_expires,
            new_dialog: true,
            cseq: slot.cseq,
            remote: RemoteDialog::default(),
        });
    }

    fn send_refresh(&mut self, now: Instant, key: &SlotKey) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };

        let expired = slot.expires_at.is_none_or(|expires_at| expires_at <= now);
        let (Some(id), Some(_), false) = (slot.id, &slot.remote.tag, expired) else {
            info!(agent_id = %key.0, aor = %key.1, package = %key.2, "SIP subscription expired before a refresh succeeded");
            self.restart_after_failure(now, key, Retry::Now, false);
            return;
        };

        slot.cseq = slot.cseq.saturating_add(1);
        slot.phase = Phase::Requesting { refresh: true, deadline: now + self.config.request_timeout };

        self.actions.push_back(Action::SendSubscribe {
            id,
            agent: key.0.clone(),
            aor: key.1.clone(),
            package: key.2,
            expires: slot.request_expires,
            new_dialog: false,
            cseq: slot.cseq,
            remote: slot.remote.clone(),
        });
    }

    fn accept_subscription(&mut self, now: Instant, key: &SlotKey, response: &SubscribeResponse) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };

        // A notifier may shorten the requested expiry but not extend it.
        let granted = response.expires.unwrap_or(slot.request_expires).min(slot.request_expires);
        if granted == 0 {
            debug!(agent_id = %key.0, aor = %key.1, package = %key.2, "SIP SUBSCRIBE accepted with Expires 0");
            self.restart_after_failure(now, key, Retry::Backoff { retry_after: None }, false);
            return;
        }

        if slot.remote.tag.is_none() {
            slot.remote.tag = response.remote_tag.clone();
        }
        if response.remote_target.is_some() {
            slot.remote.target = response.remote_target.clone();
        }

        slot.expires_at = Some(now + secs(granted));
        let refresh_at =
            if std::mem::take(&mut slot.refresh_requested) { now } else { now + refresh_delay(&self.config, granted) };
        slot.phase = Phase::Established { refresh_at };
    }

    /// Handles a 423: sends the SUBSCRIBE again with the notifier's
    /// Min-Expires, or counts a failure when that value is missing or does not
    /// raise the request, which would loop.
    fn raise_expires(&mut self, now: Instant, key: &SlotKey, min_expires: Option<u32>, refresh: bool) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };

        let raised = min_expires.filter(|&min| min > slot.request_expires && min <= MAX_EXPIRES_SECS);
        let Some(min) = raised else {
            self.restart_after_failure(now, key, Retry::Backoff { retry_after: None }, false);
            return;
        };

        info!(agent_id = %key.0, aor = %key.1, package = %key.2, expires = min, "notifier asked for a longer SIP subscription");
        slot.request_expires = min;
        if refresh {
            slot.phase = Phase::Established { refresh_at: now };
        } else {
            self.restart(now, key, Duration::ZERO, false);
        }
    }

    /// Schedules another refresh in the same dialog, which stays valid until
    /// it expires; past that instant the refresh timer re-creates it.
    fn retry_refresh(&mut self, now: Instant, key: &SlotKey, status: u16, retry_after: Option<u32>) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };

        slot.failures = slot.failures.saturating_add(1);
        let delay = match retry_after {
            Some(seconds) => clamp_retry_after(&self.config, seconds),
            None => backoff(&self.config, &mut self.rng, slot.failures),
        };
        let retry_at = now + delay;
        let refresh_at = slot.expires_at.map_or(retry_at, |expires_at| retry_at.min(expires_at));
        slot.phase = Phase::Established { refresh_at };

        warn!(
            agent_id = %key.0, aor = %key.1, package = %key.2, status,
            failures = slot.failures, retry_in_ms = delay.as_millis() as u64,
            "SIP subscription refresh failed"
        );
    }

    /// Counts a failure, then ends the dialog and schedules a new one.
    /// `report_now` skips the health grace period.
    fn restart_after_failure(&mut self, now: Instant, key: &SlotKey, retry: Retry, report_now: bool) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };

        let failures_before = slot.failures;
        slot.failures = slot.failures.saturating_add(1);
        let delay = match retry {
            Retry::Now if failures_before == 0 => Duration::ZERO,
            Retry::Backoff { retry_after: Some(seconds) } => clamp_retry_after(&self.config, seconds),
            Retry::Now | Retry::Backoff { retry_after: None } => backoff(&self.config, &mut self.rng, slot.failures),
        };

        info!(
            agent_id = %key.0, aor = %key.1, package = %key.2,
            failures = slot.failures, retry_in_ms = delay.as_millis() as u64,
            "re-creating SIP subscription"
        );
        self.restart(now, key, delay, report_now);
    }

    /// Ends the slot's dialog and schedules a new one after `delay`.
    fn restart(&mut self, now: Instant, key: &SlotKey, delay: Duration, report_now: bool) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };

        if let Some(id) = slot.id.take() {
            self.by_id.remove(&id);
        }
        slot.remote = RemoteDialog::default();
        slot.last_notify_cseq = None;
        slot.expires_at = None;
        slot.phase = Phase::Waiting { at: now + delay };

        let report_at = if report_now { now } else { now + self.config.health_grace };
        slot.mark_down(report_at);
    }

    /// Stops the slot and reports why; the agent is reported unhealthy at
    /// once.
    fn fail(&mut self, now: Instant, key: &SlotKey, reason: FailureReason) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };

        if let Some(id) = slot.id.take() {
            self.by_id.remove(&id);
        }
        slot.remote = RemoteDialog::default();
        slot.last_notify_cseq = None;
        slot.expires_at = None;
        slot.phase = Phase::Failed { retry_at: self.config.failed_retry.map(|delay| now + delay) };
        slot.mark_down(now);

        warn!(agent_id = %key.0, aor = %key.1, package = %key.2, %reason, "SIP subscription failed");
        self.events.push_back(ManagerEvent::Failed {
            agent: key.0.clone(),
            aor: key.1.clone(),
            package: key.2,
            reason,
        });
    }

    /// Drops a slot, unsubscribing its dialog if the notifier has one.
    fn remove_slot(&mut self, now: Instant, key: &SlotKey) {
        let Some(slot) = self.slots.remove(key) else {
            return;
        };
        let Some(id) = slot.id else {
            return;
        };
        self.by_id.remove(&id);

        // Without a remote tag there is no dialog to send the unsubscribe in.
        // If the notifier creates one later, its NOTIFY gets a 481, which
        // ends the subscription there.
        if slot.remote.tag.is_none() {
            return;
        }

        info!(agent_id = %key.0, aor = %key.1, package = %key.2, subscription_id = %id, "unsubscribing SIP subscription");
        self.actions.push_back(Action::SendUnsubscribe {
            id,
            agent: key.0.clone(),
            aor: key.1.clone(),
            package: key.2,
            cseq: slot.cseq.saturating_add(1),
            remote: slot.remote,
        });

        if self.ending.len() < self.config.max_subscriptions {
            self.ending.insert(id, Ending { until: now + self.config.unsubscribe_linger });
        }
    }

    /// Recomputes the agent's health and reports a change. The agent is
    /// healthy when every subscription of it is up, and unhealthy once one
    /// has been down past its report instant or a target did not fit the
    /// limits; in between, the last report remains.
    fn update_health(&mut self, now: Instant, agent: &Arc<str>) {
        let Some(entry) = self.agents.get_mut(agent) else {
            return;
        };

        let mut all_up = !entry.over_limit;
        let mut report_down = entry.over_limit;
        let start: SlotKey = (agent.clone(), Arc::from(""), Package::Dialog);
        for (_, slot) in self.slots.range_mut(start..).take_while(|(key, _)| key.0 == *agent) {
            if let SlotHealth::Down { report_at, reported } = &mut slot.health {
                all_up = false;
                if *report_at <= now {
                    *reported = true;
                }
                report_down |= *reported;
            }
        }

        let healthy = if all_up {
            true
        } else if report_down {
            false
        } else {
            return;
        };

        if entry.reported != Some(healthy) {
            entry.reported = Some(healthy);
            info!(agent_id = %agent, healthy, "SIP feed health changed");
            self.events.push_back(ManagerEvent::Health { agent: agent.clone(), healthy });
        }
    }
}

/// Returns how long after a grant of `expires` seconds the refresh goes out:
/// the configured fraction, moved earlier to leave the margin, but never
/// earlier than half the expiry.
fn refresh_delay(config: &ManagerConfig, expires: u32) -> Duration {
    let expires = secs(expires);
    let by_fraction = expires.mul_f64(config.refresh_fraction);
    let by_margin = expires.saturating_sub(config.refresh_margin);
    by_fraction.min(by_margin).max(expires / 2)
}

/// Returns the backoff after `failures` consecutive failures: the minimum
/// doubled per failure and capped, then a uniform pick from the upper half
/// so that targets that failed together do not retry together.
fn backoff(config: &ManagerConfig, rng: &mut StdRng, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    let base = config.min_retry.saturating_mul(1 << exponent).min(config.max_retry);
    let base_ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(base_ms / 2..=base_ms))
}

fn clamp_retry_after(config: &ManagerConfig, seconds: u32) -> Duration {
    secs(seconds).max(config.min_retry).min(config.max_retry_after)
}

fn secs(seconds: u32) -> Duration {
    Duration::from_secs(u64::from(seconds))
}
