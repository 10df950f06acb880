//! Loading, overriding and validating configuration files as an operator
//! would write them.

use std::fs;
use std::path::Path;

use floorwatch::config::{
    Config, ConfigErrors, DEFAULT_TOML, Env, Role, check_config_report, default_rules, hash_token,
};
use floorwatch::domain::{ActivityType, NotReadyReason, StateGroup};
use floorwatch::i18n::Locale;

/// Returns the errors of a config that must not load.
fn problems_of(text: &str) -> ConfigErrors {
    match Config::from_str_named(text, "test.toml") {
        Ok(_) => panic!("config loaded but should have failed:\n{text}"),
        Err(errors) => errors,
    }
}

fn load_with_env(text: &str, env: &Env) -> Result<Config, ConfigErrors> {
    Config::from_str_with(text, "test.toml", Path::new("/etc/floorwatch"), env)
}

fn problem_for<'a>(errors: &'a ConfigErrors, key: &str) -> &'a floorwatch::config::ConfigProblem {
    match errors.problems.iter().find(|p| p.key == key) {
        Some(problem) => problem,
        None => panic!("no problem for key {key}; got:\n{errors}"),
    }
}

#[test]
fn embedded_default_loads() {
    let config = match Config::embedded_default() {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    };
    assert_eq!(config.site.locale, Locale::Nl);
    assert_eq!(config.site.time_zone.iana_name(), Some("Europe/Amsterdam"));
    assert_eq!(config.listen.grpc.to_string(), "127.0.0.1:50051");
    assert_eq!(config.listen.websocket, None);
    assert_eq!(config.storage.journal_path(), Path::new("/var/lib/floorwatch/journal.db"));
    assert_eq!(config.state_codes.group("Pauze"), Some(StateGroup::NotReady(NotReadyReason::Break)));
    assert_eq!(config.state_codes.group("ACW"), Some(StateGroup::WrapUp));
}

#[test]
fn embedded_rules_match_built_in_matrix() {
    let config = Config::embedded_default().expect("embedded default is valid");
    let mut from_file = config.adherence.rules.clone();
    let mut built_in = default_rules();
    from_file.sort_by_key(|r| r.activity);
    built_in.sort_by_key(|r| r.activity);
    assert_eq!(from_file, built_in);
}

#[test]
fn empty_file_uses_defaults() {
    let config = Config::from_str_named("", "empty.toml").expect("empty file is valid");
    assert_eq!(config.listen.admin.to_string(), "127.0.0.1:9464");
    assert_eq!(config.storage.journal_batch_max, 4096);
    assert_eq!(config.engine.default_alarm_threshold_seconds, 120);
    assert_eq!(config.limits.ingest_max_batch, 10_000);
    assert_eq!(config.adherence.rules, default_rules());
    assert_eq!(config.state_codes.group("Beschikbaar"), Some(StateGroup::Available));
}

#[test]
fn empty_file_warns_about_missing_tokens() {
    let config = Config::from_str_named("", "empty.toml").expect("empty file is valid");
    assert!(config.warnings.iter().any(|w| w.key == "auth.token"), "{:?}", config.warnings);
}

#[test]
fn syntax_error_reports_line_and_column() {
    let errors = problems_of("[site]\nname = \"x\"\ntime_zone = Europe/Amsterdam\n");
    assert_eq!(errors.problems.len(), 1, "{errors}");
    let message = &errors.problems[0].message;
    assert!(message.contains("line 3, column 13"), "{message}");
}

#[test]
fn unknown_time_zone_display() {
    let errors = problems_of("[site]\ntime_zone = \"Europe/Amsterdm\"\n");
    let problem = problem_for(&errors, "site.time_zone");
    assert_eq!(
        problem.to_string(),
        "test.toml: site.time_zone: unknown time zone \"Europe/Amsterdm\"; \
         fix: use an IANA name such as Europe/Amsterdam"
    );
}

