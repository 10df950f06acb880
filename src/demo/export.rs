//! Encoders that hand the simulated site to the daemon through its normal
//! paths: WebSocket ingest frames (schema v1) for events, and the agent and
//! roster CSV files the roster import reads.
//!
//! This module only builds text. Sending frames and publishing files is the
//! `demo` command's job.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::domain::{CallDirection, EventKind};

use super::behaviour::SimEvent;
use super::site::Site;

/// One event frame of the WebSocket ingest schema, version 1. Fields that do
/// not apply to the event are left out of the JSON.
#[derive(Debug, Serialize)]
struct EventFrameV1<'a> {
    v: u32,
    #[serde(rename = "type")]
    frame_type: &'static str,
    id: &'a str,
    seq: u64,
    /// UTC with millisecond precision: `2026-12-04T09:00:00.123Z`.
    time: String,
    agent: &'a str,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    registered: Option<bool>,
}

/// Encodes an event as a WebSocket ingest frame of schema v1, with `seq` as
/// the frame's sequence number on the connection.
///
/// ```text
/// {"v":1,"type":"event","id":"sim-000001","seq":1,"time":"2026-12-04T09:00:00.123Z","agent":"u-1017","event":"login"}
/// ```
pub fn sim_event_to_json_v1(event: &SimEvent, seq: u64) -> String {
    let mut frame = EventFrameV1 {
        v: 1,
        frame_type: "event",
        id: &event.event_id,
        seq,
        time: format_utc_millis(event.time),
        agent: &event.agent_ref,
        event: "",
        code: None,
        call_id: None,
        direction: None,
        registered: None,
    };

    match &event.kind {
        EventKind::Login => frame.event = "login",
        EventKind::Logout => frame.event = "logout",
        EventKind::State { code } => {
            frame.event = "state";
            frame.code = Some(code);
        }
        EventKind::CallRinging { call_id, direction } => {
            frame.event = "call_ringing";
            frame.call_id = Some(call_id);
            frame.direction = Some(direction_name(*direction));
        }
        EventKind::CallStart { call_id, direction } => {
            frame.event = "call_start";
            frame.call_id = Some(call_id);
            frame.direction = Some(direction_name(*direction));
        }
        EventKind::CallHold { call_id } => {
            frame.event = "call_hold";
            frame.call_id = Some(call_id);
        }
        EventKind::CallResume { call_id } => {
            frame.event = "call_resume";
            frame.call_id = Some(call_id);
        }
        EventKind::CallEnd { call_id } => {
            frame.event = "call_end";
            frame.call_id = Some(call_id);
        }
        EventKind::Device { registered } => {
            frame.event = "device";
            frame.registered = Some(*registered);
        }
    }

    // Serializing a struct of strings, numbers and booleans has no failure
    // path in serde_json.
    serde_json::to_string(&frame).expect("an event frame of plain fields must serialize")
}

/// Writes the agent directory as CSV with the header
/// `id,display_name,team,contract_hours,platform_ids`; platform ids are
/// separated by `;`.
pub fn site_agents_csv(site: &Site) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    write_row(&mut writer, ["id", "display_name", "team", "contract_hours", "platform_ids"]);
    for agent in &site.agents {
        let hours = format_hours(agent.contract_hours);
        let platform_ids = agent.platform_ids.join(";");
        write_row(
            &mut writer,
            [
                agent.id.as_str(),
                agent.display_name.as_str(),
                agent.team.as_str(),
                hours.as_str(),
                platform_ids.as_str(),
            ],
        );
    }
    into_string(writer)
}

/// Writes the roster as CSV with the header `agent_id,start,end,activity`;
/// start and end are RFC 3339 local times in `tz` with their offset
/// (`2026-12-07T09:00:00+01:00`).
pub fn site_roster_csv(site: &Site, tz: &TimeZone) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    write_row(&mut writer, ["agent_id", "start", "end", "activity"]);
    for activity in &site.activities {
        let start = format_local(activity.start, tz);
        let end = format_local(activity.end, tz);
        write_row(&mut writer, [activity.agent_id.as_str(), start.as_str(), end.as_str(), activity.activity.as_str()]);
    }
    into_string(writer)
}

fn direction_name(direction: CallDirection) -> &'static str {
    match direction {
        CallDirection::Inbound => "inbound",
        CallDirection::Outbound => "outbound",
    }
}

