//! RFC 6665 subscriptions that floorwatch keeps alive as a watcher: for each
//! rostered agent's AOR and each configured event package, one SUBSCRIBE
//! dialog, refreshed before it expires and re-created when it breaks.
//!
//! [`SubscriptionManager`] is a state machine with explicit time. It does no
//! I/O, reads no clock and parses no SIP. The caller's SIP stack sends the
//! requests the manager returns, feeds back final responses, transaction
//! timeouts and NOTIFY requests, and sleeps until
//! [`SubscriptionManager::next_timeout`]. Digest authentication, Call-ID and
//! tag generation, and the NOTIFY bodies stay with the caller.

mod manager;

pub use manager::SubscriptionManager;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// An event package floorwatch subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Package {
    /// Call state of the agent's phone (RFC 4235).
    Dialog,
    /// The agent's presence (RFC 3856).
    Presence,
    /// Registration state of the agent's AOR (RFC 3680).
    Reg,
}

/// Identifier of one subscription dialog, never reused.
///
/// A re-created subscription gets a new id, so a late response or NOTIFY for
/// the old dialog cannot change the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub u64);

/// Dialog data learned from the notifier. The manager stores it as given and
/// hands it back with each in-dialog request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteDialog {
    /// The notifier's tag: the To tag of a 2xx, or the From tag of a NOTIFY.
    pub tag: Option<String>,
    /// The notifier's Contact URI, the target of in-dialog requests.
    pub target: Option<String>,
}

/// A final response to a SUBSCRIBE, reduced to what the manager needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeResponse {
    pub status: u16,
    /// Expires header in seconds; a 2xx must carry it.
    pub expires: Option<u32>,
    /// Retry-After header in seconds.
    pub retry_after: Option<u32>,
    /// Min-Expires header of a 423 response, in seconds.
    pub min_expires: Option<u32>,
    /// To tag of the response.
    pub remote_tag: Option<String>,
    /// Contact URI of the response.
    pub remote_target: Option<String>,
}

/// The substate-value of a Subscription-State header (RFC 6665 section 8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubStateValue {
    Active,
    Pending,
    Terminated,
}

/// The reason parameter of `Subscription-State: terminated` (RFC 6665
/// section 4.1.3), which decides whether the subscriber subscribes again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Subscribe again at once.
    Deactivated,
    /// Subscribe again after Retry-After.
    Probation,
    /// Authorization was withdrawn: do not subscribe again.
    Rejected,
    /// The subscription expired: subscribe again at once.
    Timeout,
    /// The notifier gave up waiting for authorization: subscribe again after
    /// Retry-After.
    Giveup,
    /// The resource no longer exists: do not subscribe again.
    Noresource,
    /// The resource state never changes: do not subscribe again.
    Invariant,
    /// A reason token this code does not know; handled like no reason.
    Other(String),
}

/// A parsed Subscription-State header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubState {
    pub state: SubStateValue,
    /// The expires parameter in seconds.
    pub expires: Option<u32>,
    pub reason: Option<Reason>,
    /// The retry-after parameter in seconds.
    pub retry_after: Option<u32>,
}

/// A NOTIFY request, reduced to what the manager needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The CSeq number of the NOTIFY.
    pub cseq: u32,
    /// From tag of the NOTIFY.
    pub remote_tag: Option<String>,
    /// Contact URI of the NOTIFY; a NOTIFY refreshes the remote target.
    pub remote_target: Option<String>,
    pub state: SubState,
}

/// The caller's response to a NOTIFY, and whether it applies the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyVerdict {
    /// Send 200 and apply the body.
    Accept,
    /// Send 500 because the CSeq is not higher than the last accepted NOTIFY of
    /// this dialog. Do not apply the body; the manager subscribes again.
    Stale,
    /// Send 481 because no such subscription exists. Do not apply the body; the 481
    /// ends the subscription at the notifier.
    UnknownSubscription,
}

/// A request the caller must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send SUBSCRIBE with this Expires and CSeq. With `new_dialog`, create a
    /// new dialog (fresh Call-ID and From tag) bound to `id`; otherwise send
    /// it inside the dialog of `id`, to `remote`.
    SendSubscribe {
        id: SubscriptionId,
        agent: Arc<str>,
        aor: Arc<str>,
        package: Package,
        expires: u32,
        new_dialog: bool,
        cseq: u32,
        remote: RemoteDialog,
    },
    /// Send SUBSCRIBE with Expires: 0 inside the dialog of `id`, which ends
    /// the subscription.
    SendUnsubscribe {
        id: SubscriptionId,
        agent: Arc<str>,
        aor: Arc<str>,
        package: Package,
        cseq: u32,
        remote: RemoteDialog,
    },
}

