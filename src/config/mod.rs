//! Configuration: the TOML file, environment overrides and validation.
//!
//! [`Config::load`] reads the file, applies `FLOORWATCH_<SECTION>_<KEY>`
//! overrides from an [`Env`], and validates everything before the daemon
//! binds a port. It reports every problem it finds, each with the file, the
//! dotted key and a fix, rather than stopping at the first. Loading never
//! binds ports or creates files; it only checks that the input files it names
//! exist.
//!
//! Relative paths in the file are relative to the file's directory; relative
//! paths in an override are relative to the working directory.

mod adherence;
mod auth;
mod env;
mod parse;
mod problem;
mod sip;
mod validate;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::domain::StateGroup;
use crate::i18n::Locale;
use crate::roster::LabourRules;
use crate::telemetry::LogFormat;

pub use adherence::{AdherenceConfig, AdherenceRule, NOTHING_SCHEDULED, default_rules};
pub use auth::{ApiToken, AuthConfig, Role, hash_token};
pub use env::{ENV_PREFIX, Env, OVERRIDES, Override, ValueKind};
pub use problem::{ConfigErrors, ConfigProblem};
pub use sip::{SipConfig, SipListener, SipTransport, parse_listener, parse_proxy};

/// The example configuration of the first site, compiled in; `floorwatch
/// demo` runs on it.
pub const DEFAULT_TOML: &str = include_str!("../../config/floorwatch.toml");

/// A loaded and validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub site: SiteConfig,
    pub listen: ListenConfig,
    pub storage: StorageConfig,
    pub roster: RosterConfig,
    pub engine: EngineConfig,
    pub state_codes: StateCodes,
    pub adherence: AdherenceConfig,
    pub auth: AuthConfig,
    pub websocket: WebSocketConfig,
    pub limits: LimitsConfig,
    pub telemetry: TelemetryConfig,
    /// SIP ingest; `None` unless `[sip] enabled = true`.
    pub sip: Option<SipConfig>,
    /// Name of the source, for log lines: the path as given, or a label for
    /// embedded text.
    pub source: String,
    /// Findings that do not stop the daemon, such as a misspelt
    /// `FLOORWATCH_` variable; the daemon logs them at start-up.
    pub warnings: Vec<ConfigProblem>,
}

