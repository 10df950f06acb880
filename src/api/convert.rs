//! Conversions between domain types and the generated protobuf types.

use jiff::Timestamp;
use tonic::Status;

use crate::adherence::{AlarmKind, DayFigures};
use crate::domain::{ActivityType, AdherenceStatus, CallDirection, NotReadyReason, ScheduledActivity, StateGroup};
use crate::floor::{AlarmEvent, FloorAgent, TeamSummary, out_of_adherence_seconds};
use crate::i18n::{Locale, alarm_text};
use crate::proto;

pub fn timestamp_to_proto(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.as_second(), nanos: t.subsec_nanosecond() }
}

/// Converts a protobuf timestamp, naming `field` when it is missing or out
/// of range.
pub fn timestamp_from_proto(t: Option<&prost_types::Timestamp>, field: &str) -> Result<Timestamp, Status> {
    let t = t.ok_or_else(|| Status::invalid_argument(format!("{field} is required")))?;
    Timestamp::new(t.seconds, t.nanos).map_err(|e| Status::invalid_argument(format!("{field} is out of range: {e}")))
}

pub fn state_group_to_proto(group: StateGroup) -> proto::StateGroup {
    use proto::StateGroup as P;
    match group {
        StateGroup::LoggedOut => P::LoggedOut,
        StateGroup::Available => P::Available,
        StateGroup::Ringing => P::Ringing,
        StateGroup::OnCallInbound => P::OnCallInbound,
        StateGroup::OnCallOutbound => P::OnCallOutbound,
        StateGroup::Held => P::Held,
        StateGroup::WrapUp => P::WrapUp,
        StateGroup::NotReady(NotReadyReason::Break) => P::NotReadyBreak,
        StateGroup::NotReady(NotReadyReason::Lunch) => P::NotReadyLunch,
        StateGroup::NotReady(NotReadyReason::Training) => P::NotReadyTraining,
        StateGroup::NotReady(NotReadyReason::Meeting) => P::NotReadyMeeting,
        StateGroup::NotReady(NotReadyReason::Coaching) => P::NotReadyCoaching,
        StateGroup::NotReady(NotReadyReason::Technical) => P::NotReadyTechnical,
        StateGroup::NotReady(NotReadyReason::Other) => P::NotReadyOther,
        StateGroup::Unreachable => P::Unreachable,
    }
}

pub fn activity_to_proto(activity: ActivityType) -> proto::ActivityType {
    use proto::ActivityType as P;
    match activity {
        ActivityType::PhoneDuty => P::PhoneDuty,
        ActivityType::Break => P::Break,
        ActivityType::Lunch => P::Lunch,
        ActivityType::Training => P::Training,
        ActivityType::Meeting => P::Meeting,
        ActivityType::Coaching => P::Coaching,
        ActivityType::TeamDay => P::TeamDay,
        ActivityType::ExtraHours => P::ExtraHours,
        ActivityType::SentHome => P::SentHome,
    }
}

/// Converts a wire activity type, naming `field` when it is unset or
/// unknown.
pub fn activity_from_proto(value: i32, field: &str) -> Result<ActivityType, Status> {
    use proto::ActivityType as P;
    match P::try_from(value) {
        Ok(P::PhoneDuty) => Ok(ActivityType::PhoneDuty),
        Ok(P::Break) => Ok(ActivityType::Break),
        Ok(P::Lunch) => Ok(ActivityType::Lunch),
        Ok(P::Training) => Ok(ActivityType::Training),
        Ok(P::Meeting) => Ok(ActivityType::Meeting),
        Ok(P::Coaching) => Ok(ActivityType::Coaching),
        Ok(P::TeamDay) => Ok(ActivityType::TeamDay),
        Ok(P::ExtraHours) => Ok(ActivityType::ExtraHours),
        Ok(P::SentHome) => Ok(ActivityType::SentHome),
        Ok(P::Unspecified) | Err(_) => {
            Err(Status::invalid_argument(format!("{field}: activity type {value} is unset or unknown")))
        }
    }
}

pub fn adherence_to_proto(status: AdherenceStatus) -> proto::AdherenceStatus {
    use proto::AdherenceStatus as P;
    match status {
        AdherenceStatus::InAdherence => P::InAdherence,
        AdherenceStatus::OutOfAdherence => P::OutOfAdherence,
        AdherenceStatus::Neutral => P::Neutral,
        AdherenceStatus::Unknown => P::Unknown,
        AdherenceStatus::Excused => P::Excused,
    }
}

pub fn direction_to_proto(direction: CallDirection) -> proto::CallDirection {
    match direction {
        CallDirection::Inbound => proto::CallDirection::Inbound,
        CallDirection::Outbound => proto::CallDirection::Outbound,
    }
}

pub fn direction_from_proto(value: i32, field: &str) -> Result<CallDirection, Status> {
    match proto::CallDirection::try_from(value) {
        Ok(proto::CallDirection::Inbound) => Ok(CallDirection::Inbound),
        Ok(proto::CallDirection::Outbound) => Ok(CallDirection::Outbound),
        _ => Err(Status::invalid_argument(format!("{field}: direction must be INBOUND or OUTBOUND"))),
    }
}

pub fn activity_record_to_proto(activity: &ScheduledActivity) -> proto::ScheduledActivity {
    proto::ScheduledActivity {
        agent_id: activity.agent_id.clone(),
        start: Some(timestamp_to_proto(activity.start)),
        end: Some(timestamp_to_proto(activity.end)),
        activity: activity_to_proto(activity.activity) as i32,
    }
}

