//! Second stage of loading: raw sections to typed, checked configuration.
//!
//! Each check reports a problem and substitutes a fallback, so later checks
//! still run and every problem is found in one pass. A config with problems
//! is never returned to the caller, so the fallbacks are never used.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use tracing_subscriber::EnvFilter;

use crate::domain::StateGroup;
use crate::i18n::Locale;
use crate::roster::LabourRules;
use crate::telemetry::LogFormat;

use super::adherence::{build_rules, state_group_names};
use super::auth::build_auth;
use super::env::Env;
use super::parse::{Checker, RawClient, RawConfig, RawListen, RawSite, RawStorage, RawTelemetry, quote_key};
use super::{
    Config, EngineConfig, LimitsConfig, ListenConfig, RosterConfig, SiteConfig, StateCodes, StorageConfig,
    TelemetryConfig, WebSocketClientConfig, WebSocketConfig,
};

/// Resolves relative paths: against the config file's directory for values
/// from the file, against the working directory for overrides.
struct PathResolver<'a> {
    base_dir: &'a Path,
}

/// Smallest WebSocket message limit; one event with its envelope must fit.
const MIN_WEBSOCKET_MESSAGE_BYTES: usize = 1024;

/// Maximum batch delay. Every event waits up to this long for its commit.
const MAX_JOURNAL_BATCH_DELAY_MS: u64 = 1000;

/// Builds the typed config from the raw sections, reporting every problem.
pub(crate) fn build(raw: RawConfig, name: &str, base_dir: &Path, env: &Env, checker: &mut Checker) -> Config {
    let paths = PathResolver { base_dir };

    let site = build_site(raw.site, checker);
    let listen = build_listen(raw.listen, checker);
    let storage = build_storage(raw.storage, &paths, checker);

    let roster = RosterConfig {
        agents_file: input_file(&raw.roster.agents_file, "roster.agents_file", &paths, checker),
        roster_file: input_file(&raw.roster.roster_file, "roster.roster_file", &paths, checker),
        labour_rules: check_labour_rules(raw.labour_rules, checker),
    };

    check_engine(&raw.engine, checker);
    let state_codes = build_state_codes(raw.state_codes, checker);
    let adherence = build_rules(raw.adherence_rules, raw.engine.default_alarm_threshold_seconds, checker);
    let auth = build_auth(raw.tokens, checker);
    let websocket = build_websocket(raw.websocket, raw.websocket_clients, env, checker);
    check_limits(&raw.limits, checker);
    let telemetry = build_telemetry(raw.telemetry, checker);
    let sip = super::sip::build_sip(raw.sip, checker);

    Config {
        site,
        listen,
        storage,
        roster,
        engine: raw.engine,
        state_codes,
        adherence,
        auth,
        websocket,
        limits: raw.limits,
        telemetry,
        sip,
        source: name.to_owned(),
        warnings: Vec::new(),
    }
}

fn build_site(raw: RawSite, checker: &mut Checker) -> SiteConfig {
    if raw.name.trim().is_empty() {
        checker.problem("site.name", "empty site name", "set name to the contact center's name");
    }

    let time_zone = match TimeZone::get(raw.time_zone.trim()) {
        Ok(zone) => zone,
        Err(_) => {
            checker.problem(
                "site.time_zone",
                format!("unknown time zone \"{}\"", raw.time_zone),
                "use an IANA name such as Europe/Amsterdam",
            );
            TimeZone::UTC
        }
    };

    let locale = Locale::parse(&raw.locale).unwrap_or_else(|| {
        checker.problem(
            "site.locale",
            format!("unsupported locale \"{}\"", raw.locale),
            "use \"nl\" (Dutch) or \"en\" (English)",
        );
        Locale::default()
    });

    SiteConfig { name: raw.name.trim().to_owned(), time_zone, locale }
}

