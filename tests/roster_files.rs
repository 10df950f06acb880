//! Roster files as planners hand them in: the shipped examples, the shared
//! DST corpus cases, and the `roster check` report.
//!
//! The corpus is read from `../shared/corpus/cases/` beside the crate,
//! where CI clones it.

use std::path::{Path, PathBuf};

use floorwatch::domain::ActivityType;
use floorwatch::i18n::Locale;
use floorwatch::roster::{
    LabourRules, Location, RosterError, RosterFormat, check, check_file_report, parse_agents, parse_roster,
    parse_roster_document,
};
use jiff::Timestamp;
use jiff::tz::TimeZone;

fn amsterdam() -> TimeZone {
    TimeZone::get("Europe/Amsterdam").expect("bundled tzdb must contain Europe/Amsterdam")
}

fn crate_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    let path = crate_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn corpus(case: &str) -> String {
    read(&format!("../shared/corpus/cases/{case}"))
}

#[test]
fn example_agents_parse() {
    let agents =
        parse_agents(&read("config/examples/agents.csv"), RosterFormat::Csv).expect("example directory must be valid");
    assert_eq!(agents.len(), 4);
}

#[test]
fn example_roster_obeys_rules() {
    let agents =
        parse_agents(&read("config/examples/agents.csv"), RosterFormat::Csv).expect("example directory must be valid");
    let activities = parse_roster(&read("config/examples/roster.csv"), RosterFormat::Csv, &amsterdam())
        .expect("example roster must parse");
    let violations = check(&agents, &activities, &amsterdam(), &LabourRules::default());
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn example_json_matches_csv() {
    let csv = parse_roster_document(&read("config/examples/roster.csv"), RosterFormat::Csv, &amsterdam())
        .expect("example CSV roster must parse");
    let json = parse_roster_document(&read("config/examples/roster.json"), RosterFormat::Json, &amsterdam())
        .expect("example JSON roster must parse");
    assert_eq!(csv, json);
}

#[test]
fn example_report_is_clean() {
    let path = crate_path("config/examples/roster.csv");
    let (report, count) = check_file_report(&path, &amsterdam(), None, &LabourRules::default(), Locale::En);
    assert_eq!(count, 0, "{report}");
    assert!(report.contains("no violations; 49 activities of 4 agents in 1 week checked"), "{report}");
}

#[test]
fn four_hour_block_reported_in_english() {
    let path = crate_path("config/examples/roster-4h-block.csv");
    let (report, count) = check_file_report(&path, &amsterdam(), None, &LabourRules::default(), Locale::En);
    assert_eq!(count, 1, "{report}");
    assert!(
        report.contains("a-117 on Mon 2026-12-07: block 09:00–13:00 is 4.0 h, more than the 3.0 h maximum"),
        "{report}"
    );
}

#[test]
fn four_hour_block_reported_in_dutch() {
    let path = crate_path("config/examples/roster-4h-block.csv");
    let (report, _) = check_file_report(&path, &amsterdam(), None, &LabourRules::default(), Locale::Nl);
    assert!(
        report.contains("a-117 op ma 2026-12-07: blok 09:00–13:00 duurt 4,0 uur, meer dan het maximum van 3,0 uur"),
        "{report}"
    );
}

#[test]
fn report_with_directory_flags_unknown_agent() {
    let agents =
        parse_agents(&read("config/examples/agents.csv"), RosterFormat::Csv).expect("example directory must be valid");
    let known: Vec<_> = agents.into_iter().filter(|a| a.id != "a-120").collect();
    let path = crate_path("config/examples/roster.csv");
    let (report, count) = check_file_report(&path, &amsterdam(), Some(&known), &LabourRules::default(), Locale::En);
    assert_eq!(count, 1, "{report}");
    assert!(report.contains("a-120 on Mon 2026-12-07: agent is not in the agent directory"), "{report}");
}

#[test]
fn corpus_spring_rows_have_expected_minutes() {
    let text = corpus("B90-roster-dst-spring-2024-03-31.csv");
    let mut lines = text.lines();
    let header = lines.next().expect("corpus file has a header");
    let accepted: Vec<&str> = lines.filter(|line| !line.contains("REJECT")).collect();
    let roster = format!("{header}\n{}\n", accepted.join("\n"));

    let activities = parse_roster(&roster, RosterFormat::Csv, &amsterdam()).expect("rows without REJECT must parse");
    assert_eq!(activities.len(), accepted.len());
    for (activity, line) in activities.iter().zip(&accepted) {
        let expected: i64 =
            line.split(',').nth(4).and_then(|field| field.parse().ok()).expect("expected_real_minutes is a number");
        let minutes = activity.end.duration_since(activity.start).as_mins();
        assert_eq!(minutes, expected, "{line}");
    }
}

#[test]
fn corpus_spring_gap_row_rejected() {
    let text = corpus("B90-roster-dst-spring-2024-03-31.csv");
    let errors = parse_roster(&text, RosterFormat::Csv, &amsterdam()).expect_err("the 02:30 start does not exist");
    assert_eq!(errors.len(), 1, "{errors}");
    assert!(
        matches!(&errors[0], RosterError::TimeInGap { at: Location::Line(5), value, .. } if value == "2024-03-31T02:30"),
        "{errors}"
    );
}

#[test]
fn corpus_utc_instants_convert() {
    let text = corpus("B92-utc-instants-eu-dst-change.csv");
    let tz = amsterdam();
    for line in text.lines().skip(1).filter(|line| !line.trim().is_empty()) {
        let (utc, expected) = line.split_once(',').expect("two columns");
        let instant: Timestamp = utc.parse().expect("corpus instant parses");
        let local = instant.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
        assert_eq!(local, expected, "{utc}");
    }
}

#[test]
fn corpus_local_offsets_read_back() {
    // Every expected local time, offset included (fold sides too), must
    // read back to its UTC instant through the roster parser.
    let text = corpus("B92-utc-instants-eu-dst-change.csv");
    let mut roster = String::from("agent_id,start,end,activity\n");
    let mut instants = Vec::new();
    for line in text.lines().skip(1).filter(|line| !line.trim().is_empty()) {
        let (utc, local) = line.split_once(',').expect("two columns");
        let instant: Timestamp = utc.parse().expect("corpus instant parses");
        let end = instant + jiff::SignedDuration::from_hours(1);
        roster.push_str(&format!("a-1,{local},{end},work\n"));
        instants.push(instant);
    }

    let activities =
        parse_roster(&roster, RosterFormat::Csv, &amsterdam()).expect("local times with offsets must parse");
    let starts: Vec<Timestamp> = activities.iter().map(|a| a.start).collect();
    assert_eq!(starts, instants);
}

#[test]
fn fall_back_day_fold_rows() {
    // 2025-10-26: 02:30 happens twice. Without an offset it is an error;
    // with either offset it is accepted, an hour apart.
    let roster = "agent_id,start,end,activity\n\
                  a-1,2025-10-26T02:30,2025-10-26T04:00,work\n\
                  a-2,2025-10-26T02:30+02:00,2025-10-26T04:00,work\n\
                  a-3,2025-10-26T02:30+01:00,2025-10-26T04:00,work\n";
    let errors = parse_roster(roster, RosterFormat::Csv, &amsterdam()).expect_err("line 2 is ambiguous");
    assert_eq!(errors.len(), 1, "{errors}");
    assert_eq!(errors[0].location(), Location::Line(2));

    let resolved = roster.replace("a-1,2025-10-26T02:30,", "a-1,2025-10-26T01:30,");
    let activities = parse_roster(&resolved, RosterFormat::Csv, &amsterdam()).expect("offsets resolve the fold");
    let minutes: Vec<i64> = activities.iter().map(|a| a.end.duration_since(a.start).as_mins()).collect();
    // 01:30 summer time to 04:00 winter time is 3.5 h real.
    assert_eq!(minutes, vec![210, 150, 90]);
    assert!(activities.iter().all(|a| a.activity == ActivityType::PhoneDuty));
}

#[test]
fn weekly_rule_named_in_report_lines() {
    let text = read("config/examples/roster.csv");
    let without_thursday: String =
        text.lines().filter(|line| !(line.starts_with("a-117,2026-12-10"))).map(|line| format!("{line}\n")).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("short.csv");
    std::fs::write(&path, without_thursday).expect("write temp roster");

    let (report, count) = check_file_report(&path, &amsterdam(), None, &LabourRules::default(), Locale::En);
    assert_eq!(count, 1, "{report}");
    assert!(
        report.contains("a-117 in week 2026-W50 (from Mon 2026-12-07): 18.0 h of work scheduled, 6.0 h less than the contract of 24.0 h"),
        "{report}"
    );
}
