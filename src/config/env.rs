//! Environment overrides: `FLOORWATCH_<SECTION>_<KEY>` replaces one scalar
//! key of the config file before validation.
//!
//! The environment is passed in as an [`Env`] value, so tests and
//! `check-config` never read or change the process environment behind the
//! caller's back. Tables and arrays (`state_codes`, `[[adherence.rule]]`,
//! `[[auth.token]]`, `[[websocket.client]]`) cannot be overridden.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::parse::Checker;

/// Prefix shared by every override variable.
pub const ENV_PREFIX: &str = "FLOORWATCH_";

/// Variables with this prefix that the binary reads itself and that are
/// therefore not reported as unknown overrides.
const NOT_OVERRIDES: [&str; 1] = ["FLOORWATCH_CONFIG"];

/// A snapshot of environment variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

/// Type an override's text is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Taken as written; an empty string is kept (it disables optional keys).
    Text,
    /// A whole number of 0 or more.
    Integer,
    /// A decimal number such as `22.5`.
    Number,
}

/// One overridable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Override {
    /// Dotted section path, `roster.labour_rules` for a nested section.
    pub section: &'static str,
    pub key: &'static str,
    pub kind: ValueKind,
}

/// Every key an environment variable can set.
pub const OVERRIDES: &[Override] = &[
    Override::text("site", "name"),
    Override::text("site", "time_zone"),
    Override::text("site", "locale"),
    Override::text("listen", "grpc"),
    Override::text("listen", "websocket"),
    Override::text("listen", "admin"),
    Override::text("storage", "state_dir"),
    Override::integer("storage", "journal_batch_max"),
    Override::integer("storage", "journal_batch_delay_ms"),
    Override::text("roster", "agents_file"),
    Override::text("roster", "roster_file"),
    Override::number("roster.labour_rules", "min_contract_hours"),
    Override::number("roster.labour_rules", "max_contract_hours"),
    Override::number("roster.labour_rules", "max_block_hours"),
    Override::number("roster.labour_rules", "max_day_hours"),
    Override::integer("roster.labour_rules", "final_weeks_ahead"),
    Override::integer("engine", "max_clock_skew_seconds"),
    Override::integer("engine", "default_alarm_threshold_seconds"),
    Override::integer("engine", "history_limit_per_agent_day"),
    Override::integer("engine", "source_silence_seconds"),
    Override::integer("websocket", "max_message_bytes"),
    Override::integer("websocket", "max_connections"),
    Override::integer("websocket", "silence_timeout_seconds"),
    Override::integer("websocket", "disconnect_grace_seconds"),
    Override::integer("limits", "floor_retained_changes"),
    Override::integer("limits", "floor_client_buffer"),
    Override::integer("limits", "max_stream_clients"),
    Override::integer("limits", "ingest_max_batch"),
    Override::integer("limits", "max_agents"),
    Override::integer("limits", "ingest_queue"),
    Override::text("telemetry", "log_format"),
    Override::text("telemetry", "log_filter"),
    Override::text("sip", "outbound_proxy"),
    Override::text("sip", "identity"),
    Override::text("sip", "auth_username"),
    Override::text("sip", "auth_password"),
    Override::integer("sip", "expires_seconds"),
];

// === impl Env ===

impl Env {
    /// Returns an environment with no variables.
    pub fn empty() -> Env {
        Env::default()
    }

    /// Copies the process environment, skipping variables whose name or
    /// value is not valid UTF-8.
    pub fn from_process() -> Env {
        let vars = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Env { vars }
    }