fn build_listen(raw: RawListen, checker: &mut Checker) -> ListenConfig {
    let fallback = SocketAddr::from(([127, 0, 0, 1], 0));
    let grpc = socket_addr(&raw.grpc, "listen.grpc", checker).unwrap_or(fallback);
    let admin = socket_addr(&raw.admin, "listen.admin", checker).unwrap_or(fallback);
    let websocket = match raw.websocket.trim() {
        "" => None,
        text => socket_addr(text, "listen.websocket", checker),
    };

    let mut bound: Vec<(&str, SocketAddr)> = vec![("listen.grpc", grpc), ("listen.admin", admin)];
    if let Some(addr) = websocket {
        bound.push(("listen.websocket", addr));
    }
    for (i, (key, addr)) in bound.iter().enumerate() {
        // Port 0 requests a free port from the kernel, so repeats cannot clash.
        if addr.port() == 0 {
            continue;
        }
        if let Some((other, _)) = bound[..i].iter().find(|(_, earlier)| earlier == addr) {
            checker.problem(key, format!("address {addr} is also used by {other}"), "give every listener its own port");
        }
    }

    ListenConfig { grpc, websocket, admin }
}

fn socket_addr(text: &str, key: &str, checker: &mut Checker) -> Option<SocketAddr> {
    let parsed = text.trim().parse::<SocketAddr>();
    if parsed.is_err() {
        checker.problem(
            key,
            format!("invalid socket address \"{text}\""),
            "write an IP address and port, such as 127.0.0.1:50051 or [::1]:50051",
        );
    }
    parsed.ok()
}

fn build_storage(raw: RawStorage, paths: &PathResolver<'_>, checker: &mut Checker) -> StorageConfig {
    let key = "storage.state_dir";
    let state_dir = if raw.state_dir.trim().is_empty() {
        checker.problem(
            key,
            "empty state directory",
            "set state_dir to a directory floorwatch may write, such as /var/lib/floorwatch",
        );
        PathBuf::from("/var/lib/floorwatch")
    } else {
        paths.resolve(raw.state_dir.trim(), key, checker)
    };
    if state_dir.exists() && !state_dir.is_dir() {
        checker.problem(
            key,
            format!("{} exists and is not a directory", state_dir.display()),
            "point state_dir at a directory, or remove the file",
        );
    }

    at_least(checker, "storage.journal_batch_max", raw.journal_batch_max as u64, 1);
    if raw.journal_batch_delay_ms > MAX_JOURNAL_BATCH_DELAY_MS {
        checker.problem(
            "storage.journal_batch_delay_ms",
            format!("{} ms is more than the maximum {MAX_JOURNAL_BATCH_DELAY_MS} ms", raw.journal_batch_delay_ms),
            "use a few milliseconds; every event waits this long at most before its commit",
        );
    }

    StorageConfig {
        state_dir,
        journal_batch_max: raw.journal_batch_max,
        journal_batch_delay_ms: raw.journal_batch_delay_ms,
    }
}

/// Resolves an optional input file and checks that it exists and has a
/// supported extension. An empty value means no file.
fn input_file(text: &str, key: &str, paths: &PathResolver<'_>, checker: &mut Checker) -> Option<PathBuf> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let path = paths.resolve(text, key, checker);

    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(extension.as_deref(), Some("csv" | "json")) {
        checker.problem(
            key,
            format!("{} is neither a .csv nor a .json file", path.display()),
            "name the file with a .csv or .json extension; the extension selects the format",
        );
    }
    if !path.is_file() {
        checker.problem(
            key,
            format!("file not found: {}", path.display()),
            "correct the path (relative paths are relative to the config file's directory), or set it to \"\"",
        );
    }
    Some(path)
}

fn check_labour_rules(rules: LabourRules, checker: &mut Checker) -> LabourRules {
    let key = |name: &str| format!("roster.labour_rules.{name}");
    let hours = [
        ("min_contract_hours", rules.min_contract_hours, 168.0),
        ("max_contract_hours", rules.max_contract_hours, 168.0),
        ("max_block_hours", rules.max_block_hours, 24.0),
        ("max_day_hours", rules.max_day_hours, 24.0),
    ];
    for (name, value, upper) in hours {
        if !(value > 0.0 && value <= upper) {
            checker.problem(
                &key(name),
                format!("{value} hours is outside 0 to {upper}"),
                format!("use a number of hours above 0 and at most {upper}"),
            );
        }
    }

    if rules.min_contract_hours > rules.max_contract_hours {
        checker.problem(
            &key("min_contract_hours"),
            format!(
                "minimum contract {} h is more than maximum contract {} h",
                rules.min_contract_hours, rules.max_contract_hours
            ),
            "make min_contract_hours at most max_contract_hours",
        );
    }
    if rules.max_block_hours > rules.max_day_hours {
        checker.problem(
            &key("max_block_hours"),
            format!("block maximum {} h is more than day maximum {} h", rules.max_block_hours, rules.max_day_hours),
            "make max_block_hours at most max_day_hours",
        );
    }
    rules
}