/// Something the manager reports to the rest of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerEvent {
    /// The agent's SIP feed became healthy (every subscription of the agent
    /// is active) or unhealthy (one was down for longer than the grace
    /// period). While unhealthy, the engine shows the agent's state as
    /// unknown instead of judging adherence from stale data.
    Health { agent: Arc<str>, healthy: bool },
    /// A subscription stopped and will not be tried again on its own.
    Failed { agent: Arc<str>, aor: Arc<str>, package: Package, reason: FailureReason },
}

/// The cause of a stopped subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// The notifier terminated it with rejected, noresource or invariant.
    Terminated(Reason),
    /// The notifier rejected the SUBSCRIBE with a status that retrying
    /// cannot fix, such as 403, 404 or 489.
    Rejected { status: u16 },
    /// More targets than `max_subscriptions`.
    LimitReached { max: usize },
    /// More subscriptions for this agent than `max_subscriptions_per_agent`.
    AgentLimitReached { max: usize },
}

/// Settings of a [`SubscriptionManager`].
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Event packages subscribed for every target.
    pub packages: Vec<Package>,
    /// Expires value of every SUBSCRIBE, in seconds, unless a 423 response
    /// requests more.
    pub requested_expires: u32,
    /// Fraction of the granted expiry after which the subscription is
    /// refreshed.
    pub refresh_fraction: f64,
    /// Minimum time left before expiry when the refresh goes out. Never
    /// moves the refresh earlier than half the granted expiry.
    pub refresh_margin: Duration,
    /// Backoff after the first failure; it doubles per consecutive failure.
    pub min_retry: Duration,
    /// Cap of the backoff.
    pub max_retry: Duration,
    /// Cap of a notifier's Retry-After.
    pub max_retry_after: Duration,
    /// Window over which the initial SUBSCRIBEs of new targets are spread,
    /// so a start with hundreds of agents does not flood the notifier.
    pub start_spread: Duration,
    /// How long a subscription may be down before its agent is reported
    /// unhealthy.
    pub health_grace: Duration,
    /// How long to wait for a final response before treating the SUBSCRIBE
    /// as timed out, in case the caller never reports its transaction.
    pub request_timeout: Duration,
    /// How long an ended subscription is kept after its unsubscribe, so the
    /// notifier's final NOTIFY still gets a 200.
    pub unsubscribe_linger: Duration,
    /// Maximum number of subscriptions (targets times packages).
    pub max_subscriptions: usize,
    /// Maximum number of subscriptions of one agent (AORs times packages).
    pub max_subscriptions_per_agent: usize,
    /// Delay after which a stopped subscription is tried again. `None`
    /// follows RFC 6665 for rejected and noresource: the subscription stays
    /// stopped until its target leaves the targets and comes back.
    pub failed_retry: Option<Duration>,
}

/// An invalid [`ManagerConfig`] value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("no event packages configured: list at least one of dialog, presence, reg")]
    NoPackages,
    #[error("requested_expires is {0} s: use at least 60 s")]
    ExpiresTooShort(u32),
    #[error("refresh_fraction is {0}: use a value above 0 and below 1, such as 0.8")]
    RefreshFraction(f64),
    #[error("min_retry is {min:?} and max_retry is {max:?}: min_retry must be above zero and not above max_retry")]
    RetryRange { min: Duration, max: Duration },
    #[error("request_timeout is zero: use at least 32 s, the SIP transaction timeout")]
    RequestTimeout,
    #[error("max_subscriptions or max_subscriptions_per_agent is zero: set both above zero")]
    ZeroLimit,
}

// === impl Package ===

impl Package {
    /// Returns the Event header token of the package.
    pub fn event(self) -> &'static str {
        match self {
            Package::Dialog => "dialog",
            Package::Presence => "presence",
            Package::Reg => "reg",
        }
    }

    /// Returns the body type the notifier sends, for the Accept header.
    pub fn content_type(self) -> &'static str {
        match self {
            Package::Dialog => "application/dialog-info+xml",
            Package::Presence => "application/pidf+xml",
            Package::Reg => "application/reginfo+xml",
        }
    }

    /// Parses an Event header token (without parameters).
    pub fn from_event(token: &str) -> Option<Package> {
        let token = token.trim();
        [Package::Dialog, Package::Presence, Package::Reg]
            .into_iter()
            .find(|package| package.event().eq_ignore_ascii_case(token))
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.event())
    }
}

// === impl SubscriptionId ===

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sub-{}", self.0)
    }
}

// === impl Reason ===

