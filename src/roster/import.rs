//! Reading roster files (CSV and JSON) into scheduled activities.
//!
//! Times are read with the rules in [`super::time`]: local site time, local
//! time with the zone's offset, or UTC. The whole file is checked and every
//! error is returned, each with its line (CSV) or array index (JSON). The
//! labour rules are not checked here; see [`super::rules`].

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use jiff::tz::TimeZone;
use serde_json::Value;

use super::RosterFormat;
use super::directory::parse_hours;
use super::error::{ErrorSink, Location, RosterError, RosterErrors};
use super::table::{Column, MAX_ROWS, read_rows};
use super::time::parse_field;
use crate::domain::{ActivityType, AgentId, ScheduledActivity};

/// A parsed roster file: the activities and any contract hours the file
/// gives per agent (the optional `contract_hours` column or field).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RosterDocument {
    /// Activities in file order.
    pub activities: Vec<ScheduledActivity>,
    /// Contract hours per agent, for checking a roster without a directory.
    pub contract_hours: BTreeMap<AgentId, f64>,
}

/// One row or JSON item before its values are checked.
struct RawActivity {
    at: Location,
    agent_id: Option<String>,
    start: Option<String>,
    end: Option<String>,
    activity: Option<String>,
    contract_hours: Option<String>,
}

const ROSTER_COLUMNS: [Column; 5] = [
    Column { name: "agent_id", aliases: &[], required: true },
    Column { name: "start", aliases: &["start_local"], required: true },
    Column { name: "end", aliases: &["end_local"], required: true },
    Column { name: "activity", aliases: &[], required: true },
    Column { name: "contract_hours", aliases: &[], required: false },
];

const ROSTER_COLUMN_LIST: &str = "agent_id, start, end, activity (contract_hours optional)";

/// Parses a roster file into scheduled activities, reading local times in
/// `tz`. Returns every error in the file when there is any.
pub fn parse_roster(text: &str, format: RosterFormat, tz: &TimeZone) -> Result<Vec<ScheduledActivity>, RosterErrors> {
    parse_roster_document(text, format, tz).map(|document| document.activities)
}

/// Parses a roster file, keeping the optional per-agent contract hours.
pub fn parse_roster_document(text: &str, format: RosterFormat, tz: &TimeZone) -> Result<RosterDocument, RosterErrors> {
    let mut errors = ErrorSink::default();
    let raw = match format {
        RosterFormat::Csv => raw_from_csv(text, &mut errors),
        RosterFormat::Json => raw_from_json(text, &mut errors),
    };

    let mut document = RosterDocument::default();
    let mut contract_seen: BTreeMap<AgentId, (f64, String)> = BTreeMap::new();
    for row in raw {
        if errors.is_full() {
            break;
        }
        if let Some(activity) = check_row(&row, tz, &mut errors) {
            record_contract_hours(&row, &activity.agent_id, &mut contract_seen, &mut errors);
            document.activities.push(activity);
        }
    }

    document.contract_hours = contract_seen.into_iter().map(|(agent, (hours, _))| (agent, hours)).collect();
    tracing::debug!(
        activities = document.activities.len(),
        agents_with_contract_hours = document.contract_hours.len(),
        "roster file parsed"
    );
    errors.into_result(document)
}

fn raw_from_csv(text: &str, errors: &mut ErrorSink) -> Vec<RawActivity> {
    read_rows(text, &ROSTER_COLUMNS, ROSTER_COLUMN_LIST, errors)
        .into_iter()
        .filter_map(|row| {
            let [agent_id, start, end, activity, contract_hours] = <[Option<String>; 5]>::try_from(row.values).ok()?;
            Some(RawActivity { at: Location::Line(row.line), agent_id, start, end, activity, contract_hours })
        })
        .collect()
}

fn raw_from_json(text: &str, errors: &mut ErrorSink) -> Vec<RawActivity> {
    let document: Value = match serde_json::from_str(text) {
        Ok(document) => document,
        Err(err) => {
            let at = Location::LineColumn { line: err.line(), column: err.column() };
            errors.push(RosterError::Json { at, message: err.to_string() });
            return Vec::new();
        }
    };
    let items = match document {
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove("activities") {
            Some(Value::Array(items)) => items,
            _ => {
                errors.push(RosterError::Json {
                    at: Location::File,
                    message: "expected an object with an \"activities\" array, or an array".to_string(),
                });
                return Vec::new();
            }
        },
        _ => {
            errors.push(RosterError::Json {
                at: Location::File,
                message: "expected an object with an \"activities\" array, or an array".to_string(),
            });
            return Vec::new();
        }
    };

    let mut raw = Vec::with_capacity(items.len().min(MAX_ROWS));
    for (index, item) in items.into_iter().enumerate() {
        let at = Location::Item { list: "activities", index };
        if index >= MAX_ROWS {
            errors.push(RosterError::TooManyRows { at, limit: MAX_ROWS });
            break;
        }
        let Value::Object(object) = item else {
            if !errors.push(RosterError::Json { at, message: "expected an object".to_string() }) {
                break;
            }
            continue;
        };

        let mut field = |name: &'static str| -> Option<String> {
            match object.get(name) {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(text.trim().to_string()).filter(|t| !t.is_empty()),
                // Contract hours are a number in JSON; keep its text form so
                // CSV and JSON share one check.
                Some(Value::Number(number)) if name == "contract_hours" => Some(number.to_string()),
                Some(other) => {
                    errors.push(RosterError::Json {
                        at,
                        message: format!("{name} must be a string, found {}", json_kind(other)),
                    });
                    None
                }
            }
        };
        raw.push(RawActivity {
            at,
            agent_id: field("agent_id"),
            start: field("start"),
            end: field("end"),
            activity: field("activity"),
            contract_hours: field("contract_hours"),
        });
    }
    raw
}