#[test]
fn several_errors_all_reported() {
    let text = r#"
[site]
time_zone = "Mars/Olympus"
locale = "de"
colour = "blue"

[listen]
grpc = "localhost"
admin = "127.0.0.1:50051"

[storage]
journal_batch_max = "many"

[engine]
source_silence_seconds = 0

[state_codes]
Pauze = "coffee"
"Logged out" = 3

[telemetry]
log_format = "logfmt"

[weather]
sunny = true
"#;
    let errors = problems_of(text);
    let expected = [
        "site.time_zone",
        "site.locale",
        "site.colour",
        "listen.grpc",
        "storage.journal_batch_max",
        "engine.source_silence_seconds",
        "state_codes.Pauze",
        "state_codes.\"Logged out\"",
        "telemetry.log_format",
        "weather",
    ];
    for key in expected {
        let problem = problem_for(&errors, key);
        assert!(!problem.fix.is_empty(), "no fix for {key}");
        assert_eq!(problem.file, "test.toml", "{key}");
    }
    assert_eq!(errors.problems.len(), expected.len(), "{errors}");
}

#[test]
fn listeners_on_one_port_reported() {
    let errors = problems_of("[listen]\ngrpc = \"127.0.0.1:7000\"\nadmin = \"127.0.0.1:7000\"\n");
    let problem = problem_for(&errors, "listen.admin");
    assert!(problem.message.contains("listen.grpc"), "{problem}");
}

#[test]
fn port_zero_listeners_may_repeat() {
    let text = "[listen]\ngrpc = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nwebsocket = \"127.0.0.1:0\"\n";
    let config = Config::from_str_named(text, "test.toml").expect("port 0 never clashes");
    assert!(config.listen.websocket.is_some());
}

#[test]
fn adherence_rule_problems_name_entry() {
    let text = r#"
[[adherence.rule]]
activity = "phone_duty"
in = ["available", "lunchtime"]

[[adherence.rule]]
activity = "phone_duty"
in = ["available"]

[[adherence.rule]]
activity = "break"
in = ["not_ready_break", "logged_out"]
neutral = ["wrap_up", "logged_out"]

[[adherence.rule]]
activity = "siesta"

[[adherence.rule]]
in = ["available"]
"#;
    let errors = problems_of(text);
    assert!(problem_for(&errors, "adherence.rule[0].in[1]").message.contains("lunchtime"));
    assert!(problem_for(&errors, "adherence.rule[1].activity").message.contains("second rule"));
    assert!(problem_for(&errors, "adherence.rule[2].neutral[1]").message.contains("both"));
    assert!(problem_for(&errors, "adherence.rule[3].activity").message.contains("siesta"));
    assert!(problem_for(&errors, "adherence.rule[4]").message.contains("activity"));
}

#[test]
fn adherence_missing_activities_reported() {
    let text = "[[adherence.rule]]\nactivity = \"phone_duty\"\nin = [\"available\"]\n";
    let errors = problems_of(text);
    let missing = problem_for(&errors, "adherence.rule");
    for name in ActivityType::ALL.map(ActivityType::as_str).iter().skip(1).chain(&["none"]) {
        assert!(missing.message.contains(&format!("\"{name}\"")), "{name}: {missing}");
    }
    assert!(!missing.message.contains("phone_duty"), "{missing}");
    let fix = &problem_for(&errors, "adherence.rule").fix;
    assert!(fix.contains("[[adherence.rule]]"), "{fix}");
}

#[test]
fn adherence_threshold_defaults_from_engine() {
    let mut text = String::from("[engine]\ndefault_alarm_threshold_seconds = 45\n");
    let names = ActivityType::ALL.map(ActivityType::as_str);
    for name in names.iter().chain(&["none"]) {
        text.push_str(&format!("[[adherence.rule]]\nactivity = \"{name}\"\nin = [\"available\"]\n"));
    }
    let config = Config::from_str_named(&text, "test.toml").expect("every activity has a rule");
    let rule = config.adherence.rule_for(Some(ActivityType::Coaching)).expect("coaching rule");
    assert_eq!(rule.threshold_seconds, 45);
}

