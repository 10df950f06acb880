//! Configuration problems: what is wrong, where the value came from, and how
//! to fix it.

use std::fmt;

/// One thing wrong with the configuration.
///
/// Displays as `FILE: KEY: MESSAGE; fix: FIX`, for example
/// `config/floorwatch.toml: site.time_zone: unknown time zone "Europe/Amsterdm";
/// fix: use an IANA name such as Europe/Amsterdam`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Origin of the value: the config file as the caller named it, or
    /// `$FLOORWATCH_…` when an environment override set it.
    pub file: String,
    /// Dotted path of the key; array entries count from 0
    /// (`adherence.rule[2].in[1]`). Empty for a problem with the whole file.
    pub key: String,
    /// Description of the fault, naming the offending value.
    pub message: String,
    /// Action that fixes the problem.
    pub fix: String,
}

/// Every problem found in one configuration; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub problems: Vec<ConfigProblem>,
}

// === impl ConfigProblem ===

impl ConfigProblem {
    pub fn new(
        file: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigProblem {
        ConfigProblem { file: file.into(), key: key.into(), message: message.into(), fix: fix.into() }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}; fix: {}", self.message, self.fix)
    }
}

// === impl ConfigErrors ===

impl ConfigErrors {
    /// Returns true when some problem concerns `key` exactly.
    pub fn has_key(&self, key: &str) -> bool {
        self.problems.iter().any(|p| p.key == key)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        write!(f, "invalid configuration, {count} {noun}:")?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display_names_file_key_and_fix() {
        let problem = ConfigProblem::new(
            "config/floorwatch.toml",
            "site.time_zone",
            "unknown time zone \"Europe/Amsterdm\"",
            "use an IANA name such as Europe/Amsterdam",
        );
        assert_eq!(
            problem.to_string(),
            "config/floorwatch.toml: site.time_zone: unknown time zone \"Europe/Amsterdm\"; \
             fix: use an IANA name such as Europe/Amsterdam"
        );
    }

    #[test]
    fn problem_display_without_key() {
        let problem = ConfigProblem::new("x.toml", "", "file not found", "create it");
        assert_eq!(problem.to_string(), "x.toml: file not found; fix: create it");
    }
}
