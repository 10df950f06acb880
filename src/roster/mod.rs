//! The agent directory and the published roster: import from CSV and JSON,
//! the labour rules, swaps, and lookups the adherence engine uses.

pub mod rules;

pub use rules::LabourRules;
