//! First stage of loading: TOML text to raw section structs.
//!
//! Every key is deserialized on its own, so one bad key does not hide the
//! next: each failure becomes a [`ConfigProblem`] with the dotted key, and the
//! key falls back to its default. Names of domain values (time zone, state
//! group, role, …) stay strings here; `validate` turns them into types.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::{EngineConfig, LimitsConfig, problem::ConfigProblem};
use crate::roster::LabourRules;

/// Collects problems while loading one configuration.
#[derive(Debug)]
pub(crate) struct Checker {
    /// Name of the config file, as the caller gave it.
    file: String,
    /// Dotted key → environment variable that set it.
    overrides: BTreeMap<String, String>,
    pub(crate) problems: Vec<ConfigProblem>,
    pub(crate) warnings: Vec<ConfigProblem>,
}

/// The whole file, section by section, before validation.
#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    pub site: RawSite,
    pub listen: RawListen,
    pub storage: RawStorage,
    pub roster: RawRoster,
    pub labour_rules: LabourRules,
    pub engine: EngineConfig,
    /// `None` when the section is absent, so the built-in table applies.
    pub state_codes: Option<BTreeMap<String, String>>,
    /// `None` when the section is absent, so the built-in matrix applies.
    pub adherence_rules: Option<Vec<RawRule>>,
    pub tokens: Vec<RawToken>,
    pub websocket: RawWebSocket,
    pub websocket_clients: Vec<RawClient>,
    pub limits: LimitsConfig,
    pub telemetry: RawTelemetry,
    pub sip: super::sip::RawSip,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawSite {
    pub name: String,
    pub time_zone: String,
    pub locale: String,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawListen {
    pub grpc: String,
    /// Empty disables the WebSocket ingest server.
    pub websocket: String,
    pub admin: String,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawStorage {
    pub state_dir: String,
    pub journal_batch_max: usize,
    pub journal_batch_delay_ms: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawRoster {
    /// Empty means no agents file.
    pub agents_file: String,
    /// Empty means no roster file.
    pub roster_file: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawRule {
    pub activity: Option<String>,
    #[serde(rename = "in")]
    pub in_adherence: Vec<String>,
    pub neutral: Vec<String>,
    pub threshold_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawToken {
    pub name: Option<String>,
    pub role: Option<String>,
    pub sha256: Option<String>,
    pub teams: Vec<String>,
    pub agent_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawWebSocket {
    pub max_message_bytes: usize,
    pub max_connections: usize,
    pub silence_timeout_seconds: u64,
    pub disconnect_grace_seconds: u64,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawClient {
    pub name: Option<String>,
    pub url: Option<String>,
    pub auth_header_env: Option<String>,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    pub log_format: String,
    pub log_filter: String,
}

/// Top-level sections, in the order the example file lists them.
const SECTIONS: [&str; 12] = [
    "site",
    "listen",
    "storage",
    "roster",
    "engine",
    "state_codes",
    "adherence",
    "auth",
    "websocket",
    "limits",
    "telemetry",
    "sip",
];

// === impl Checker ===

impl Checker {
    pub(crate) fn new(file: &str) -> Checker {
        Checker { file: file.to_owned(), overrides: BTreeMap::new(), problems: Vec::new(), warnings: Vec::new() }
    }

    pub(crate) fn record_override(&mut self, key: &str, variable: &str) {
        self.overrides.insert(key.to_owned(), variable.to_owned());
    }

    /// Returns the variable that overrode `key`, if any.
    pub(crate) fn override_of(&self, key: &str) -> Option<&str> {
        self.overrides.get(key).map(String::as_str)
    }

    /// Returns where the value of `key` came from: `$VARIABLE` for an
    /// override, else the file name.
    fn origin(&self, key: &str) -> String {
        match self.override_of(key) {
            Some(variable) => format!("${variable}"),
            None => self.file.clone(),
        }
    }

    pub(crate) fn problem(&mut self, key: &str, message: impl Into<String>, fix: impl Into<String>) {
        let problem = ConfigProblem::new(self.origin(key), key, message, fix);
        self.problems.push(problem);
    }

    pub(crate) fn warning(&mut self, key: &str, message: impl Into<String>, fix: impl Into<String>) {
        let warning = ConfigProblem::new(self.origin(key), key, message, fix);
        self.warnings.push(warning);
    }

    /// Records a finding about an environment variable itself rather than
    /// about a key.
    pub(crate) fn environment_warning(&mut self, variable: &str, message: impl Into<String>, fix: impl Into<String>) {
        let warning = ConfigProblem::new("environment", variable, message, fix);
        self.warnings.push(warning);
    }

    /// Sorts problems by section in the order of the example file, keeping
    /// the order within a section, so the report reads top to bottom.
    pub(crate) fn sort_problems(&mut self) {
        let rank = |problem: &ConfigProblem| {
            let section = problem.key.split(['.', '[']).next().unwrap_or_default();
            SECTIONS.iter().position(|s| *s == section).unwrap_or(SECTIONS.len())
        };
        self.problems.sort_by_key(rank);
    }

    /// Records a serde error for `key`, rewording Rust type names.
    fn serde_problem(&mut self, key: &str, message: &str) {
        let message = message
            .replace("expected usize", "expected a whole number of 0 or more")
            .replace("expected u64", "expected a whole number of 0 or more")
            .replace("expected u32", "expected a whole number of 0 or more")
            .replace("expected f64", "expected a number");

        let fix = if message.starts_with("unknown field") {
            "remove the key or correct its spelling"
        } else if message.contains("whole number") {
            "write a whole number of 0 or more without quotes"
        } else if message.contains("expected a number") {
            "write a number without quotes, such as 22.5"
        } else if message.contains("expected a string") {
            "write the value in double quotes"
        } else if message.contains("expected a sequence") {
            "write a list such as [\"available\", \"wrap_up\"]"
        } else {
            "write the value in the form docs/configuration.md gives for this key"
        };
        self.problem(key, message, fix);
    }

    /// Deserializes one section, key by key; a key that fails is reported
    /// and left at its default.
    fn section<T: DeserializeOwned + Default>(&mut self, table: &Table, path: &str) -> T {
        let mut accepted = Table::new();
        for (key, value) in table {
            let single = Table::from_iter([(key.clone(), value.clone())]);
            match Value::Table(single).try_into::<T>() {
                Ok(_) => {
                    accepted.insert(key.clone(), value.clone());
                }
                Err(error) => self.serde_problem(&join(path, key), error.message()),
            }
        }

        match Value::Table(accepted).try_into::<T>() {
            Ok(section) => section,
            Err(error) => {
                self.serde_problem(path, error.message());
                T::default()
            }
        }
    }

    /// Returns the table at `key`, or reports that the value is not one.
    fn expect_table<'a>(&mut self, value: &'a Value, key: &str) -> Option<&'a Table> {
        match value {
            Value::Table(table) => Some(table),
            other => {
                self.problem(
                    key,
                    format!("expected a table, found {}", other.type_str()),
                    format!("write it as a [{key}] section"),
                );
                None
            }
        }
    }

    /// Returns the tables of an array of tables such as `[[adherence.rule]]`,
    /// each with its index; entries that are not tables are reported.
    fn expect_table_array<'a>(&mut self, value: &'a Value, key: &str) -> Vec<(usize, &'a Table)> {
        let Value::Array(items) = value else {
            self.problem(
                key,
                format!("expected an array of tables, found {}", value.type_str()),
                format!("write each entry as a [[{key}]] section"),
            );
            return Vec::new();
        };

        let mut tables = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::Table(table) => tables.push((index, table)),
                other => self.problem(
                    &format!("{key}[{index}]"),
                    format!("expected a table, found {}", other.type_str()),
                    format!("write each entry as a [[{key}]] section"),
                ),
            }
        }
        tables
    }
}

// === impl RawConfig ===

impl RawConfig {
    /// Splits the document into sections, reporting unknown sections and
    /// keys and values of the wrong type.
    pub(crate) fn from_table(doc: &Table, checker: &mut Checker) -> RawConfig {
        let mut raw = RawConfig::default();

        for (name, value) in doc {
            if !SECTIONS.contains(&name.as_str()) {
                checker.problem(
                    name,
                    format!("unknown section \"{name}\""),
                    format!("remove it or correct its spelling; sections are {}", SECTIONS.join(", ")),
                );
                continue;
            }
            let Some(table) = checker.expect_table(value, name) else {
                continue;
            };
            raw.read_section(name, table, checker);
        }
        raw
    }

    fn read_section(&mut self, name: &str, table: &Table, checker: &mut Checker) {
        match name {
            "site" => self.site = checker.section(table, name),
            "listen" => self.listen = checker.section(table, name),
            "storage" => self.storage = checker.section(table, name),
            "roster" => {
                let (nested, rest) = split_off(table, "labour_rules");
                self.roster = checker.section(&rest, name);
                if let Some(value) = nested {
                    let key = "roster.labour_rules";
                    if let Some(rules) = checker.expect_table(value, key) {
                        self.labour_rules = checker.section(rules, key);
                    }
                }
            }
            "engine" => self.engine = checker.section(table, name),
            "state_codes" => self.state_codes = Some(read_state_codes(table, checker)),
            "adherence" => {
                let (rules, rest) = split_off(table, "rule");
                report_unknown_keys(&rest, name, "rule", checker);
                let rules = rules.map(|value| checker.expect_table_array(value, "adherence.rule"));
                self.adherence_rules = rules.map(|entries| {
                    entries
                        .into_iter()
                        .map(|(i, entry)| checker.section(entry, &format!("adherence.rule[{i}]")))
                        .collect()
                });
            }
            "auth" => {
                let (tokens, rest) = split_off(table, "token");
                report_unknown_keys(&rest, name, "token", checker);
                if let Some(value) = tokens {
                    self.tokens = checker
                        .expect_table_array(value, "auth.token")
                        .into_iter()
                        .map(|(i, entry)| checker.section(entry, &format!("auth.token[{i}]")))
                        .collect();
                }
            }
            "websocket" => {
                let (clients, rest) = split_off(table, "client");
                self.websocket = checker.section(&rest, name);
                if let Some(value) = clients {
                    self.websocket_clients = checker
                        .expect_table_array(value, "websocket.client")
                        .into_iter()
                        .map(|(i, entry)| checker.section(entry, &format!("websocket.client[{i}]")))
                        .collect();
                }
            }
            "limits" => self.limits = checker.section(table, name),
            "telemetry" => self.telemetry = checker.section(table, name),
            "sip" => self.sip = checker.section(table, name),
            _ => {}
        }
    }
}

impl Default for RawSite {
    fn default() -> Self {
        RawSite { name: "floorwatch".into(), time_zone: "Europe/Amsterdam".into(), locale: "nl".into() }
    }
}

impl Default for RawListen {
    fn default() -> Self {
        RawListen { grpc: "127.0.0.1:50051".into(), websocket: String::new(), admin: "127.0.0.1:9464".into() }
    }
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage { state_dir: "/var/lib/floorwatch".into(), journal_batch_max: 4096, journal_batch_delay_ms: 2 }
    }
}

impl Default for RawWebSocket {
    fn default() -> Self {
        RawWebSocket {
            max_message_bytes: 65_536,
            max_connections: 256,
            silence_timeout_seconds: 90,
            disconnect_grace_seconds: 10,
        }
    }
}

impl Default for RawClient {
    fn default() -> Self {
        RawClient { name: None, url: None, auth_header_env: None, initial_backoff_ms: 500, max_backoff_ms: 30_000 }
    }
}

impl Default for RawTelemetry {
    fn default() -> Self {
        RawTelemetry { log_format: "text".into(), log_filter: "info".into() }
    }
}

/// Parses TOML text into a table, reporting a syntax error with its line and
/// column.
pub(crate) fn parse_document(text: &str, checker: &mut Checker) -> Option<Table> {
    match text.parse::<Table>() {
        Ok(table) => Some(table),
        Err(error) => {
            let position = error
                .span()
                .map(|span| line_column(text, span.start))
                .map(|(line, column)| format!(" at line {line}, column {column}"))
                .unwrap_or_default();
            checker.problem(
                "",
                format!("invalid TOML{position}: {}", error.message()),
                "correct the TOML syntax at that position",
            );
            None
        }
    }
}

/// Returns the 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// Returns the value of `key` and a copy of `table` without it.
fn split_off<'a>(table: &'a Table, key: &str) -> (Option<&'a Value>, Table) {
    let mut rest = table.clone();
    rest.remove(key);
    (table.get(key), rest)
}