/// Checks one row; pushes every problem it finds and returns the activity
/// when there were none.
fn check_row(row: &RawActivity, tz: &TimeZone, errors: &mut ErrorSink) -> Option<ScheduledActivity> {
    let at = row.at;
    let mut valid = true;

    let agent_id = row.agent_id.clone();
    if agent_id.is_none() {
        errors.push(RosterError::MissingField { at, field: "agent_id" });
        valid = false;
    }

    let mut time = |value: &Option<String>, field: &'static str| match value {
        None => {
            errors.push(RosterError::MissingField { at, field });
            None
        }
        Some(value) => match parse_field(value, tz, at, field) {
            Ok(instant) => Some(instant),
            Err(error) => {
                errors.push(error);
                None
            }
        },
    };
    let start = time(&row.start, "start");
    let end = time(&row.end, "end");

    let activity = match row.activity.as_deref() {
        None => {
            errors.push(RosterError::MissingField { at, field: "activity" });
            None
        }
        Some(name) => {
            let parsed = ActivityType::parse(name);
            if parsed.is_none() {
                errors.push(RosterError::UnknownActivity { at, value: name.to_string(), known: known_activities() });
            }
            parsed
        }
    };

    let (Some(agent_id), Some(start), Some(end), Some(activity)) = (agent_id, start, end, activity) else {
        return None;
    };
    if end <= start {
        errors.push(RosterError::EndNotAfterStart {
            at,
            start: row.start.clone().unwrap_or_default(),
            end: row.end.clone().unwrap_or_default(),
        });
        valid = false;
    }

    valid.then_some(ScheduledActivity { agent_id, start, end, activity })
}

/// Records the row's contract hours; every row of one agent that gives
/// them must give the same number.
fn record_contract_hours(
    row: &RawActivity,
    agent_id: &str,
    seen: &mut BTreeMap<AgentId, (f64, String)>,
    errors: &mut ErrorSink,
) {
    let Some(text) = row.contract_hours.as_deref() else {
        return;
    };
    let hours = match parse_hours(Some(text), row.at, "contract_hours") {
        Ok(hours) => hours,
        Err(error) => {
            errors.push(error);
            return;
        }
    };

    match seen.entry(agent_id.to_string()) {
        Entry::Vacant(entry) => {
            entry.insert((hours, text.to_string()));
        }
        Entry::Occupied(entry) => {
            let (first, first_text) = entry.get();
            if (first - hours).abs() > 1e-9 {
                errors.push(RosterError::ContractHoursDiffer {
                    at: row.at,
                    agent_id: agent_id.to_string(),
                    value: text.to_string(),
                    first: first_text.clone(),
                });
            }
        }
    }
}

