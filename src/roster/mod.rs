//! The agent directory and the published roster: import from CSV and JSON,
//! the labour rules, swaps, and lookups the adherence engine uses.
//!
//! Everything here is pure: no clock (`now` is a parameter) and no I/O,
//! except [`check_file_report`], which reads one file for the CLI. Storing
//! the roster and serving it over the API live elsewhere. The file formats,
//! time rules and labour rules are described in `docs/roster.md`.

pub mod book;
pub mod directory;
pub mod error;
pub mod final_window;
pub mod import;
pub mod report;
pub mod rules;
pub mod swap;
mod table;
pub mod texts;
mod time;
pub mod violation;

use std::path::Path;

pub use book::{BookError, PeriodUpdate, RosterBook};
pub use directory::{AgentLookup, Directory, parse_agents};
pub use error::{Location, RosterError, RosterErrors};
pub use final_window::{changes_inside_final_window, final_window_end};
pub use import::{RosterDocument, parse_roster, parse_roster_document};
pub use report::{check_file_report, check_text_report};
pub use rules::{LabourRules, check, check_weeks, monday_of, weeks_touched};
pub use swap::{SwapError, SwapRequest, swap};
pub use violation::{Detail, LocalActivity, Rule, Violation};

/// The format of an agent directory or roster file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterFormat {
    Csv,
    Json,
}

// === impl RosterFormat ===

impl RosterFormat {
    /// Picks the format from the file extension: `.json` is JSON, anything
    /// else is read as CSV.
    pub fn from_path(path: &Path) -> RosterFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => RosterFormat::Json,
            _ => RosterFormat::Csv,
        }
    }

    /// Parses `csv` or `json` (case-insensitive).
    pub fn parse(name: &str) -> Option<RosterFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(RosterFormat::Csv),
            "json" => Some(RosterFormat::Json),
            _ => None,
        }
    }
}