impl Reason {
    /// Parses a reason token; tokens are case-insensitive.
    pub fn from_token(token: &str) -> Reason {
        match token.trim().to_ascii_lowercase().as_str() {
            "deactivated" => Reason::Deactivated,
            "probation" => Reason::Probation,
            "rejected" => Reason::Rejected,
            "timeout" => Reason::Timeout,
            "giveup" => Reason::Giveup,
            "noresource" => Reason::Noresource,
            "invariant" => Reason::Invariant,
            other => Reason::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = match self {
            Reason::Deactivated => "deactivated",
            Reason::Probation => "probation",
            Reason::Rejected => "rejected",
            Reason::Timeout => "timeout",
            Reason::Giveup => "giveup",
            Reason::Noresource => "noresource",
            Reason::Invariant => "invariant",
            Reason::Other(token) => token,
        };
        f.write_str(token)
    }
}

// === impl SubState ===

impl SubState {
    /// Builds `active` with an optional expires parameter.
    pub fn active(expires: Option<u32>) -> SubState {
        SubState { state: SubStateValue::Active, expires, reason: None, retry_after: None }
    }

    /// Builds `pending` with an optional expires parameter.
    pub fn pending(expires: Option<u32>) -> SubState {
        SubState { state: SubStateValue::Pending, expires, reason: None, retry_after: None }
    }

    /// Parses a Subscription-State header value (RFC 6665 section 8.4),
    /// such as `active;expires=600` or `terminated;reason=timeout`. Unknown
    /// parameters are ignored; an unknown substate gives `None`.
    pub fn parse(value: &str) -> Option<SubState> {
        let mut parts = value.split(';');
        let state = match parts.next()?.trim().to_ascii_lowercase().as_str() {
            "active" => SubStateValue::Active,
            "pending" => SubStateValue::Pending,
            "terminated" => SubStateValue::Terminated,
            _ => return None,
        };
        let mut sub = SubState { state, expires: None, reason: None, retry_after: None };
        for param in parts {
            let Some((name, v)) = param.split_once('=') else { continue };
            let v = v.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "expires" => sub.expires = v.parse().ok(),
                "retry-after" => sub.retry_after = v.parse().ok(),
                "reason" => sub.reason = Some(Reason::from_token(v)),
                _ => {}
            }
        }
        Some(sub)
    }

    /// Builds `terminated` with an optional reason and retry-after.
    pub fn terminated(reason: Option<Reason>, retry_after: Option<u32>) -> SubState {
        SubState { state: SubStateValue::Terminated, expires: None, reason, retry_after }
    }
}

// === impl NotifyVerdict ===

impl NotifyVerdict {
    /// Returns the status code of the response to the NOTIFY.
    pub fn status_code(self) -> u16 {
        match self {
            NotifyVerdict::Accept => 200,
            NotifyVerdict::Stale => 500,
            NotifyVerdict::UnknownSubscription => 481,
        }
    }
}

// === impl Action ===

impl Action {
    /// Returns the subscription the request belongs to.
    pub fn id(&self) -> SubscriptionId {
        match self {
            Action::SendSubscribe { id, .. } | Action::SendUnsubscribe { id, .. } => *id,
        }
    }
}

// === impl FailureReason ===

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::Terminated(reason) => write!(f, "terminated by the notifier: {reason}"),
            FailureReason::Rejected { status } => write!(f, "rejected with status {status}"),
            FailureReason::LimitReached { max } => {
                write!(f, "more than {max} subscriptions in total; raise max_subscriptions")
            }
            FailureReason::AgentLimitReached { max } => {
                write!(f, "more than {max} subscriptions for this agent; raise max_subscriptions_per_agent")
            }
        }
    }
}

// === impl ManagerConfig ===

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            packages: vec![Package::Dialog, Package::Presence, Package::Reg],
            requested_expires: 3600,
            refresh_fraction: 0.8,
            refresh_margin: Duration::from_secs(60),
            min_retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(3600),
            start_spread: Duration::from_secs(60),
            health_grace: Duration::from_secs(30),
            request_timeout: Duration::from_secs(40),
            unsubscribe_linger: Duration::from_secs(32),
            max_subscriptions: 3000,
            max_subscriptions_per_agent: 12,
            failed_retry: None,
        }
    }
}

impl ManagerConfig {
    /// Checks every value, naming the first invalid one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.packages.is_empty() {
            return Err(ConfigError::NoPackages);
        }

        if self.requested_expires < 60 {
            return Err(ConfigError::ExpiresTooShort(self.requested_expires));
        }

        let fraction = self.refresh_fraction;
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(ConfigError::RefreshFraction(fraction));
        }

        if self.min_retry.is_zero() || self.min_retry > self.max_retry {
            return Err(ConfigError::RetryRange { min: self.min_retry, max: self.max_retry });
        }

        if self.request_timeout.is_zero() {
            return Err(ConfigError::RequestTimeout);
        }

        if self.max_subscriptions == 0 || self.max_subscriptions_per_agent == 0 {
            return Err(ConfigError::ZeroLimit);
        }

        Ok(())
    }
}

#[cfg(test)]
mod tests;
