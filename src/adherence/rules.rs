//! The adherence rule matrix: for each scheduled activity (or nothing
//! scheduled) and each state group, whether the agent is in adherence, out of
//! adherence or neutral, and how long an out-of-adherence period may last
//! before it raises an alarm.

use crate::domain::{ActivityType, AdherenceStatus, StateGroup};

/// Verdict of the matrix for one (activity, state group) cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVerdict {
    In,
    Out,
    Neutral,
}

/// One row of the matrix as configuration states it: the groups listed in
/// `in_groups` and `neutral_groups` count as such, every other group is out
/// of adherence.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// `None` is the row for "nothing scheduled".
    pub activity: Option<ActivityType>,
    pub in_groups: Vec<StateGroup>,
    pub neutral_groups: Vec<StateGroup>,
    /// Grace period before an out-of-adherence period raises an alarm.
    pub threshold_ms: i64,
}

/// Dense lookup table built from [`RuleSpec`]s; a lookup is two array
/// indexes, because the engine consults it on every state change.
#[derive(Debug, Clone)]
pub struct RuleMatrix {
    cells: [[RuleVerdict; GROUPS]; ROWS],
    thresholds_ms: [i64; ROWS],
}

const GROUPS: usize = StateGroup::ALL.len();
const ROWS: usize = ActivityType::ALL.len() + 1;

// === impl RuleMatrix ===

impl RuleMatrix {
    /// Builds the matrix. Rows not given default to "every group neutral"
    /// with `default_threshold_ms`, so a missing row never raises alarms.
    pub fn new(specs: &[RuleSpec], default_threshold_ms: i64) -> RuleMatrix {
        let mut matrix =
            RuleMatrix { cells: [[RuleVerdict::Neutral; GROUPS]; ROWS], thresholds_ms: [default_threshold_ms; ROWS] };

        for spec in specs {
            let row = row_index(spec.activity);
            matrix.cells[row] = [RuleVerdict::Out; GROUPS];
            for group in &spec.in_groups {
                matrix.cells[row][group_index(*group)] = RuleVerdict::In;
            }
            for group in &spec.neutral_groups {
                matrix.cells[row][group_index(*group)] = RuleVerdict::Neutral;
            }
            matrix.thresholds_ms[row] = spec.threshold_ms;
        }
        matrix
    }

    pub fn verdict(&self, activity: Option<ActivityType>, group: StateGroup) -> RuleVerdict {
        self.cells[row_index(activity)][group_index(group)]
    }

    /// Returns the adherence status for the cell (never `Unknown` or
    /// `Excused`: those come from feed health and exceptions).
    pub fn status(&self, activity: Option<ActivityType>, group: StateGroup) -> AdherenceStatus {
        match self.verdict(activity, group) {
            RuleVerdict::In => AdherenceStatus::InAdherence,
            RuleVerdict::Out => AdherenceStatus::OutOfAdherence,
            RuleVerdict::Neutral => AdherenceStatus::Neutral,
        }
    }

    pub fn threshold_ms(&self, activity: Option<ActivityType>) -> i64 {
        self.thresholds_ms[row_index(activity)]
    }
}

fn row_index(activity: Option<ActivityType>) -> usize {
    match activity {
        None => ActivityType::ALL.len(),
        Some(activity) => activity as usize,
    }
}

/// Position of a group in [`StateGroup::ALL`].
pub(crate) fn group_index(group: StateGroup) -> usize {
    match group {
        StateGroup::LoggedOut => 0,
        StateGroup::Available => 1,
        StateGroup::Ringing => 2,
        StateGroup::OnCallInbound => 3,
        StateGroup::OnCallOutbound => 4,
        StateGroup::Held => 5,
        StateGroup::WrapUp => 6,
        StateGroup::NotReady(reason) => 7 + reason as usize,
        StateGroup::Unreachable => 14,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NotReadyReason;

    #[test]
    fn group_index_matches_all_order() {
        for (i, group) in StateGroup::ALL.into_iter().enumerate() {
            assert_eq!(group_index(group), i, "{group}");
        }
    }

    #[test]
    fn unlisted_groups_are_out() {
        let matrix = RuleMatrix::new(
            &[RuleSpec {
                activity: Some(ActivityType::PhoneDuty),
                in_groups: vec![StateGroup::Available],
                neutral_groups: vec![StateGroup::NotReady(NotReadyReason::Technical)],
                threshold_ms: 60_000,
            }],
            120_000,
        );
        let duty = Some(ActivityType::PhoneDuty);
        assert_eq!(matrix.verdict(duty, StateGroup::Available), RuleVerdict::In);
        assert_eq!(matrix.verdict(duty, StateGroup::NotReady(NotReadyReason::Technical)), RuleVerdict::Neutral);
        assert_eq!(matrix.verdict(duty, StateGroup::LoggedOut), RuleVerdict::Out);
        assert_eq!(matrix.threshold_ms(duty), 60_000);
    }

    #[test]
    fn missing_row_is_neutral() {
        let matrix = RuleMatrix::new(&[], 120_000);
        assert_eq!(matrix.verdict(None, StateGroup::Available), RuleVerdict::Neutral);
        assert_eq!(matrix.threshold_ms(Some(ActivityType::Break)), 120_000);
    }
}