fn check_engine(engine: &EngineConfig, checker: &mut Checker) {
    at_least(checker, "engine.history_limit_per_agent_day", engine.history_limit_per_agent_day as u64, 1);
    at_least(checker, "engine.source_silence_seconds", engine.source_silence_seconds, 1);
}

fn build_state_codes(raw: Option<BTreeMap<String, String>>, checker: &mut Checker) -> StateCodes {
    let Some(raw) = raw else {
        return StateCodes::default();
    };

    let mut codes = BTreeMap::new();
    for (code, name) in raw {
        let key = format!("state_codes.{}", quote_key(&code));
        if code.trim().is_empty() {
            checker.problem(&key, "empty state code", "remove the entry or write the platform's code");
            continue;
        }
        match StateGroup::parse(name.trim()) {
            Some(group) => {
                codes.insert(code, group);
            }
            None => checker.problem(
                &key,
                format!("unknown state group \"{name}\" for code \"{code}\""),
                format!("use one of {}", state_group_names()),
            ),
        }
    }
    if codes.is_empty() && checker.problems.is_empty() {
        checker.warning(
            "state_codes",
            "no state codes are mapped, so every platform state code is reported as unknown",
            "map the platform's codes, or remove [state_codes] to use the built-in table",
        );
    }
    StateCodes::new(codes)
}

fn build_websocket(
    raw: super::parse::RawWebSocket,
    raw_clients: Vec<RawClient>,
    env: &Env,
    checker: &mut Checker,
) -> WebSocketConfig {
    at_least(checker, "websocket.max_message_bytes", raw.max_message_bytes as u64, MIN_WEBSOCKET_MESSAGE_BYTES as u64);
    at_least(checker, "websocket.max_connections", raw.max_connections as u64, 1);
    at_least(checker, "websocket.silence_timeout_seconds", raw.silence_timeout_seconds, 1);

    let mut clients = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (index, client) in raw_clients.into_iter().enumerate() {
        if let Some(client) = build_client(client, index, &mut names, env, checker) {
            clients.push(client);
        }
    }

    WebSocketConfig {
        max_message_bytes: raw.max_message_bytes,
        max_connections: raw.max_connections,
        silence_timeout_seconds: raw.silence_timeout_seconds,
        disconnect_grace_seconds: raw.disconnect_grace_seconds,
        clients,
    }
}

fn build_client(
    raw: RawClient,
    index: usize,
    names: &mut BTreeMap<String, usize>,
    env: &Env,
    checker: &mut Checker,
) -> Option<WebSocketClientConfig> {
    let key = format!("websocket.client[{index}]");

    let name = raw.name.as_deref().map(str::trim).unwrap_or_default().to_owned();
    if name.is_empty() {
        checker.problem(
            &format!("{key}.name"),
            "missing or empty feed name",
            "add name = \"platform-main\"; events from the feed carry it as their source",
        );
    } else if let Some(first) = names.insert(name.clone(), index) {
        checker.problem(
            &format!("{key}.name"),
            format!("feed name \"{name}\" is also used by websocket.client[{first}]"),
            "give every feed a unique name",
        );
    }

    let url = raw.url.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let url_ok = check_ws_url(&url, &format!("{key}.url"), checker);

    if let Some(variable) = &raw.auth_header_env {
        check_auth_header_env(variable, &format!("{key}.auth_header_env"), env, checker);
    }

    at_least(checker, &format!("{key}.initial_backoff_ms"), raw.initial_backoff_ms, 1);
    if raw.max_backoff_ms < raw.initial_backoff_ms {
        checker.problem(
            &format!("{key}.max_backoff_ms"),
            format!("max_backoff_ms {} is less than initial_backoff_ms {}", raw.max_backoff_ms, raw.initial_backoff_ms),
            "make max_backoff_ms at least initial_backoff_ms",
        );
    }

    if name.is_empty() || !url_ok {
        return None;
    }
    Some(WebSocketClientConfig {
        name,
        url,
        auth_header_env: raw.auth_header_env,
        initial_backoff_ms: raw.initial_backoff_ms,
        max_backoff_ms: raw.max_backoff_ms,
    })
}

