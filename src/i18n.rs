//! Languages for the texts that supervisors, planners and agents read:
//! roster violations, alarms, notices and the wall board. Code, logs and the
//! API stay English.

use serde::{Deserialize, Serialize};

use crate::domain::{ActivityType, NotReadyReason, StateGroup};

/// Language of a human-readable text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    /// Dutch, the first site's language.
    #[default]
    Nl,
    En,
}

impl Locale {
    /// Parses "nl" or "en" (case-insensitive).
    pub fn parse(code: &str) -> Option<Locale> {
        match code.trim().to_ascii_lowercase().as_str() {
            "nl" => Some(Locale::Nl),
            "en" => Some(Locale::En),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Nl => "nl",
            Locale::En => "en",
        }
    }
}

/// Returns the name of an activity as people read it.
pub fn activity_name(activity: ActivityType, locale: Locale) -> &'static str {
    match (locale, activity) {
        (Locale::Nl, ActivityType::PhoneDuty) => "telefoondienst",
        (Locale::Nl, ActivityType::Break) => "pauze",
        (Locale::Nl, ActivityType::Lunch) => "lunch",
        (Locale::Nl, ActivityType::Training) => "training",
        (Locale::Nl, ActivityType::Meeting) => "overleg",
        (Locale::Nl, ActivityType::Coaching) => "coaching",
        (Locale::Nl, ActivityType::TeamDay) => "teamdag",
        (Locale::Nl, ActivityType::ExtraHours) => "extra uren",
        (Locale::Nl, ActivityType::SentHome) => "naar huis gestuurd",
        (Locale::En, ActivityType::PhoneDuty) => "phone duty",
        (Locale::En, ActivityType::Break) => "break",
        (Locale::En, ActivityType::Lunch) => "lunch",
        (Locale::En, ActivityType::Training) => "training",
        (Locale::En, ActivityType::Meeting) => "meeting",
        (Locale::En, ActivityType::Coaching) => "coaching",
        (Locale::En, ActivityType::TeamDay) => "team day",
        (Locale::En, ActivityType::ExtraHours) => "extra hours",
        (Locale::En, ActivityType::SentHome) => "sent home",
    }
}

/// Returns the name of a state group as people read it.
pub fn state_name(group: StateGroup, locale: Locale) -> &'static str {
    match (locale, group) {
        (Locale::Nl, StateGroup::LoggedOut) => "uitgelogd",
        (Locale::Nl, StateGroup::Available) => "beschikbaar",
        (Locale::Nl, StateGroup::Ringing) => "gaat over",
        (Locale::Nl, StateGroup::OnCallInbound) => "in gesprek (inkomend)",
        (Locale::Nl, StateGroup::OnCallOutbound) => "in gesprek (uitgaand)",
        (Locale::Nl, StateGroup::Held) => "in de wacht",
        (Locale::Nl, StateGroup::WrapUp) => "nawerk",
        (Locale::Nl, StateGroup::NotReady(NotReadyReason::Break)) => "pauze",
        (Locale::Nl, StateGroup::NotReady(NotReadyReason::Lunch)) => "lunch",
        (Locale::Nl, StateGroup::NotReady(NotReadyReason::Training)) => "training",
        (Locale::Nl, StateGroup::NotReady(NotReadyReason::Meeting)) => "overleg",
        (Locale::Nl, StateGroup::NotReady(NotReadyReason::Coaching)) => "coaching",
        (Locale::Nl, StateGroup::NotReady(NotReadyReason::Technical)) => "storing",
        (Locale::Nl, StateGroup::NotReady(NotReadyReason::Other)) => "niet beschikbaar",
        (Locale::Nl, StateGroup::Unreachable) => "onbereikbaar",
        (Locale::En, StateGroup::LoggedOut) => "logged out",
        (Locale::En, StateGroup::Available) => "available",
        (Locale::En, StateGroup::Ringing) => "ringing",
        (Locale::En, StateGroup::OnCallInbound) => "on call (inbound)",
        (Locale::En, StateGroup::OnCallOutbound) => "on call (outbound)",
        (Locale::En, StateGroup::Held) => "on hold",
        (Locale::En, StateGroup::WrapUp) => "wrap-up",
        (Locale::En, StateGroup::NotReady(NotReadyReason::Break)) => "break",
        (Locale::En, StateGroup::NotReady(NotReadyReason::Lunch)) => "lunch",
        (Locale::En, StateGroup::NotReady(NotReadyReason::Training)) => "training",
        (Locale::En, StateGroup::NotReady(NotReadyReason::Meeting)) => "meeting",
        (Locale::En, StateGroup::NotReady(NotReadyReason::Coaching)) => "coaching",
        (Locale::En, StateGroup::NotReady(NotReadyReason::Technical)) => "technical problem",
        (Locale::En, StateGroup::NotReady(NotReadyReason::Other)) => "not ready",
        (Locale::En, StateGroup::Unreachable) => "unreachable",
    }
}

/// Returns the text of an alarm for supervisors. `since` is the local
/// clock time ("09:02") the agent went out of adherence.
pub fn alarm_text(
    kind: &str,
    agent_name: &str,
    group: StateGroup,
    activity: Option<ActivityType>,
    since: &str,
    locale: Locale,
) -> String {
    let activity = match activity {
        Some(activity) => activity_name(activity, locale),
        None => match locale {
            Locale::Nl => "vrije tijd",
            Locale::En => "unscheduled time",
        },
    };
    let state = state_name(group, locale);
    match (locale, kind) {
        (Locale::Nl, "not_logged_in") => {
            format!("{agent_name} is niet ingelogd tijdens {activity} (sinds {since})")
        }
        (Locale::Nl, "unreachable") => format!(
            "{agent_name} is onbereikbaar tijdens {activity}: toestel of thuisverbinding weggevallen (sinds {since})"
        ),
        (Locale::Nl, _) => format!("{agent_name} wijkt af van het rooster: {state} tijdens {activity} (sinds {since})"),
        (Locale::En, "not_logged_in") => {
            format!("{agent_name} is not logged in during {activity} (since {since})")
        }
        (Locale::En, "unreachable") => {
            format!("{agent_name} is unreachable during {activity}: device or home connection lost (since {since})")
        }
        (Locale::En, _) => format!("{agent_name} is out of adherence: {state} during {activity} (since {since})"),
    }
}

/// Returns the text of an unknown-state-code notice.
pub fn unknown_code_text(code: &str, source: &str, agent_name: &str, locale: Locale) -> String {
    match locale {
        Locale::Nl => format!(
            "Onbekende statuscode \"{code}\" van bron {source} (agent {agent_name}); neem de code op in [state_codes]"
        ),
        Locale::En => {
            format!("Unknown state code \"{code}\" from source {source} (agent {agent_name}); add it to [state_codes]")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_text_is_dutch_by_default() {
        let text = alarm_text(
            "not_logged_in",
            "Anna de Vries",
            StateGroup::LoggedOut,
            Some(ActivityType::PhoneDuty),
            "09:02",
            Locale::default(),
        );
        assert_eq!(text, "Anna de Vries is niet ingelogd tijdens telefoondienst (sinds 09:02)");
    }

    #[test]
    fn unreachable_text_names_the_connection() {
        let text = alarm_text("unreachable", "Anna", StateGroup::Unreachable, None, "09:02", Locale::En);
        assert!(text.contains("home connection lost"), "{text}");
    }
}