#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// Shown in logs and on the wall board.
    pub name: String,
    /// Zone the roster and the daily figures are read in.
    pub time_zone: TimeZone,
    /// Language of texts people read: violations, alarms, notices.
    pub locale: Locale,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenConfig {
    pub grpc: SocketAddr,
    /// WebSocket ingest server for a platform that pushes events; `None`
    /// when disabled.
    pub websocket: Option<SocketAddr>,
    /// HTTP admin endpoint: /metrics, /healthz, /readyz.
    pub admin: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Absolute; the daemon creates it when missing.
    pub state_dir: PathBuf,
    /// Most events written in one journal transaction.
    pub journal_batch_max: usize,
    /// Maximum wait, in milliseconds, for more events before a batch is
    /// committed.
    pub journal_batch_delay_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RosterConfig {
    /// Agent directory to import at start-up, CSV or JSON by extension.
    pub agents_file: Option<PathBuf>,
    /// Roster published at start-up when the journal contains none yet.
    pub roster_file: Option<PathBuf>,
    pub labour_rules: LabourRules,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// An event's source time is used when it lies within this many seconds
    /// of the receive time; otherwise the receive time is used.
    pub max_clock_skew_seconds: u64,
    /// Alarm threshold for rules that set none.
    pub default_alarm_threshold_seconds: u64,
    /// Most state changes kept per agent per day; later ones are counted but
    /// not stored, so one flapping agent cannot exhaust memory.
    pub history_limit_per_agent_day: usize,
    /// A source that sends nothing for this long is unhealthy, and its
    /// agents' adherence becomes unknown.
    pub source_silence_seconds: u64,
}

/// Platform state code → state group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCodes {
    codes: BTreeMap<String, StateGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// Larger messages close the connection.
    pub max_message_bytes: usize,
    /// Most concurrent connections to the WebSocket ingest server.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed.
    pub silence_timeout_seconds: u64,
    /// How long a dropped feed may reconnect before its agents become
    /// unreachable.
    pub disconnect_grace_seconds: u64,
    /// Platform feeds floorwatch connects to.
    pub clients: Vec<WebSocketClientConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketClientConfig {
    /// Unique; events from this feed carry it as their source.
    pub name: String,
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// Environment variable holding the `Authorization` header value, so
    /// the secret stays out of the file.
    pub auth_header_env: Option<String>,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Floor changes kept for clients that resume; older positions get a
    /// fresh snapshot.
    pub floor_retained_changes: usize,
    /// Messages queued per stream client before its updates are coalesced.
    pub floor_client_buffer: usize,
    /// Most concurrent stream clients over all streams.
    pub max_stream_clients: usize,
    /// Maximum events in one gRPC ingest request.
    pub ingest_max_batch: usize,
    /// Maximum agents in the directory.
    pub max_agents: usize,
    /// Ingest requests queued for the engine before submitters wait.
    pub ingest_queue: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// `tracing_subscriber::EnvFilter` directives, such as
    /// `info,floorwatch::sip=debug`.
    pub log_filter: String,
}

// === impl Config ===

impl Config {
    /// Reads, overrides and validates the config file at `path`.
    pub fn load(path: &Path, env: &Env) -> Result<Config, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigErrors {
            problems: vec![ConfigProblem::new(
                &name,
                "",
                format!("cannot read the config file: {error}"),
                "check the path given with --config and the file's permissions",
            )],
        })?;

        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base_dir = absolute.parent().unwrap_or(Path::new("/"));
        Config::from_str_with(&text, &name, base_dir, env)
    }

    /// Parses and validates `text` without environment overrides; relative
    /// paths are resolved against the directory part of `name`.
    pub fn from_str_named(text: &str, name: &str) -> Result<Config, ConfigErrors> {
        let base_dir = Path::new(name).parent().filter(|dir| !dir.as_os_str().is_empty());
        let base_dir = base_dir.unwrap_or(Path::new("."));
        let base_dir = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
        Config::from_str_with(text, name, &base_dir, &Env::empty())
    }

    /// Parses `text`, applies the overrides in `env` and validates; relative
    /// paths in the text are resolved against `base_dir`.
    pub fn from_str_with(text: &str, name: &str, base_dir: &Path, env: &Env) -> Result<Config, ConfigErrors> {
        let mut checker = parse::Checker::new(name);

        let Some(mut doc) = parse::parse_document(text, &mut checker) else {
            return Err(ConfigErrors { problems: checker.problems });
        };
        env::apply_overrides(&mut doc, env, &mut checker);
        for variable in env.unknown_overrides() {
            checker.environment_warning(
                variable,
                "matches no configuration key and is ignored",
                "correct its name (docs/configuration.md lists every override) or unset it",
            );
        }

        let raw = parse::RawConfig::from_table(&doc, &mut checker);
        let config = validate::build(raw, name, base_dir, env, &mut checker);
        checker.sort_problems();
        if checker.problems.is_empty() {
            Ok(Config { warnings: checker.warnings, ..config })
        } else {
            Err(ConfigErrors { problems: checker.problems })
        }
    }

    /// Returns the compiled-in example configuration.
    ///
    /// NOTE: its `state_dir` is /var/lib/floorwatch; a demo or test sets
    /// `storage.state_dir` (or FLOORWATCH_STORAGE_STATE_DIR) to a directory
    /// it owns.
    pub fn embedded_default() -> Result<Config, ConfigErrors> {
        Config::embedded_default_with(&Env::empty())
    }

    /// Returns the compiled-in example configuration with overrides from
    /// `env` applied.
    pub fn embedded_default_with(env: &Env) -> Result<Config, ConfigErrors> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Config::from_str_with(DEFAULT_TOML, "embedded config/floorwatch.toml", &cwd, env)
    }
}

// === impl StorageConfig ===

impl StorageConfig {
    /// Returns the path of the journal database.
    pub fn journal_path(&self) -> PathBuf {
        self.state_dir.join("journal.db")
    }
}

// === impl EngineConfig ===

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_clock_skew_seconds: 30,
            default_alarm_threshold_seconds: 120,
            history_limit_per_agent_day: 20_000,
            source_silence_seconds: 90,
        }
    }
}

// === impl StateCodes ===

impl StateCodes {
    pub fn new(codes: BTreeMap<String, StateGroup>) -> StateCodes {
        StateCodes { codes }
    }

    /// Returns the group of a platform state code. Codes match exactly,
    /// including case.
    pub fn group(&self, code: &str) -> Option<StateGroup> {
        self.codes.get(code).copied()
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, StateGroup)> {
        self.codes.iter().map(|(code, group)| (code.as_str(), *group))
    }
}

