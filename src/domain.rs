//! Domain types shared by every subsystem: agents, scheduled activities,
//! agent states and the normalized agent event that every ingest adapter
//! produces.
//!
//! Nothing here depends on a protocol. Adapters translate their wire format
//! into [`AgentEvent`]; the adherence engine and the API only see these types.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Identifier of an agent in the agent directory (for example `a-117`).
pub type AgentId = String;

/// Name of a team (for example `team-noord`).
pub type TeamId = String;

/// A person who handles calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub display_name: String,
    pub team: TeamId,
    /// Contract hours per ISO week; every week must schedule exactly these.
    /// Compared in whole minutes, so 22.5 is exact.
    pub contract_hours: f64,
    /// Identities on the platform that point at this agent: SIP AORs
    /// (`sip:1017@pbx.example.com`) and feed user ids (`u-1017`).
    #[serde(default)]
    pub platform_ids: Vec<String>,
}

/// Kind of work or absence a scheduled activity plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityType {
    PhoneDuty,
    Break,
    Lunch,
    Training,
    Meeting,
    Coaching,
    TeamDay,
    ExtraHours,
    SentHome,
}

/// A block of time on an agent's roster. `start` is inclusive, `end` exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledActivity {
    pub agent_id: AgentId,
    pub start: Timestamp,
    pub end: Timestamp,
    pub activity: ActivityType,
}

/// Reason an agent is not ready for calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotReadyReason {
    Break,
    Lunch,
    Training,
    Meeting,
    Coaching,
    Technical,
    Other,
}

/// Direction of a call, seen from the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    Inbound,
    Outbound,
}

/// The state group an agent is in: the key of the adherence rule matrix.
///
/// Platform state codes map to a group through configuration; call and
/// device events put an agent in the on-call, held and unreachable groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateGroup {
    LoggedOut,
    Available,
    Ringing,
    OnCallInbound,
    OnCallOutbound,
    Held,
    WrapUp,
    NotReady(NotReadyReason),
    /// Logged in, but the device registration was lost: shown apart from a
    /// deliberate logout. A silent feed makes adherence unknown instead.
    Unreachable,
}

/// Adherence of one agent at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdherenceStatus {
    InAdherence,
    OutOfAdherence,
    /// Neither in nor out: the rule matrix counts the state as neutral.
    Neutral,
    /// The source the agent depends on is down, so the state is not known;
    /// counted as neutral and flagged.
    Unknown,
    /// Covered by a supervisor-approved exception.
    Excused,
}

/// Kind of ingest adapter that delivered an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Grpc,
    WebSocket,
    Sip,
}

/// Change reported for an agent, independent of the protocol that reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The agent logged in to the platform (state code for the initial state
    /// may follow as a separate event).
    Login,
    /// The agent logged out deliberately.
    Logout,
    /// The platform reports a state code (`Available`, `ACW`, `Pauze`, …),
    /// mapped to a [`StateGroup`] through configuration.
    State {
        code: String,
    },
    /// A call is ringing at the agent's device.
    CallRinging {
        call_id: String,
        direction: CallDirection,
    },
    /// A call was answered or placed and is now connected.
    CallStart {
        call_id: String,
        direction: CallDirection,
    },
    CallHold {
        call_id: String,
    },
    CallResume {
        call_id: String,
    },
    CallEnd {
        call_id: String,
    },
    /// The device registration was gained (`registered = true`) or lost.
    Device {
        registered: bool,
    },
}

/// One normalized agent event, as every ingest adapter produces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEvent {
    /// Adapter kind that received the event.
    pub source_kind: SourceKind,
    /// Name of the feed or connection (for example `platform-main`); the
    /// agent depends on this source for feed health.
    pub source: String,
    /// The source's own id for the event; duplicates (same source and id)
    /// are acknowledged and dropped.
    pub source_event_id: String,
    /// Agent id or platform id (AOR, feed user id) as the source sent it;
    /// resolved through the agent directory.
    pub agent_ref: String,
    /// Instant the event happened, by the source's clock.
    pub source_time: Timestamp,
    /// When floorwatch received it.
    pub received_at: Timestamp,
    pub kind: EventKind,
}

impl AgentEvent {
    /// Returns the instant the engine uses: the source time when it lies
    /// within `max_skew_ms` of the receive time, else the receive time.
    pub fn effective_time(&self, max_skew_ms: i64) -> Timestamp {
        let skew = self.source_time.as_millisecond() - self.received_at.as_millisecond();
        if skew.abs() <= max_skew_ms { self.source_time } else { self.received_at }
    }
}

// === impl ActivityType ===

impl ActivityType {
    pub const ALL: [ActivityType; 9] = [
        ActivityType::PhoneDuty,
        ActivityType::Break,
        ActivityType::Lunch,
        ActivityType::Training,
        ActivityType::Meeting,
        ActivityType::Coaching,
        ActivityType::TeamDay,
        ActivityType::ExtraHours,
        ActivityType::SentHome,
    ];

    /// Returns true for paid work. Breaks, lunch and being sent home are not
    /// work: they end a block for the labour rules and do not count toward
    /// scheduled work time.
    pub fn is_work(self) -> bool {
        !matches!(self, ActivityType::Break | ActivityType::Lunch | ActivityType::SentHome)
    }

