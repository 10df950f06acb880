//! A broken labour rule: which agent, which day, which rule, and the
//! numbers, with a sentence in Dutch or English for the planner.

use std::fmt;

use jiff::civil::{Date, DateTime};
use serde::{Deserialize, Serialize};

use crate::domain::{ActivityType, AgentId};
use crate::i18n::Locale;

/// The labour rules, by their stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The agent's contract lies outside the allowed range of hours.
    ContractHoursRange,
    /// The work scheduled in an ISO week differs from the contract hours.
    WeeklyContractHours,
    /// A block of consecutive work is longer than allowed.
    MaxBlockHours,
    /// A local day has more work than allowed.
    MaxDayHours,
    /// Two activities of one agent overlap.
    OverlappingActivities,
    /// A published activity inside the final window was added, removed or
    /// changed.
    ChangeInsideFinalWindow,
    /// The roster names an agent that the directory does not know.
    UnknownAgent,
}

/// One broken rule.
///
/// `value` and `limit` depend on the rule:
///
/// | rule | value | limit |
/// |---|---|---|
/// | `contract_hours_range` | contract hours | the bound it breaks (min or max) |
/// | `weekly_contract_hours` | hours of work scheduled in the week | contract hours |
/// | `max_block_hours` | hours in the block | max block hours |
/// | `max_day_hours` | hours of work in the day | max day hours |
/// | `overlapping_activities` | hours of overlap | 0 |
/// | `change_inside_final_window` | hours of the changed activity | final weeks ahead |
/// | `unknown_agent` | number of activities | 0 |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub agent_id: AgentId,
    /// The local day; for weekly rules, the Monday of the ISO week.
    pub date: Date,
    pub rule: Rule,
    pub value: f64,
    pub limit: f64,
    /// The activities or block the violation is about, in local time.
    pub detail: Detail,
}

/// Activities or block a violation points at, in local site time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    None,
    /// A block of consecutive work.
    Block {
        start: DateTime,
        end: DateTime,
    },
    Overlap {
        first: LocalActivity,
        second: LocalActivity,
    },
    Added {
        activity: LocalActivity,
    },
    Removed {
        activity: LocalActivity,
    },
    Changed {
        before: LocalActivity,
        after: LocalActivity,
    },
}

/// An activity with its start and end in local site time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LocalActivity {
    pub activity: ActivityType,
    pub start: DateTime,
    pub end: DateTime,
}

// === impl Rule ===

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::ContractHoursRange,
        Rule::WeeklyContractHours,
        Rule::MaxBlockHours,
        Rule::MaxDayHours,
        Rule::OverlappingActivities,
        Rule::ChangeInsideFinalWindow,
        Rule::UnknownAgent,
    ];

    /// Returns the stable snake_case name used in the API and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ContractHoursRange => "contract_hours_range",
            Rule::WeeklyContractHours => "weekly_contract_hours",
            Rule::MaxBlockHours => "max_block_hours",
            Rule::MaxDayHours => "max_day_hours",
            Rule::OverlappingActivities => "overlapping_activities",
            Rule::ChangeInsideFinalWindow => "change_inside_final_window",
            Rule::UnknownAgent => "unknown_agent",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.as_str() == name)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Violation ===

impl Violation {
    /// Returns a full sentence in `locale` naming the agent, the day, the
    /// rule and the numbers.
    pub fn text(&self, locale: Locale) -> String {
        super::texts::violation_text(self, locale)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(Locale::En))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_round_trip() {
        for rule in Rule::ALL {
            assert_eq!(Rule::parse(rule.as_str()), Some(rule), "{rule}");
        }
    }

    #[test]
    fn rule_serializes_snake_case() {
        let json = serde_json::to_string(&Rule::MaxBlockHours).expect("rule serializes");
        assert_eq!(json, "\"max_block_hours\"");
    }
}
