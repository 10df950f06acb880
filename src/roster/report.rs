//! The report behind `floorwatch roster check FILE`: parse a roster file,
//! check it against the labour rules, and list every problem in the
//! planner's language.

use std::collections::BTreeSet;
use std::path::Path;

use jiff::tz::TimeZone;

use super::RosterFormat;
use super::directory::AgentLookup;
use super::import::parse_roster_document;
use super::rules::{AgentStatus, LabourRules, check_with, weeks_touched};
use crate::domain::Agent;
use crate::i18n::Locale;

/// Largest roster file the check reads, in bytes.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Checks the roster file at `path` and returns the report text and the
/// number of problems (parse errors plus violations; 0 means the roster
/// may be published). The final-window rule is not checked: it needs the
/// published roster.
///
/// With `directory`, agents not in it are reported and contract hours come
/// from it. Without it, contract hours come from the file's
/// `contract_hours` column. Agents without them get no weekly checks, and
/// the report adds a note for each.
pub fn check_file_report(
    path: &Path,
    tz: &TimeZone,
    directory: Option<&[Agent]>,
    rules: &LabourRules,
    locale: Locale,
) -> (String, usize) {
    let name = path.display().to_string();
    let text = match read_limited(path) {
        Ok(text) => text,
        Err(message) => {
            let line = match locale {
                Locale::En => format!("{name}: cannot read the file: {message}"),
                Locale::Nl => format!("{name}: kan het bestand niet lezen: {message}"),
            };
            return (line + "\n", 1);
        }
    };
    check_text_report(&name, &text, RosterFormat::from_path(path), tz, directory, rules, locale)
}

/// Checks roster `text` like [`check_file_report`]; `name` labels the lines.
pub fn check_text_report(
    name: &str,
    text: &str,
    format: RosterFormat,
    tz: &TimeZone,
    directory: Option<&[Agent]>,
    rules: &LabourRules,
    locale: Locale,
) -> (String, usize) {
    let mut report = String::new();

    let document = match parse_roster_document(text, format, tz) {
        Ok(document) => document,
        Err(errors) => {
            for error in &errors {
                report.push_str(&format!("{name}: {}\n", error.text(locale)));
            }
            report.push_str(&match locale {
                Locale::En => format!(
                    "{name}: {} errors; the labour rules are checked once the file reads cleanly\n",
                    errors.len()
                ),
                Locale::Nl => format!(
                    "{name}: {} fouten; de arbeidsregels worden gecontroleerd zodra het bestand foutloos te lezen is\n",
                    errors.len()
                ),
            });
            return (report, errors.len());
        }
    };

    let status = |agent: &str| match directory {
        Some(agents) => match agents.find_agent(agent) {
            None => AgentStatus::Unknown,
            Some(agent) => AgentStatus::Known { contract_hours: Some(agent.contract_hours) },
        },
        None => AgentStatus::Known { contract_hours: document.contract_hours.get(agent).copied() },
    };
    let weeks = weeks_touched(&document.activities, tz);
    let violations = check_with(&status, &document.activities, &weeks, tz, rules);

    for violation in &violations {
        report.push_str(&violation.text(locale));
        report.push('\n');
    }

    let agents: BTreeSet<&str> = document.activities.iter().map(|a| a.agent_id.as_str()).collect();
    if directory.is_none() {
        for agent in agents.iter().filter(|a| !document.contract_hours.contains_key(**a)) {
            report.push_str(&match locale {
                Locale::En => format!(
                    "note: {agent} has no contract_hours in the file, so its weekly hours are not checked; add the column or pass the agent directory\n"
                ),
                Locale::Nl => format!(
                    "let op: {agent} heeft geen contract_hours in het bestand, dus de uren per week zijn niet gecontroleerd; voeg de kolom toe of geef de medewerkerslijst mee\n"
                ),
            });
        }
    }

    let activities = document.activities.len();
    let agent_count = agents.len();
    let week_count = weeks.len();
    report.push_str(&match (violations.len(), locale) {
        (0, Locale::En) => {
            let unit = if week_count == 1 { "week" } else { "weeks" };
            format!("{name}: no violations; {activities} activities of {agent_count} agents in {week_count} {unit} checked\n")
        }
        (0, Locale::Nl) => {
            let unit = if week_count == 1 { "week" } else { "weken" };
            format!("{name}: geen overtredingen; {activities} activiteiten van {agent_count} medewerkers in {week_count} {unit} gecontroleerd\n")
        }
        (1, Locale::En) => format!("{name}: 1 violation of the labour rules\n"),
        (1, Locale::Nl) => format!("{name}: 1 overtreding van de arbeidsregels\n"),
        (count, Locale::En) => format!("{name}: {count} violations of the labour rules\n"),
        (count, Locale::Nl) => format!("{name}: {count} overtredingen van de arbeidsregels\n"),
    });
    (report, violations.len())
}

fn read_limited(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|err| err.to_string())?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(format!("{} bytes is more than the {MAX_FILE_BYTES} byte limit", metadata.len()));
    }
    std::fs::read_to_string(path).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amsterdam() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").expect("bundled tzdb must contain Europe/Amsterdam")
    }

    #[test]
    fn missing_file_counts_one_problem() {
        let path = Path::new("/nonexistent/roster.csv");
        let (report, count) = check_file_report(path, &amsterdam(), None, &LabourRules::default(), Locale::En);
        assert_eq!(count, 1);
        assert!(report.contains("cannot read the file"), "{report}");
    }

    #[test]
    fn parse_errors_listed_in_dutch() {
        let text = "agent_id,start,end,activity\na-1,2024-03-31T02:30,2024-03-31T04:00,work\n";
        let (report, count) = check_text_report(
            "rooster.csv",
            text,
            RosterFormat::Csv,
            &amsterdam(),
            None,
            &LabourRules::default(),
            Locale::Nl,
        );
        assert_eq!(count, 1);
        assert!(report.contains("rooster.csv: regel 2: start 2024-03-31T02:30 bestaat niet"), "{report}");
    }

    #[test]
    fn missing_contract_hours_noted() {
        let text = "agent_id,start,end,activity\na-1,2026-12-07T09:00,2026-12-07T12:00,work\n";
        let (report, count) = check_text_report(
            "roster.csv",
            text,
            RosterFormat::Csv,
            &amsterdam(),
            None,
            &LabourRules::default(),
            Locale::En,
        );
        assert_eq!(count, 0, "{report}");
        assert!(report.contains("note: a-1 has no contract_hours"), "{report}");
    }
}