fn check_ws_url(url: &str, key: &str, checker: &mut Checker) -> bool {
    let fix = "write a ws:// or wss:// URL with a host, such as wss://feed.example.com/v1/events";
    if url.is_empty() {
        checker.problem(key, "missing or empty URL", fix);
        return false;
    }
    let valid = match url.parse::<http::Uri>() {
        Ok(uri) => matches!(uri.scheme_str(), Some("ws" | "wss")) && uri.host().is_some_and(|h| !h.is_empty()),
        Err(_) => false,
    };
    if !valid {
        checker.problem(key, format!("invalid WebSocket URL \"{url}\""), fix);
    }
    valid
}

fn check_auth_header_env(variable: &str, key: &str, env: &Env, checker: &mut Checker) {
    let well_formed = !variable.is_empty()
        && !variable.starts_with(|c: char| c.is_ascii_digit())
        && variable.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        checker.problem(
            key,
            format!("\"{variable}\" is not an environment variable name"),
            "name a variable made of letters, digits and _, such as PLATFORM_FEED_AUTH",
        );
        return;
    }
    // The service manager may set the variable only for the daemon, so an
    // unset variable during a manual check is a warning, not an error.
    if env.get(variable).is_none() {
        checker.warning(
            key,
            format!("environment variable {variable} is not set, so the feed connects without an Authorization header"),
            format!("set {variable} in the service environment (for example with systemd's EnvironmentFile=)"),
        );
    }
}

fn check_limits(limits: &LimitsConfig, checker: &mut Checker) {
    let values = [
        ("floor_retained_changes", limits.floor_retained_changes),
        ("floor_client_buffer", limits.floor_client_buffer),
        ("max_stream_clients", limits.max_stream_clients),
        ("ingest_max_batch", limits.ingest_max_batch),
        ("max_agents", limits.max_agents),
        ("ingest_queue", limits.ingest_queue),
    ];
    for (name, value) in values {
        at_least(checker, &format!("limits.{name}"), value as u64, 1);
    }
}

fn build_telemetry(raw: RawTelemetry, checker: &mut Checker) -> TelemetryConfig {
    let log_format = LogFormat::parse(&raw.log_format).unwrap_or_else(|| {
        checker.problem(
            "telemetry.log_format",
            format!("unknown log format \"{}\"", raw.log_format),
            "use \"text\" or \"json\"",
        );
        LogFormat::Text
    });

    if let Err(error) = EnvFilter::builder().parse(&raw.log_filter) {
        checker.problem(
            "telemetry.log_filter",
            format!("invalid log filter \"{}\": {error}", raw.log_filter),
            "write comma-separated directives such as \"info,floorwatch::sip=debug\"",
        );
    }

    TelemetryConfig { log_format, log_filter: raw.log_filter }
}

/// Reports `key` when `value` is below `min`.
fn at_least(checker: &mut Checker, key: &str, value: u64, min: u64) {
    if value < min {
        checker.problem(key, format!("{value} is less than the minimum {min}"), format!("use {min} or more"));
    }
}

// === impl PathResolver ===

impl PathResolver<'_> {
    fn resolve(&self, text: &str, key: &str, checker: &Checker) -> PathBuf {
        let path = Path::new(text);
        if path.is_absolute() {
            return path.to_path_buf();
        }
        if checker.override_of(key).is_some()
            && let Ok(absolute) = std::path::absolute(path)
        {
            return absolute;
        }
        self.base_dir.join(path)
    }
}