#[test]
fn token_problems_reported() {
    let good = hash_token("example-token-one");
    let text = format!(
        r#"
[[auth.token]]
name = "wall"
role = "wallboard"
sha256 = "{good}"

[[auth.token]]
name = "wall"
role = "supervisor"
sha256 = "{good}"
teams = ["team-noord"]

[[auth.token]]
name = "me"
role = "agent"
sha256 = "not-a-hash"

[[auth.token]]
name = "boss"
role = "overlord"
sha256 = "{other}"
"#,
        other = hash_token("example-token-two")
    );
    let errors = problems_of(&text);
    assert!(problem_for(&errors, "auth.token[0].teams").message.contains("wallboard"));
    assert!(problem_for(&errors, "auth.token[1].name").message.contains("auth.token[0]"));
    assert!(problem_for(&errors, "auth.token[1].sha256").message.contains("auth.token[0]"));
    assert!(problem_for(&errors, "auth.token[2].sha256").message.contains("64 hex digits"));
    assert!(problem_for(&errors, "auth.token[2].agent_id").fix.contains("agent_id"));
    assert!(problem_for(&errors, "auth.token[3].role").message.contains("overlord"));
}

#[test]
fn token_hash_verifies_bearer() {
    let text = format!(
        "[[auth.token]]\nname = \"noord\"\nrole = \"supervisor\"\nsha256 = \"{}\"\nteams = [\"team-noord\"]\n",
        hash_token("example-bearer")
    );
    let config = Config::from_str_named(&text, "test.toml").expect("token entry is valid");
    let token = config.auth.verify("example-bearer").expect("hash matches");
    assert_eq!(token.role, Role::Supervisor);
    assert_eq!(token.teams, vec!["team-noord".to_owned()]);
    assert!(config.auth.verify("Example-bearer").is_none());
}

#[test]
fn token_problem_never_echoes_value() {
    let errors = problems_of("[[auth.token]]\nname = \"x\"\nrole = \"admin\"\nsha256 = \"my-secret-token\"\n");
    let report = errors.to_string();
    assert!(!report.contains("my-secret-token"), "{report}");
}

#[test]
fn websocket_client_problems_reported() {
    let text = r#"
[[websocket.client]]
name = "feed"
url = "https://events.example.com/feed"

[[websocket.client]]
name = "feed"
url = "wss://events.example.com/feed"
auth_header_env = "not a name"
initial_backoff_ms = 1000
max_backoff_ms = 10
"#;
    let errors = problems_of(text);
    assert!(problem_for(&errors, "websocket.client[0].url").message.contains("https://"));
    assert!(problem_for(&errors, "websocket.client[1].name").message.contains("also used"));
    assert!(problem_for(&errors, "websocket.client[1].auth_header_env").message.contains("not a name"));
    assert!(problem_for(&errors, "websocket.client[1].max_backoff_ms").message.contains("less than"));
}

#[test]
fn websocket_auth_env_unset_is_warning() {
    let text = "[[websocket.client]]\nname = \"feed\"\nurl = \"wss://events.example.com/feed\"\nauth_header_env = \"PLATFORM_FEED_AUTH\"\n";
    let config = load_with_env(text, &Env::empty()).expect("unset variable is not an error");
    assert!(config.warnings.iter().any(|w| w.key == "websocket.client[0].auth_header_env"));

    let env = Env::empty().with("PLATFORM_FEED_AUTH", "Bearer example");
    let config = load_with_env(text, &env).expect("valid with variable set");
    assert!(config.warnings.iter().all(|w| w.key != "websocket.client[0].auth_header_env"));
    assert_eq!(config.websocket.clients[0].auth_header_env.as_deref(), Some("PLATFORM_FEED_AUTH"));
}

