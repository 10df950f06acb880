//! The `floorwatch` command line as an operator uses it: roster checks,
//! configuration checks, a refused start on a bad configuration, and token
//! hashing. Every command runs the real binary with a time limit.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// Maximum run time of a short command.
const COMMAND_LIMIT: Duration = Duration::from_secs(20);

fn floorwatch(args: &[&str]) -> Output {
    let mut command = Command::new(floorwatch_bin());
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    run_bounded(command, None, COMMAND_LIMIT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn roster_check_rejects_four_hour_block() {
    let output = floorwatch(&["roster", "check", "config/examples/roster-4h-block.csv"]);
    let stdout = text(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "a broken labour rule exits 1; stdout: {stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("a-117"))
        .unwrap_or_else(|| panic!("the report must name agent a-117: {stdout}"));
    assert!(line.contains("2026-12-07"), "the line must name the day: {line}");
    assert!(line.contains("blok 09:00–13:00"), "the line must name the block: {line}");
    assert!(line.contains("4,0 uur"), "the line must give the length in Dutch notation: {line}");
    assert!(line.contains("maximum van 3,0 uur"), "the line must give the 3-hour maximum: {line}");
}

#[test]
fn roster_check_reports_in_english() {
    let output = floorwatch(&["roster", "check", "config/examples/roster-4h-block.csv", "--lang", "en"]);
    let stdout = text(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "stdout: {stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("a-117"))
        .unwrap_or_else(|| panic!("the report must name agent a-117: {stdout}"));
    assert!(line.contains("block 09:00–13:00 is 4.0 h"), "the line must name the block: {line}");
    assert!(line.contains("3.0 h maximum"), "the line must give the 3-hour maximum: {line}");
    assert!(!stdout.contains("blok"), "--lang en must not print Dutch: {stdout}");
}

#[test]
fn roster_check_accepts_example_roster() {
    let output =
        floorwatch(&["roster", "check", "config/examples/roster.csv", "--agents", "config/examples/agents.csv"]);
    let stdout = text(&output.stdout);

    assert_eq!(output.status.code(), Some(0), "the example roster obeys the rules; stdout: {stdout}");
    assert!(stdout.contains("geen overtredingen"), "the report must say there are no violations: {stdout}");
}

#[test]
fn check_config_lists_every_problem() {
    let output = floorwatch(&["check-config", "tests/fixtures/broken.toml"]);
    let stderr = text(&output.stderr);

    assert_ne!(output.status.code(), Some(0), "a broken file must fail; stderr: {stderr}");
    let keys = [
        "site.time_zone",
        "site.locale",
        "listen.grpc",
        "engine.max_clock_skew_seconds",
        "auth.token[0].sha256",
        "auth.token[0].teams",
    ];
    for key in keys {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!(": {key}: ")))
            .unwrap_or_else(|| panic!("key {key} must be reported: {stderr}"));
        assert!(line.starts_with("tests/fixtures/broken.toml: "), "the line must name the file: {line}");
        assert!(line.contains("; fix: "), "the line must say how to fix it: {line}");
    }
    assert!(stderr.contains("6 problems"), "the report must count the problems: {stderr}");
}

#[test]
fn check_config_accepts_site_config() {
    let output = floorwatch(&["check-config", "config/floorwatch.toml"]);
    let stdout = text(&output.stdout);

    assert_eq!(output.status.code(), Some(0), "the shipped configuration is valid; stderr: {}", text(&output.stderr));
    assert!(stdout.contains("config OK"), "stdout: {stdout}");
}

#[test]
fn serve_refuses_bad_config_before_binding() {
    // Valid listeners on port 0 and a writable state directory, so the only
    // thing that stops the start is the misspelt time zone.
    let site = Site::new(SiteConfig { time_zone: "Europe/Amsterdm", ..SiteConfig::default() });
    let mut command = Command::new(floorwatch_bin());
    command.arg("serve").arg("--config").arg(&site.config_path);
    let output = run_bounded(command, None, COMMAND_LIMIT);
    let stderr = text(&output.stderr);

    assert_eq!(output.status.code(), Some(64), "an invalid configuration exits 64 (EX_USAGE); stderr: {stderr}");
    assert!(stderr.contains("site.time_zone"), "the problem must be named: {stderr}");
    assert!(!stderr.contains("listening"), "nothing may be bound: {stderr}");
    assert!(!site.state_dir().exists(), "nothing may be created before the configuration is valid");
}

#[test]
fn hash_token_prints_sha256() {
    let mut command = Command::new(floorwatch_bin());
    command.arg("hash-token");
    let output = run_bounded(command, Some("secret"), COMMAND_LIMIT);
    let stdout = text(&output.stdout);

    assert_eq!(output.status.code(), Some(0), "stderr: {}", text(&output.stderr));
    // sha256("secret"), as `printf secret | sha256sum` prints it.
    assert_eq!(stdout.trim(), "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b");
    assert_eq!(stdout.trim(), floorwatch::api::auth::hash_token("secret"), "the command and the library must agree");
}