    /// Returns this environment with `name` set to `value`.
    pub fn with(mut self, name: &str, value: &str) -> Env {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Returns the `FLOORWATCH_` variables that match no override, most
    /// likely misspelt.
    pub fn unknown_overrides(&self) -> Vec<&str> {
        self.vars
            .keys()
            .map(String::as_str)
            .filter(|name| name.starts_with(ENV_PREFIX))
            .filter(|name| !NOT_OVERRIDES.contains(name))
            .filter(|name| !OVERRIDES.iter().any(|o| o.variable() == *name))
            .collect()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Env {
        let vars = iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Env { vars }
    }
}

// === impl Override ===

impl Override {
    const fn text(section: &'static str, key: &'static str) -> Override {
        Override { section, key, kind: ValueKind::Text }
    }

    const fn integer(section: &'static str, key: &'static str) -> Override {
        Override { section, key, kind: ValueKind::Integer }
    }

    const fn number(section: &'static str, key: &'static str) -> Override {
        Override { section, key, kind: ValueKind::Number }
    }

    /// Returns the variable name: `FLOORWATCH_`, the section path with `.`
    /// as `_`, `_`, the key, all upper case.
    pub fn variable(&self) -> String {
        let section = self.section.replace('.', "_");
        format!("{ENV_PREFIX}{section}_{}", self.key).to_ascii_uppercase()
    }

    /// Returns the dotted key, `engine.max_clock_skew_seconds`.
    pub fn dotted_key(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }

    fn to_value(self, text: &str) -> Result<Value, (String, String)> {
        match self.kind {
            ValueKind::Text => Ok(Value::String(text.to_owned())),
            ValueKind::Integer => match text.trim().parse::<u64>().ok().and_then(|n| i64::try_from(n).ok()) {
                Some(n) => Ok(Value::Integer(n)),
                None => Err(("is not a whole number of 0 or more".into(), "a whole number such as 30".into())),
            },
            ValueKind::Number => match text.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Value::Float(n)),
                _ => Err(("is not a number".into(), "a number such as 22.5".into())),
            },
        }
    }
}

/// Applies every override set in `env` to the parsed document, recording
/// each overridden key in `checker` so later problems name the variable.
pub(crate) fn apply_overrides(doc: &mut Table, env: &Env, checker: &mut Checker) {
    for entry in OVERRIDES {
        let variable = entry.variable();
        let Some(text) = env.get(&variable) else {
            continue;
        };
        let dotted = entry.dotted_key();
        checker.record_override(&dotted, &variable);

        let value = match entry.to_value(text) {
            Ok(value) => value,
            Err((what, example)) => {
                checker.problem(
                    &dotted,
                    format!("{variable}=\"{text}\" {what}"),
                    format!("set {variable} to {example}, or unset it"),
                );
                continue;
            }
        };

        // A section that exists but is not a table is reported by the
        // parser; the override then has nowhere to go.
        if let Some(section) = section_table_mut(doc, entry.section) {
            section.insert(entry.key.to_owned(), value);
        }
    }
}

/// Returns the table at a dotted section path, creating missing tables.
fn section_table_mut<'a>(doc: &'a mut Table, path: &str) -> Option<&'a mut Table> {
    let mut table = doc;
    for part in path.split('.') {
        let entry = table.entry(part.to_owned()).or_insert_with(|| Value::Table(Table::new()));
        table = entry.as_table_mut()?;
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_section_and_key() {
        let grpc = Override::text("listen", "grpc");
        assert_eq!(grpc.variable(), "FLOORWATCH_LISTEN_GRPC");

        let nested = Override::number("roster.labour_rules", "max_block_hours");
        assert_eq!(nested.variable(), "FLOORWATCH_ROSTER_LABOUR_RULES_MAX_BLOCK_HOURS");
    }

    #[test]
    fn variable_names_are_unique() {
        let mut names: Vec<String> = OVERRIDES.iter().map(Override::variable).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), OVERRIDES.len());
    }

    #[test]
    fn unknown_overrides_lists_misspelt_names() {
        let env = Env::empty()
            .with("FLOORWATCH_LISTEN_GRPC", "127.0.0.1:0")
            .with("FLOORWATCH_LISTEN_GRCP", "127.0.0.1:0")
            .with("FLOORWATCH_CONFIG", "/etc/floorwatch/floorwatch.toml")
            .with("HOME", "/root");
        assert_eq!(env.unknown_overrides(), vec!["FLOORWATCH_LISTEN_GRCP"]);
    }

    #[test]
    fn integer_override_rejects_negative() {
        let entry = Override::integer("engine", "max_clock_skew_seconds");
        assert!(entry.to_value("-3").is_err());
        assert_eq!(entry.to_value(" 45 "), Ok(Value::Integer(45)));
    }
}
