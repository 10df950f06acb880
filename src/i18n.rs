//! Languages for the texts that supervisors, planners and agents read:
//! roster violations, alarms, notices and the wall board. Code, logs and the
//! API stay English.

use serde::{Deserialize, Serialize};

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