impl Default for StateCodes {
    /// Returns the codes of the first site's platform, in Dutch and English.
    fn default() -> Self {
        use crate::domain::NotReadyReason as R;
        use StateGroup as G;

        let codes = [
            ("Beschikbaar", G::Available),
            ("Nawerk", G::WrapUp),
            ("Pauze", G::NotReady(R::Break)),
            ("Lunch", G::NotReady(R::Lunch)),
            ("Training", G::NotReady(R::Training)),
            ("Overleg", G::NotReady(R::Meeting)),
            ("Coaching", G::NotReady(R::Coaching)),
            ("Storing", G::NotReady(R::Technical)),
            ("Afwezig", G::NotReady(R::Other)),
            ("Uitgelogd", G::LoggedOut),
            ("Available", G::Available),
            ("ACW", G::WrapUp),
            ("Break", G::NotReady(R::Break)),
            ("Meeting", G::NotReady(R::Meeting)),
            ("Technical", G::NotReady(R::Technical)),
            ("Away", G::NotReady(R::Other)),
            ("LoggedOut", G::LoggedOut),
        ];
        StateCodes::new(codes.into_iter().map(|(code, group)| (code.to_owned(), group)).collect())
    }
}

// === impl LimitsConfig ===

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            floor_retained_changes: 65_536,
            floor_client_buffer: 256,
            max_stream_clients: 2000,
            ingest_max_batch: 10_000,
            max_agents: 100_000,
            ingest_queue: 1024,
        }
    }
}

/// Loads the config at `path` with `env` and returns the text
/// `floorwatch check-config` prints, and whether the config is valid.
pub fn check_config_report(path: &Path, env: &Env) -> (String, bool) {
    let mut report = String::new();
    match Config::load(path, env) {
        Ok(config) => {
            for warning in &config.warnings {
                let _ = writeln!(report, "warning: {warning}");
            }
            let _ = writeln!(report, "config OK: {}", config.source);
            report.push_str(&config.summary());
            (report, true)
        }
        Err(errors) => {
            for problem in &errors.problems {
                let _ = writeln!(report, "{problem}");
            }
            let count = errors.problems.len();
            let noun = if count == 1 { "problem" } else { "problems" };
            let _ = writeln!(report, "{count} {noun} in {}", path.display());
            (report, false)
        }
    }
}

impl Config {
    /// Returns an indented overview of what the daemon will do with this
    /// config, for `check-config`.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let zone = self.site.time_zone.iana_name().unwrap_or("(unnamed zone)");
        let _ = writeln!(out, "  site: {} ({zone}, {})", self.site.name, self.site.locale.as_str());

        let websocket = self.listen.websocket.map_or("disabled".to_owned(), |addr| addr.to_string());
        let _ =
            writeln!(out, "  listen: grpc {}, websocket {websocket}, admin {}", self.listen.grpc, self.listen.admin);
        let _ = writeln!(out, "  journal: {}", self.storage.journal_path().display());

        let file_or_none =
            |path: &Option<PathBuf>| path.as_ref().map_or("none".to_owned(), |p| p.display().to_string());
        let _ = writeln!(
            out,
            "  roster: agents file {}, roster file {}",
            file_or_none(&self.roster.agents_file),
            file_or_none(&self.roster.roster_file)
        );
        let _ = writeln!(
            out,
            "  {} state codes, {} adherence rules, {} API tokens, {} WebSocket feeds",
            self.state_codes.len(),
            self.adherence.rules.len(),
            self.auth.tokens.len(),
            self.websocket.clients.len()
        );
        match &self.sip {
            None => out.push_str("  sip: disabled\n"),
            Some(sip) => {
                let listeners: Vec<String> = sip
                    .listeners
                    .iter()
                    .map(|l| format!("{}:{}", if l.transport == SipTransport::Tcp { "tcp" } else { "udp" }, l.addr))
                    .collect();
                let proxy_transport = if sip.outbound_proxy.transport == SipTransport::Tcp { "tcp" } else { "udp" };
                let _ = writeln!(
                    out,
                    "  sip: listen {}, outbound proxy {} over {proxy_transport}, as {}, packages {}",
                    listeners.join(" "),
                    sip.outbound_proxy.addr,
                    sip.identity,
                    sip.packages.join(" ")
                );
            }
        }
        out
    }
}