/// Converts a wire activity; `field` is its position, e.g. "activities[3]".
pub fn activity_record_from_proto(
    activity: &proto::ScheduledActivity,
    field: &str,
) -> Result<ScheduledActivity, Status> {
    if activity.agent_id.trim().is_empty() {
        return Err(Status::invalid_argument(format!("{field}.agent_id is required")));
    }
    let start = timestamp_from_proto(activity.start.as_ref(), &format!("{field}.start"))?;
    let end = timestamp_from_proto(activity.end.as_ref(), &format!("{field}.end"))?;
    if end <= start {
        return Err(Status::invalid_argument(format!("{field}: end {end} is not after start {start}")));
    }
    Ok(ScheduledActivity {
        agent_id: activity.agent_id.clone(),
        start,
        end,
        activity: activity_from_proto(activity.activity, &format!("{field}.activity"))?,
    })
}

pub fn agent_view(agent: &FloorAgent, now: Timestamp) -> proto::AgentView {
    let s = &agent.snapshot;
    proto::AgentView {
        agent_id: s.agent_id.to_string(),
        display_name: agent.display_name.to_string(),
        team: agent.team.to_string(),
        state: state_group_to_proto(s.group) as i32,
        state_since: s.group_since.map(timestamp_to_proto),
        state_code: s.state_code.as_deref().unwrap_or_default().to_string(),
        scheduled_activity: s.activity.map(|a| activity_to_proto(a) as i32),
        scheduled_until: s.activity_end.map(timestamp_to_proto),
        adherence: adherence_to_proto(s.status) as i32,
        adherence_since: Some(timestamp_to_proto(s.status_since)),
        out_of_adherence_seconds: out_of_adherence_seconds(s, now),
        alarm: s.alarm,
        call: s.call.as_ref().map(|c| proto::CurrentCall {
            call_id: c.call_id.clone(),
            direction: direction_to_proto(c.direction) as i32,
            since: Some(timestamp_to_proto(c.since)),
            held: c.held,
        }),
        device_registered: s.device_registered,
        source: s.source.as_deref().unwrap_or_default().to_string(),
        source_healthy: s.source_healthy,
        adherence_percent_today: s.adherence_percent_today,
    }
}

pub fn team_summary(summary: &TeamSummary) -> proto::TeamSummary {
    proto::TeamSummary {
        team: summary.team.to_string(),
        agents: summary.agents,
        logged_in: summary.logged_in,
        available: summary.available,
        on_call: summary.on_call,
        wrap_up: summary.wrap_up,
        not_ready: summary.not_ready,
        unreachable: summary.unreachable,
        scheduled_now: summary.scheduled_now,
        out_of_adherence: summary.out_of_adherence,
        alarms: summary.alarms,
        adherence_percent_today: summary.adherence_percent_today,
    }
}

/// Converts an alarm, with its text in `locale` and clock times in `tz`.
pub fn alarm(event: &AlarmEvent, display_name: &str, tz: &jiff::tz::TimeZone, locale: Locale) -> proto::Alarm {
    let out_since = Timestamp::from_millisecond(event.alarm.out_since_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let raised_at = Timestamp::from_millisecond(event.alarm.raised_at_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let since = tz.to_datetime(out_since).strftime("%H:%M").to_string();
    let kind = event.alarm.kind.as_str();
    proto::Alarm {
        alarm_id: event.alarm_id.clone(),
        agent_id: event.agent_id.to_string(),
        team: event.team.to_string(),
        kind: kind.to_string(),
        text: alarm_text(kind, display_name, event.alarm.group, event.alarm.activity, &since, locale),
        out_of_adherence_since: Some(timestamp_to_proto(out_since)),
        raised_at: Some(timestamp_to_proto(raised_at)),
        scheduled_activity: event.alarm.activity.map(|a| activity_to_proto(a) as i32),
        state: state_group_to_proto(event.alarm.group) as i32,
    }
}

/// Returns the id of an alarm: the agent and the instant its
/// out-of-adherence period began, which together are unique.
pub fn alarm_id(agent_id: &str, kind: AlarmKind, out_since_ms: i64) -> String {
    format!("{agent_id}/{}/{out_since_ms}", kind.as_str())
}

pub fn day_figures(agent_id: &str, date: &str, as_of: Timestamp, figures: &DayFigures) -> proto::AgentDayFigures {
    let seconds = |ms: i64| ms / 1000;
    proto::AgentDayFigures {
        agent_id: agent_id.to_string(),
        date: date.to_string(),
        as_of: Some(timestamp_to_proto(as_of)),
        scheduled_seconds: seconds(figures.scheduled_ms),
        scheduled_work_seconds: seconds(figures.scheduled_work_ms),
        in_adherence_seconds: seconds(figures.in_ms),
        out_of_adherence_seconds: seconds(figures.out_ms),
        neutral_seconds: seconds(figures.neutral_total_ms()),
        unknown_seconds: seconds(figures.unknown_ms),
        excused_seconds: seconds(figures.excused_ms),
        adherence_percent: figures.adherence_percent(),
        conformance_percent: figures.conformance_percent(),
        logged_in_work_seconds: seconds(figures.logged_in_work_ms),
        late_login_seconds: seconds(figures.late_login_ms),
        early_logout_seconds: seconds(figures.early_logout_ms),
        unscheduled_login_seconds: seconds(figures.unscheduled_login_ms),
        alarms: figures.alarms,
        approximate: figures.approximate,
    }
}