    /// Returns the snake_case name used in config, CSV and JSON files.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityType::PhoneDuty => "phone_duty",
            ActivityType::Break => "break",
            ActivityType::Lunch => "lunch",
            ActivityType::Training => "training",
            ActivityType::Meeting => "meeting",
            ActivityType::Coaching => "coaching",
            ActivityType::TeamDay => "team_day",
            ActivityType::ExtraHours => "extra_hours",
            ActivityType::SentHome => "sent_home",
        }
    }

    /// Parses the snake_case name; also accepts `work` as phone duty, the
    /// word many planning exports use.
    pub fn parse(name: &str) -> Option<ActivityType> {
        let name = name.trim().to_ascii_lowercase();
        if name == "work" {
            return Some(ActivityType::PhoneDuty);
        }
        ActivityType::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for ActivityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl NotReadyReason ===

impl NotReadyReason {
    pub const ALL: [NotReadyReason; 7] = [
        NotReadyReason::Break,
        NotReadyReason::Lunch,
        NotReadyReason::Training,
        NotReadyReason::Meeting,
        NotReadyReason::Coaching,
        NotReadyReason::Technical,
        NotReadyReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotReadyReason::Break => "break",
            NotReadyReason::Lunch => "lunch",
            NotReadyReason::Training => "training",
            NotReadyReason::Meeting => "meeting",
            NotReadyReason::Coaching => "coaching",
            NotReadyReason::Technical => "technical",
            NotReadyReason::Other => "other",
        }
    }
}

// === impl StateGroup ===

impl StateGroup {
    /// Every group, in the order the rule matrix lists them.
    pub const ALL: [StateGroup; 15] = [
        StateGroup::LoggedOut,
        StateGroup::Available,
        StateGroup::Ringing,
        StateGroup::OnCallInbound,
        StateGroup::OnCallOutbound,
        StateGroup::Held,
        StateGroup::WrapUp,
        StateGroup::NotReady(NotReadyReason::Break),
        StateGroup::NotReady(NotReadyReason::Lunch),
        StateGroup::NotReady(NotReadyReason::Training),
        StateGroup::NotReady(NotReadyReason::Meeting),
        StateGroup::NotReady(NotReadyReason::Coaching),
        StateGroup::NotReady(NotReadyReason::Technical),
        StateGroup::NotReady(NotReadyReason::Other),
        StateGroup::Unreachable,
    ];

    /// Returns the name used in config files: `available`, `on_call_inbound`,
    /// `not_ready_break`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            StateGroup::LoggedOut => "logged_out",
            StateGroup::Available => "available",
            StateGroup::Ringing => "ringing",
            StateGroup::OnCallInbound => "on_call_inbound",
            StateGroup::OnCallOutbound => "on_call_outbound",
            StateGroup::Held => "held",
            StateGroup::WrapUp => "wrap_up",
            StateGroup::NotReady(NotReadyReason::Break) => "not_ready_break",
            StateGroup::NotReady(NotReadyReason::Lunch) => "not_ready_lunch",
            StateGroup::NotReady(NotReadyReason::Training) => "not_ready_training",
            StateGroup::NotReady(NotReadyReason::Meeting) => "not_ready_meeting",
            StateGroup::NotReady(NotReadyReason::Coaching) => "not_ready_coaching",
            StateGroup::NotReady(NotReadyReason::Technical) => "not_ready_technical",
            StateGroup::NotReady(NotReadyReason::Other) => "not_ready_other",
            StateGroup::Unreachable => "unreachable",
        }
    }

    /// Parses a config name; see [`StateGroup::as_str`].
    pub fn parse(name: &str) -> Option<StateGroup> {
        StateGroup::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// Returns true when the agent is logged in for work (everything except
    /// logged out, unreachable, and not-ready for a break or lunch).
    pub fn is_logged_in_for_work(self) -> bool {
        !matches!(
            self,
            StateGroup::LoggedOut
                | StateGroup::Unreachable
                | StateGroup::NotReady(NotReadyReason::Break)
                | StateGroup::NotReady(NotReadyReason::Lunch)
        )
    }

    /// Returns true when the agent is logged in at all.
    pub fn is_logged_in(self) -> bool {
        !matches!(self, StateGroup::LoggedOut | StateGroup::Unreachable)
    }
}

impl fmt::Display for StateGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl AdherenceStatus ===

impl AdherenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AdherenceStatus::InAdherence => "in_adherence",
            AdherenceStatus::OutOfAdherence => "out_of_adherence",
            AdherenceStatus::Neutral => "neutral",
            AdherenceStatus::Unknown => "unknown",
            AdherenceStatus::Excused => "excused",
        }
    }
}

// === impl SourceKind ===

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Grpc => "grpc",
            SourceKind::WebSocket => "websocket",
            SourceKind::Sip => "sip",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_group_names_round_trip() {
        for group in StateGroup::ALL {
            assert_eq!(StateGroup::parse(group.as_str()), Some(group), "{group}");
        }
    }

    #[test]
    fn activity_names_round_trip() {
        for activity in ActivityType::ALL {
            assert_eq!(ActivityType::parse(activity.as_str()), Some(activity));
        }
        assert_eq!(ActivityType::parse("work"), Some(ActivityType::PhoneDuty));
    }

    #[test]
    fn effective_time_uses_source_within_skew() {
        let received: Timestamp = "2026-12-04T10:00:05Z".parse().unwrap();
        let mut event = AgentEvent {
            source_kind: SourceKind::Grpc,
            source: "feed".into(),
            source_event_id: "e1".into(),
            agent_ref: "a-1".into(),
            source_time: "2026-12-04T10:00:00Z".parse().unwrap(),
            received_at: received,
            kind: EventKind::Login,
        };
        assert_eq!(event.effective_time(10_000), event.source_time);

        event.source_time = "2026-12-04T09:00:00Z".parse().unwrap();
        assert_eq!(event.effective_time(10_000), received);
    }
}