fn format_utc_millis(time: Timestamp) -> String {
    format!("{time:.3}")
}

fn format_local(time: Timestamp, tz: &TimeZone) -> String {
    time.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// Formats hours without a trailing `.0`: `24`, `22.5`.
fn format_hours(hours: f64) -> String {
    if hours.fract() == 0.0 { format!("{hours:.0}") } else { format!("{hours}") }
}

// Writing CSV into a Vec<u8> cannot fail: the writer only fails on I/O
// errors of the sink and on records of unequal length, and every row here
// has the header's length.
fn write_row<const N: usize>(writer: &mut csv::Writer<Vec<u8>>, row: [&str; N]) {
    writer.write_record(row).expect("writing a CSV row to memory must succeed");
}

fn into_string(writer: csv::Writer<Vec<u8>>) -> String {
    let bytes = writer.into_inner().expect("flushing CSV to memory must succeed");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields must be UTF-8")
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::demo::site::{DEFAULT_AGENTS, generate_site};
    use crate::domain::{ActivityType, Agent, ScheduledActivity};
    use crate::roster::rules::LabourRules;

    fn amsterdam() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").expect("the bundled tzdb must contain Europe/Amsterdam")
    }

    fn event(kind: EventKind) -> SimEvent {
        SimEvent {
            time: "2026-12-04T09:00:00.123Z".parse().expect("a valid RFC 3339 time"),
            agent_ref: "u-1017".into(),
            kind,
            event_id: "sim-000001".into(),
        }
    }

    fn parse(frame: &str) -> serde_json::Value {
        serde_json::from_str(frame).expect("a frame must be valid JSON")
    }

    #[test]
    fn login_frame_matches_schema() {
        let frame = sim_event_to_json_v1(&event(EventKind::Login), 1);
        assert_eq!(
            frame,
            r#"{"v":1,"type":"event","id":"sim-000001","seq":1,"time":"2026-12-04T09:00:00.123Z","agent":"u-1017","event":"login"}"#
        );
    }

    #[test]
    fn time_keeps_milliseconds() {
        let mut whole = event(EventKind::Logout);
        whole.time = "2026-12-04T09:00:00Z".parse().expect("a valid RFC 3339 time");
        let frame = parse(&sim_event_to_json_v1(&whole, 2));
        assert_eq!(frame["time"], "2026-12-04T09:00:00.000Z");
    }

    #[test]
    fn frames_carry_event_fields() {
        let call = || "call-1".to_string();
        let cases = [
            (EventKind::Logout, "logout", vec![]),
            (EventKind::State { code: "Pauze".into() }, "state", vec![("code", serde_json::json!("Pauze"))]),
            (
                EventKind::CallRinging { call_id: call(), direction: CallDirection::Inbound },
                "call_ringing",
                vec![("call_id", serde_json::json!("call-1")), ("direction", serde_json::json!("inbound"))],
            ),
            (
                EventKind::CallStart { call_id: call(), direction: CallDirection::Outbound },
                "call_start",
                vec![("call_id", serde_json::json!("call-1")), ("direction", serde_json::json!("outbound"))],
            ),
            (EventKind::CallHold { call_id: call() }, "call_hold", vec![("call_id", serde_json::json!("call-1"))]),
            (EventKind::CallResume { call_id: call() }, "call_resume", vec![("call_id", serde_json::json!("call-1"))]),
            (EventKind::CallEnd { call_id: call() }, "call_end", vec![("call_id", serde_json::json!("call-1"))]),
            (EventKind::Device { registered: false }, "device", vec![("registered", serde_json::json!(false))]),
        ];

        for (kind, name, fields) in cases {
            let frame = parse(&sim_event_to_json_v1(&event(kind), 7));
            assert_eq!(frame["v"], 1, "{name}");
            assert_eq!(frame["type"], "event", "{name}");
            assert_eq!(frame["id"], "sim-000001", "{name}");
            assert_eq!(frame["seq"], 7, "{name}");
            assert_eq!(frame["time"], "2026-12-04T09:00:00.123Z", "{name}");
            assert_eq!(frame["agent"], "u-1017", "{name}");
            assert_eq!(frame["event"], name);
            for (field, value) in &fields {
                assert_eq!(&frame[*field], value, "{name}.{field}");
            }
            let object = frame.as_object().expect("a frame is a JSON object");
            assert_eq!(object.len(), 7 + fields.len(), "{name} has extra fields: {frame}");
        }
    }

    #[test]
    fn simulated_frames_parse_back() {
        let tz = amsterdam();
        let site = generate_site(3, 40, date(2026, 12, 7), &tz, &LabourRules::default());
        let start: Timestamp = "2026-12-07T09:30:00Z".parse().expect("a valid RFC 3339 time");
        let mut simulator = crate::demo::Simulator::new(&site, 3, start);
        let end = start.checked_add(jiff::SignedDuration::from_hours(2)).expect("a 2026 time");
        let events = simulator.advance(end);
        assert!(!events.is_empty());

        for (seq, event) in (1..).zip(&events) {
            let frame = parse(&sim_event_to_json_v1(event, seq));
            assert_eq!(frame["v"], 1);
            assert_eq!(frame["seq"], seq);
            assert_eq!(frame["id"], event.event_id.as_str());
            assert_eq!(frame["agent"], event.agent_ref.as_str());
            let time: Timestamp = frame["time"].as_str().and_then(|t| t.parse().ok()).expect("time is RFC 3339");
            assert_eq!(time, event.time);
            assert!(frame["event"].is_string(), "{frame}");
        }
    }

    #[test]
    fn agents_csv_lists_every_agent() {
        let site = generate_site(3, DEFAULT_AGENTS, date(2026, 12, 7), &amsterdam(), &LabourRules::default());
        let csv = site_agents_csv(&site);
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header = reader.headers().expect("a header row").clone();
        assert_eq!(header.iter().collect::<Vec<_>>(), ["id", "display_name", "team", "contract_hours", "platform_ids"]);

        let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("valid CSV rows");
        assert_eq!(rows.len(), DEFAULT_AGENTS);
        assert_eq!(&rows[0][0], "a-001");
        assert_eq!(&rows[0][4], "sip:1001@pbx.example.com;u-1001");
        for (row, agent) in rows.iter().zip(&site.agents) {
            let hours: f64 = row[3].parse().expect("contract hours are a number");
            assert_eq!(hours, agent.contract_hours, "{}", agent.id);
        }
    }

    #[test]
    fn contract_hours_drop_trailing_zero() {
        assert_eq!(format_hours(24.0), "24");
        assert_eq!(format_hours(22.5), "22.5");
    }

    #[test]
    fn roster_csv_uses_local_offsets() {
        let tz = amsterdam();
        let at = |text: &str| -> Timestamp { text.parse().expect("a valid RFC 3339 time") };
        let site = Site {
            agents: vec![Agent {
                id: "a-001".into(),
                display_name: "Test Agent".into(),
                team: "team-noord".into(),
                contract_hours: 16.0,
                platform_ids: vec!["u-1001".into()],
            }],
            activities: vec![
                ScheduledActivity {
                    agent_id: "a-001".into(),
                    start: at("2026-12-07T08:00:00Z"),
                    end: at("2026-12-07T09:15:00Z"),
                    activity: ActivityType::PhoneDuty,
                },
                ScheduledActivity {
                    agent_id: "a-001".into(),
                    start: at("2026-06-08T07:00:00Z"),
                    end: at("2026-06-08T07:15:00Z"),
                    activity: ActivityType::Break,
                },
            ],
        };
        let csv = site_roster_csv(&site, &tz);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "agent_id,start,end,activity");
        assert_eq!(lines[1], "a-001,2026-12-07T09:00:00+01:00,2026-12-07T10:15:00+01:00,phone_duty");
        assert_eq!(lines[2], "a-001,2026-06-08T09:00:00+02:00,2026-06-08T09:15:00+02:00,break");
    }

    #[test]
    fn roster_csv_round_trips_times() {
        let tz = amsterdam();
        let site = generate_site(3, 30, date(2026, 12, 7), &tz, &LabourRules::default());
        let csv = site_roster_csv(&site, &tz);
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("valid CSV rows");
        assert_eq!(rows.len(), site.activities.len());
        for (row, activity) in rows.iter().zip(&site.activities) {
            let start: Timestamp = row[1].parse().expect("start is RFC 3339");
            let end: Timestamp = row[2].parse().expect("end is RFC 3339");
            assert_eq!(start, activity.start, "{row:?}");
            assert_eq!(end, activity.end, "{row:?}");
            assert_eq!(ActivityType::parse(&row[3]), Some(activity.activity), "{row:?}");
        }
    }
}