#[test]
fn env_override_applied() {
    let env = Env::empty()
        .with("FLOORWATCH_LISTEN_GRPC", "127.0.0.1:0")
        .with("FLOORWATCH_STORAGE_STATE_DIR", "/tmp/floorwatch-test")
        .with("FLOORWATCH_SITE_LOCALE", "en")
        .with("FLOORWATCH_ENGINE_MAX_CLOCK_SKEW_SECONDS", "5")
        .with("FLOORWATCH_ROSTER_LABOUR_RULES_MAX_BLOCK_HOURS", "2.5");
    let config = load_with_env(DEFAULT_TOML, &env).expect("overrides are valid");
    assert_eq!(config.listen.grpc.port(), 0);
    assert_eq!(config.storage.state_dir, Path::new("/tmp/floorwatch-test"));
    assert_eq!(config.site.locale, Locale::En);
    assert_eq!(config.engine.max_clock_skew_seconds, 5);
    assert_eq!(config.roster.labour_rules.max_block_hours, 2.5);
}

#[test]
fn env_override_empty_disables_websocket() {
    let text = "[listen]\nwebsocket = \"127.0.0.1:8765\"\n";
    let env = Env::empty().with("FLOORWATCH_LISTEN_WEBSOCKET", "");
    let config = load_with_env(text, &env).expect("empty disables");
    assert_eq!(config.listen.websocket, None);
}

#[test]
fn bad_env_override_names_variable() {
    let env = Env::empty()
        .with("FLOORWATCH_ENGINE_SOURCE_SILENCE_SECONDS", "soon")
        .with("FLOORWATCH_SITE_TIME_ZONE", "Mars/Olympus");
    let errors = match load_with_env(DEFAULT_TOML, &env) {
        Ok(_) => panic!("bad overrides must fail"),
        Err(errors) => errors,
    };

    let silence = problem_for(&errors, "engine.source_silence_seconds");
    assert_eq!(silence.file, "$FLOORWATCH_ENGINE_SOURCE_SILENCE_SECONDS");
    assert!(silence.message.contains("\"soon\""), "{silence}");

    let zone = problem_for(&errors, "site.time_zone");
    assert_eq!(zone.file, "$FLOORWATCH_SITE_TIME_ZONE");
}

#[test]
fn misspelt_env_override_warns() {
    let env = Env::empty().with("FLOORWATCH_LISTEN_GRCP", "127.0.0.1:0");
    let config = load_with_env("", &env).expect("unknown variables only warn");
    let warning = config.warnings.iter().find(|w| w.key == "FLOORWATCH_LISTEN_GRCP");
    assert_eq!(warning.map(|w| w.file.as_str()), Some("environment"), "{:?}", config.warnings);
}

#[test]
fn every_override_names_a_key() {
    for entry in floorwatch::config::OVERRIDES {
        let value = match entry.kind {
            floorwatch::config::ValueKind::Text => "",
            floorwatch::config::ValueKind::Integer => "1",
            floorwatch::config::ValueKind::Number => "1.5",
        };
        let env = Env::empty().with(&entry.variable(), value);
        if let Err(errors) = load_with_env("", &env) {
            let unknown = errors
                .problems
                .iter()
                .find(|p| p.message.starts_with("unknown field") || p.message.starts_with("unknown section"));
            assert!(unknown.is_none(), "{}: {errors}", entry.variable());
        }
    }
}

#[test]
fn relative_paths_resolve_against_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    fs::create_dir(&data).expect("create data dir");
    fs::write(data.join("agents.csv"), "id,display_name,team,contract_hours\n").expect("write agents");
    let config_path = dir.path().join("floorwatch.toml");
    fs::write(&config_path, "[storage]\nstate_dir = \"state\"\n[roster]\nagents_file = \"data/agents.csv\"\n")
        .expect("write config");

    let config = Config::load(&config_path, &Env::empty()).expect("paths exist");
    assert_eq!(config.storage.state_dir, dir.path().join("state"));
    assert_eq!(config.roster.agents_file, Some(data.join("agents.csv")));
    assert!(!dir.path().join("state").exists(), "loading must not create the state dir");
}

#[test]
fn missing_input_file_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("floorwatch.toml");
    fs::write(&config_path, "[roster]\nroster_file = \"roster.xlsx\"\n").expect("write config");

    let errors = Config::load(&config_path, &Env::empty()).expect_err("file is missing");
    let messages: Vec<&str> =
        errors.problems.iter().filter(|p| p.key == "roster.roster_file").map(|p| p.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{errors}");
    assert!(messages.iter().any(|m| m.contains("not found")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains(".csv nor a .json")), "{messages:?}");
}