fn report_unknown_keys(rest: &Table, section: &str, only_key: &str, checker: &mut Checker) {
    for key in rest.keys() {
        checker.problem(
            &format!("{section}.{key}"),
            format!("unknown key \"{key}\"; [{section}] holds only [[{section}.{only_key}]] entries"),
            "remove the key or correct its spelling",
        );
    }
}

fn read_state_codes(table: &Table, checker: &mut Checker) -> BTreeMap<String, String> {
    let mut codes = BTreeMap::new();
    for (code, value) in table {
        match value {
            Value::String(group) => {
                codes.insert(code.clone(), group.clone());
            }
            other => checker.problem(
                &format!("state_codes.{}", quote_key(code)),
                format!("expected a state group name, found {}", other.type_str()),
                "write the group name in double quotes, such as \"available\"",
            ),
        }
    }
    codes
}

/// Returns a key as it must be written in a dotted path: bare when it is
/// made of letters, digits, `_` and `-`, else in double quotes.
pub(crate) fn quote_key(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { key.to_owned() } else { format!("\"{key}\"") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "a = 1\nbé = x\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(line_column(text, 12), (2, 6));
    }

    #[test]
    fn quote_key_quotes_spaces() {
        assert_eq!(quote_key("ACW"), "ACW");
        assert_eq!(quote_key("Logged out"), "\"Logged out\"");
    }
}
