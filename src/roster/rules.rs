//! Labour rules for self-rostering agents.

use serde::{Deserialize, Serialize};

/// The numbers behind the labour rules; every one is configurable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabourRules {
    /// Smallest contract, hours per week.
    pub min_contract_hours: f64,
    /// Largest contract, hours per week.
    pub max_contract_hours: f64,
    /// Longest block of consecutive work, hours. A break or other non-work
    /// activity ends a block.
    pub max_block_hours: f64,
    /// Most work in one local day, hours.
    pub max_day_hours: f64,
    /// A week becomes final this many weeks ahead; changes inside that
    /// window are flagged.
    pub final_weeks_ahead: u32,
}

impl Default for LabourRules {
    fn default() -> Self {
        LabourRules {
            min_contract_hours: 15.0,
            max_contract_hours: 28.0,
            max_block_hours: 3.0,
            max_day_hours: 6.0,
            final_weeks_ahead: 3,
        }
    }
}