fn known_activities() -> String {
    let names: Vec<&str> = ActivityType::ALL.iter().map(|a| a.as_str()).collect();
    names.join(", ")
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;

    fn amsterdam() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").expect("bundled tzdb must contain Europe/Amsterdam")
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("test instant must parse")
    }

    fn minutes(activity: &ScheduledActivity) -> i64 {
        activity.end.duration_since(activity.start).as_mins()
    }

    #[test]
    fn csv_row_parses() {
        let text = "agent_id,start,end,activity\na-117,2026-12-07T09:00,2026-12-07T12:00,phone_duty\n";
        let activities = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect("valid roster");
        let expected = ScheduledActivity {
            agent_id: "a-117".into(),
            start: ts("2026-12-07T08:00:00Z"),
            end: ts("2026-12-07T11:00:00Z"),
            activity: ActivityType::PhoneDuty,
        };
        assert_eq!(activities, vec![expected]);
    }

    #[test]
    fn csv_columns_in_any_order_with_extras() {
        let text = "note,activity,end,start,agent_id\n\
                    first day,work,2026-12-07 12:00,2026-12-07 09:00,a-117\n";
        let activities = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect("valid roster");
        assert_eq!(activities[0].activity, ActivityType::PhoneDuty);
    }

    #[test]
    fn spring_night_shift_is_seven_hours() {
        let text = "agent_id,start,end,activity\na-1,2024-03-30T22:00,2024-03-31T06:00,work\n";
        let activities = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect("valid roster");
        assert_eq!(minutes(&activities[0]), 7 * 60);
    }

    #[test]
    fn autumn_night_shift_is_nine_hours() {
        let text = "agent_id,start,end,activity\na-1,2024-10-26T22:00,2024-10-27T06:00,work\n";
        let activities = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect("valid roster");
        assert_eq!(minutes(&activities[0]), 9 * 60);
    }

    #[test]
    fn gap_start_rejected_with_line() {
        let text = "agent_id,start,end,activity\na-1,2024-03-31T02:30,2024-03-31T04:00,work\n";
        let errors = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect_err("gap");
        assert!(matches!(&errors[0], RosterError::TimeInGap { at: Location::Line(2), .. }), "{errors}");
    }

    #[test]
    fn gap_error_names_value_and_fix() {
        let text = "agent_id,start,end,activity\na-1,2024-03-31T02:30,2024-03-31T04:00,work\n";
        let errors = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect_err("gap");
        let message = errors[0].to_string();
        assert!(message.contains("line 2: start 2024-03-31T02:30 does not exist"), "{message}");
        assert!(message.contains("2024-03-31T03:30"), "{message}");
    }

    #[test]
    fn fold_start_rejected_with_offsets() {
        let text = "agent_id,start,end,activity\na-1,2024-10-27T02:30,2024-10-27T04:00,work\n";
        let errors = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect_err("fold");
        let message = errors[0].to_string();
        assert!(message.contains("line 2: start 2024-10-27T02:30 occurs twice"), "{message}");
        assert!(message.contains("add the offset, e.g. 2024-10-27T02:30+02:00"), "{message}");
        assert!(message.contains("2024-10-27T02:30+01:00"), "{message}");
    }

    #[test]
    fn fold_with_offset_accepted() {
        let text = "agent_id,start,end,activity\na-1,2024-10-27T02:30+01:00,2024-10-27T04:00,work\n";
        let activities = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect("offset resolves fold");
        assert_eq!(activities[0].start, ts("2024-10-27T01:30:00Z"));
    }

    #[test]
    fn end_before_start_rejected() {
        let text = "agent_id,start,end,activity\na-1,2026-12-07T12:00,2026-12-07T09:00,work\n";
        let errors = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect_err("reversed");
        assert!(matches!(&errors[0], RosterError::EndNotAfterStart { .. }), "{errors}");
    }

    #[test]
    fn unknown_activity_rejected() {
        let text = "agent_id,start,end,activity\na-1,2026-12-07T09:00,2026-12-07T10:00,napping\n";
        let errors = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect_err("unknown");
        assert!(errors[0].to_string().contains("unknown activity \"napping\""), "{errors}");
    }

    #[test]
    fn errors_collected_with_line_numbers() {
        let text = "agent_id,start,end,activity\n\
                    a-1,2026-12-07T09:00,2026-12-07T10:00,work\n\
                    a-1,2026-12-07T25:00,2026-12-07T10:00,work\n\
                    a-2,2026-12-07T09:00,2026-12-07T10:00,bogus\n\
                    \n\
                    ,2026-12-07T09:00,2026-12-07T10:00,work\n";
        let errors = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect_err("three bad rows");
        let lines: Vec<Location> = errors.iter().map(RosterError::location).collect();
        assert_eq!(lines, vec![Location::Line(3), Location::Line(4), Location::Line(6)]);
    }

    #[test]
    fn one_row_reports_each_bad_field() {
        let text = "agent_id,start,end,activity\na-1,yesterday,tomorrow,bogus\n";
        let errors = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect_err("bad row");
        assert_eq!(errors.len(), 3, "{errors}");
    }

    #[test]
    fn header_required() {
        let text = "a-1,2026-12-07T09:00,2026-12-07T10:00,work\n";
        let errors = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect_err("no header");
        assert!(matches!(&errors[0], RosterError::MissingColumn { at: Location::Line(1), .. }), "{errors}");
    }

    #[test]
    fn json_object_parses() {
        let text = r#"{"activities":[{"agent_id":"a-1","start":"2026-12-07T09:00",
                       "end":"2026-12-07T10:00+01:00","activity":"training"}]}"#;
        let activities = parse_roster(text, RosterFormat::Json, &amsterdam()).expect("valid roster");
        assert_eq!(activities[0].activity, ActivityType::Training);
    }

    #[test]
    fn json_top_level_array_parses() {
        let text = r#"[{"agent_id":"a-1","start":"2026-12-07T08:00Z","end":"2026-12-07T09:00Z","activity":"break"}]"#;
        let activities = parse_roster(text, RosterFormat::Json, &amsterdam()).expect("valid roster");
        assert_eq!(activities[0].start, ts("2026-12-07T08:00:00Z"));
    }

    #[test]
    fn json_errors_name_index() {
        let text = r#"[{"agent_id":"a-1","start":"2026-12-07T09:00","end":"2026-12-07T10:00","activity":"work"},
                       {"agent_id":"a-1","start":"2024-10-27T02:30","end":"2024-10-27T04:00","activity":"work"},
                       {"agent_id":7,"start":"2026-12-07T09:00","end":"2026-12-07T10:00","activity":"work"}]"#;
        let errors = parse_roster(text, RosterFormat::Json, &amsterdam()).expect_err("two bad items");
        let at: Vec<String> = errors.iter().map(|e| e.location().to_string()).collect();
        assert_eq!(at, vec!["activities[1]", "activities[2]", "activities[2]"]);
    }

    #[test]
    fn json_syntax_error_has_line() {
        let text = "{\"activities\": [\n  {\"agent_id\": }\n]}";
        let errors = parse_roster(text, RosterFormat::Json, &amsterdam()).expect_err("bad json");
        assert!(matches!(errors[0].location(), Location::LineColumn { line: 2, .. }), "{errors}");
    }

    #[test]
    fn contract_hours_column_kept() {
        let text = "agent_id,start,end,activity,contract_hours\n\
                    a-1,2026-12-07T09:00,2026-12-07T10:00,work,24\n\
                    a-1,2026-12-08T09:00,2026-12-08T10:00,work,\n";
        let document = parse_roster_document(text, RosterFormat::Csv, &amsterdam()).expect("valid roster");
        assert_eq!(document.contract_hours.get("a-1"), Some(&24.0));
    }

    #[test]
    fn contract_hours_must_agree() {
        let text = "agent_id,start,end,activity,contract_hours\n\
                    a-1,2026-12-07T09:00,2026-12-07T10:00,work,24\n\
                    a-1,2026-12-08T09:00,2026-12-08T10:00,work,20\n";
        let errors = parse_roster(text, RosterFormat::Csv, &amsterdam()).expect_err("differ");
        assert!(matches!(&errors[0], RosterError::ContractHoursDiffer { at: Location::Line(3), .. }), "{errors}");
    }

    #[test]
    fn garbage_lines_never_panic() {
        let lines = [
            "",
            ",",
            ",,,,,,,,,",
            "\"",
            "\"unterminated,x",
            "a-1",
            "a-1,,,",
            "a-1,x,y,z",
            "a-1,2026-12-07T09:00,,work",
            "\u{0}\u{1}\u{2}",
            "ééé,ééé,ééé,ééé",
            "a-1,2026-12-07T09:00+99:99,2026-12-07T10:00,work",
            "a-1,-2026-12-07T09:00,1,work",
            "a-1,2026-12-07T09:00,2026-12-07T10:00,work,NaN",
            "a-1,2026-12-07T09:00,2026-12-07T10:00,work,inf",
            "a-1,2026-12-07T09:00,2026-12-07T10:00,work,1e400",
            "a-1,+999999-01-01T00:00Z,+999999-01-02T00:00Z,work",
        ];
        for line in lines {
            let text = format!("agent_id,start,end,activity,contract_hours\n{line}\n");
            let _ = parse_roster(&text, RosterFormat::Csv, &amsterdam());
            let _ = parse_roster(line, RosterFormat::Csv, &amsterdam());
            let _ = parse_roster(line, RosterFormat::Json, &amsterdam());
        }
    }

    #[test]
    fn json_garbage_never_panics() {
        let documents = [
            "",
            "null",
            "7",
            "\"text\"",
            "{}",
            "{\"activities\": 3}",
            "[1, \"x\", null, [], {}]",
            "[{\"agent_id\": [], \"start\": {}, \"end\": true, \"activity\": 1.5}]",
            "[{\"agent_id\": \"a-1\", \"contract_hours\": -1e308}]",
            "[[[[[[[[[[]]]]]]]]]]",
            "{\"activities\": [",
        ];
        for document in documents {
            let got = parse_roster(document, RosterFormat::Json, &amsterdam());
            assert!(got.is_err(), "{document:?} parsed as {got:?}");
        }
    }

    #[test]
    fn error_flood_is_capped() {
        let mut text = String::from("agent_id,start,end,activity\n");
        for _ in 0..1000 {
            text.push_str("a-1,bad,bad,bad\n");
        }
        let errors = parse_roster(&text, RosterFormat::Csv, &amsterdam()).expect_err("all bad");
        assert!(matches!(errors.last(), Some(RosterError::TooManyErrors { .. })), "{}", errors.len());
    }
}