#[test]
fn unreadable_file_reported() {
    let errors = Config::load(Path::new("/nonexistent/floorwatch.toml"), &Env::empty()).expect_err("no file");
    assert_eq!(errors.problems.len(), 1);
    assert_eq!(errors.problems[0].file, "/nonexistent/floorwatch.toml");
}

#[test]
fn check_config_report_lists_problems() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("floorwatch.toml");
    fs::write(&path, "[site]\nlocale = \"fr\"\n[limits]\nmax_agents = 0\n").expect("write config");

    let (report, ok) = check_config_report(&path, &Env::empty());
    assert!(!ok);
    assert!(report.contains("site.locale: unsupported locale \"fr\""), "{report}");
    assert!(report.contains("limits.max_agents"), "{report}");
    assert!(report.contains("2 problems"), "{report}");
}

#[test]
fn check_config_report_ok_summary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("floorwatch.toml");
    fs::write(&path, DEFAULT_TOML).expect("write config");

    let (report, ok) = check_config_report(&path, &Env::empty());
    assert!(ok, "{report}");
    assert!(report.contains("config OK"), "{report}");
    assert!(report.contains("Europe/Amsterdam"), "{report}");
}

#[test]
fn sip_disabled_by_default() {
    let config = Config::embedded_default().expect("embedded default is valid");
    assert!(config.sip.is_none());
}

#[test]
fn sip_section_loads_listeners_and_proxy() {
    let text = r#"
[sip]
enabled = true
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:5071"]
outbound_proxy = "sip:192.0.2.10:5060;transport=tcp"
identity = "sip:floorwatch@example.com"
packages = ["dialog", "reg"]
"#;
    let config = Config::from_str_named(text, "test.toml").expect("valid [sip] section");
    let sip = config.sip.expect("enabled = true gives a SIP config");
    assert_eq!(sip.listeners.len(), 2);
    assert_eq!(sip.outbound_proxy.addr.to_string(), "192.0.2.10:5060");
    assert_eq!(sip.outbound_proxy.transport, floorwatch::config::SipTransport::Tcp);
    assert_eq!(sip.packages, vec!["dialog", "reg"]);
}

#[test]
fn sip_problems_name_each_key() {
    let errors = problems_of(
        r#"
[sip]
enabled = true
listen = ["127.0.0.1:5070", "tcp:127.0.0.1:0", "udp:0.0.0.0:5070"]
outbound_proxy = "proxy.example.com"
identity = "floorwatch"
packages = ["dialog", "message-summary"]
allowed_networks = ["300.0.0.0/8"]
expires_seconds = 10
"#,
    );
    for key in ["sip.listen[0]", "sip.listen[1]", "sip.listen[2]", "sip.outbound_proxy", "sip.identity", "sip.packages"]
    {
        problem_for(&errors, key);
    }
    problem_for(&errors, "sip.allowed_networks");
    problem_for(&errors, "sip.expires_seconds");
}

#[test]
fn sip_password_from_environment() {
    let text = "[sip]\nenabled = true\noutbound_proxy = \"sip:127.0.0.1\"\nauth_username = \"fw\"\n";
    let env = Env::empty().with("FLOORWATCH_SIP_AUTH_PASSWORD", "s3cret");
    let config = load_with_env(text, &env).expect("the password comes from the environment");
    assert_eq!(config.sip.and_then(|s| s.auth_password).as_deref(), Some("s3cret"));
}

#[test]
fn summary_names_sip_proxy() {
    let text = "[sip]\nenabled = true\noutbound_proxy = \"sip:192.0.2.10:5060\"\n";
    let config = Config::from_str_named(text, "test.toml").expect("valid [sip] section");
    let summary = config.summary();
    assert!(summary.contains("outbound proxy 192.0.2.10:5060 over udp"), "{summary}");
    assert!(Config::from_str_named("", "empty.toml").expect("empty is valid").summary().contains("sip: disabled"));
}
