//! The agent directory: who the agents are, their contract hours and the
//! platform ids that point at them.
//!
//! Reads the directory from CSV or JSON and looks agents up by agent id or
//! platform id. It does not watch files or reload, so the caller reads the
//! file and builds a new [`Directory`].

use std::collections::HashMap;

use serde_json::Value;

use super::RosterFormat;
use super::error::{ErrorSink, Location, RosterError, RosterErrors};
use super::table::{Column, read_rows};
use crate::domain::{Agent, AgentId};

/// Lookup of agents by id. The labour rules and swaps take any implementation.
pub trait AgentLookup {
    fn find_agent(&self, id: &str) -> Option<&Agent>;
}

/// The agent directory with hashed lookups by agent id and by platform id.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    agents: Vec<Agent>,
    by_id: HashMap<AgentId, usize>,
    by_platform_id: HashMap<String, usize>,
}

const AGENT_COLUMNS: [Column; 5] = [
    Column { name: "id", aliases: &["agent_id"], required: true },
    Column { name: "display_name", aliases: &["name"], required: true },
    Column { name: "team", aliases: &[], required: true },
    Column { name: "contract_hours", aliases: &[], required: true },
    Column { name: "platform_ids", aliases: &[], required: false },
];

const AGENT_COLUMN_LIST: &str = "id, display_name, team, contract_hours (platform_ids optional)";

/// Parses an agent directory file. CSV has the header
/// `id,display_name,team,contract_hours,platform_ids`, with platform ids
/// separated by `;` or spaces. JSON is an array of agents, or an object
/// with an `agents` array. Every error in the file is returned, including
/// an agent id or platform id used twice.
pub fn parse_agents(text: &str, format: RosterFormat) -> Result<Vec<Agent>, RosterErrors> {
    let mut errors = ErrorSink::default();
    let located = match format {
        RosterFormat::Csv => agents_from_csv(text, &mut errors),
        RosterFormat::Json => agents_from_json(text, &mut errors),
    };
    check_unique(&located, &mut errors);
    errors.into_result(located.into_iter().map(|(_, agent)| agent).collect())
}

fn agents_from_csv(text: &str, errors: &mut ErrorSink) -> Vec<(Location, Agent)> {
    let rows = read_rows(text, &AGENT_COLUMNS, AGENT_COLUMN_LIST, errors);

    let mut agents = Vec::with_capacity(rows.len());
    for row in rows {
        let at = Location::Line(row.line);
        let [id, display_name, team, hours, platform_ids] = row.values.as_slice() else {
            continue;
        };

        let mut complete = true;
        for (value, field) in [(id, "id"), (display_name, "display_name"), (team, "team")] {
            if value.is_none() {
                errors.push(RosterError::MissingField { at, field });
                complete = false;
            }
        }
        let contract_hours = match parse_hours(hours.as_deref(), at, "contract_hours") {
            Ok(hours) => hours,
            Err(error) => {
                errors.push(error);
                complete = false;
                0.0
            }
        };
        if !complete {
            continue;
        }

        agents.push((
            at,
            Agent {
                id: id.clone().unwrap_or_default(),
                display_name: display_name.clone().unwrap_or_default(),
                team: team.clone().unwrap_or_default(),
                contract_hours,
                platform_ids: split_platform_ids(platform_ids.as_deref().unwrap_or("")),
            },
        ));
    }
    agents
}

fn agents_from_json(text: &str, errors: &mut ErrorSink) -> Vec<(Location, Agent)> {
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
        Value::Object(mut object) => match object.remove("agents") {
            Some(Value::Array(items)) => items,
            _ => {
                errors.push(RosterError::Json {
                    at: Location::File,
                    message: "expected an array of agents or an object with an \"agents\" array".to_string(),
                });
                return Vec::new();
            }
        },
        _ => {
            errors.push(RosterError::Json { at: Location::File, message: "expected an array of agents".to_string() });
            return Vec::new();
        }
    };

    let mut agents = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let at = Location::Item { list: "agents", index };
        match serde_json::from_value::<Agent>(item) {
            Ok(agent) => {
                if agent.id.trim().is_empty() {
                    errors.push(RosterError::MissingField { at, field: "id" });
                } else if !valid_hours(agent.contract_hours) {
                    errors.push(RosterError::InvalidHours {
                        at,
                        field: "contract_hours",
                        value: agent.contract_hours.to_string(),
                    });
                } else {
                    agents.push((at, agent));
                }
            }
            Err(err) => {
                errors.push(RosterError::Json { at, message: err.to_string() });
            }
        }
        if errors.is_full() {
            break;
        }
    }
    agents
}

fn check_unique(agents: &[(Location, Agent)], errors: &mut ErrorSink) {
    let mut ids: HashMap<&str, Location> = HashMap::new();
    let mut platform_ids: HashMap<&str, &str> = HashMap::new();

    for (at, agent) in agents {
        if let Some(first) = ids.get(agent.id.as_str()) {
            errors.push(RosterError::DuplicateAgent { at: *at, agent_id: agent.id.clone(), first: *first });
            continue;
        }
        ids.insert(&agent.id, *at);

        for platform_id in &agent.platform_ids {
            match platform_ids.get(platform_id.as_str()) {
                // The same id listed twice for one agent is harmless.
                Some(owner) if *owner == agent.id => {}
                Some(owner) => {
                    errors.push(RosterError::DuplicatePlatformId {
                        at: *at,
                        platform_id: platform_id.clone(),
                        owner: owner.to_string(),
                    });
                }
                None => {
                    platform_ids.insert(platform_id, &agent.id);
                }
            }
        }
    }
}

/// Parses a number of hours from 0 to 168 (one week). A decimal comma is
/// accepted.
// Errors are rare and end up in a Vec, so their size does not matter here.
#[allow(clippy::result_large_err)]
pub(crate) fn parse_hours(value: Option<&str>, at: Location, field: &'static str) -> Result<f64, RosterError> {
    let Some(value) = value else {
        return Err(RosterError::MissingField { at, field });
    };
    match value.replace(',', ".").parse::<f64>() {
        Ok(hours) if valid_hours(hours) => Ok(hours),
        _ => Err(RosterError::InvalidHours { at, field, value: value.to_string() }),
    }
}

fn valid_hours(hours: f64) -> bool {
    hours.is_finite() && (0.0..=168.0).contains(&hours)
}

fn split_platform_ids(text: &str) -> Vec<String> {
    text.split([';', ' ', '\t']).filter(|id| !id.is_empty()).map(str::to_string).collect()
}

// === impl Directory ===

impl Directory {
    /// Builds a directory; an agent id or platform id used twice is an error.
    pub fn new(agents: Vec<Agent>) -> Result<Directory, RosterErrors> {
        let located: Vec<(Location, Agent)> = agents
            .into_iter()
            .enumerate()
            .map(|(index, agent)| (Location::Item { list: "agents", index }, agent))
            .collect();
        let mut errors = ErrorSink::default();
        check_unique(&located, &mut errors);
        let agents: Vec<Agent> = located.into_iter().map(|(_, agent)| agent).collect();
        errors.into_result(())?;

        let mut by_id = HashMap::with_capacity(agents.len());
        let mut by_platform_id = HashMap::new();
        for (index, agent) in agents.iter().enumerate() {
            by_id.insert(agent.id.clone(), index);
            for platform_id in &agent.platform_ids {
                by_platform_id.insert(platform_id.clone(), index);
            }
        }
        Ok(Directory { agents, by_id, by_platform_id })
    }

    /// Parses a directory file and builds the directory.
    pub fn parse(text: &str, format: RosterFormat) -> Result<Directory, RosterErrors> {
        Directory::new(parse_agents(text, format)?)
    }

    pub fn get(&self, id: &str) -> Option<&Agent> {
        self.by_id.get(id).and_then(|&index| self.agents.get(index))
    }

    /// Finds the agent that `reference` names: an agent id or a platform id
    /// (SIP AOR, feed user id).
    pub fn resolve(&self, reference: &str) -> Option<&Agent> {
        self.get(reference).or_else(|| self.by_platform_id.get(reference).and_then(|&index| self.agents.get(index)))
    }

    /// Returns the agents in file order.
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }
}

// === impl AgentLookup ===

impl AgentLookup for Directory {
    fn find_agent(&self, id: &str) -> Option<&Agent> {
        self.get(id)
    }
}

impl AgentLookup for [Agent] {
    fn find_agent(&self, id: &str) -> Option<&Agent> {
        self.iter().find(|agent| agent.id == id)
    }
}

impl<const N: usize> AgentLookup for [Agent; N] {
    fn find_agent(&self, id: &str) -> Option<&Agent> {
        self.as_slice().find_agent(id)
    }
}

impl AgentLookup for Vec<Agent> {
    fn find_agent(&self, id: &str) -> Option<&Agent> {
        self.as_slice().find_agent(id)
    }
}

impl AgentLookup for HashMap<AgentId, Agent> {
    fn find_agent(&self, id: &str) -> Option<&Agent> {
        self.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\
id,display_name,team,contract_hours,platform_ids
a-117,Anna de Vries,team-noord,24,sip:1017@pbx.example.com;u-1017
a-118,Bram Jansen,team-noord,22.5,sip:1018@pbx.example.com u-1018
a-119,Chris Bakker,team-zuid,16,
";

    #[test]
    fn csv_agents_parse() {
        let agents = parse_agents(CSV, RosterFormat::Csv).expect("valid directory");
        assert_eq!(agents.len(), 3);
        assert_eq!(agents[1].contract_hours, 22.5);
        assert_eq!(agents[1].platform_ids, vec!["sip:1018@pbx.example.com", "u-1018"]);
        assert!(agents[2].platform_ids.is_empty());
    }

    #[test]
    fn csv_semicolon_platform_ids_split() {
        let agents = parse_agents(CSV, RosterFormat::Csv).expect("valid directory");
        assert_eq!(agents[0].platform_ids, vec!["sip:1017@pbx.example.com", "u-1017"]);
    }

    #[test]
    fn json_agents_parse() {
        let text = r#"[{"id":"a-1","display_name":"A","team":"t","contract_hours":20,
                        "platform_ids":["u-1"]}]"#;
        let agents = parse_agents(text, RosterFormat::Json).expect("valid directory");
        assert_eq!(agents[0].platform_ids, vec!["u-1"]);
    }

    #[test]
    fn duplicate_agent_id_rejected() {
        let text = "id,display_name,team,contract_hours\na-1,A,t,20\na-1,B,t,20\n";
        let errors = parse_agents(text, RosterFormat::Csv).expect_err("duplicate id");
        assert!(
            matches!(&errors[0], RosterError::DuplicateAgent { at: Location::Line(3), first: Location::Line(2), .. }),
            "{errors}"
        );
    }

    #[test]
    fn duplicate_platform_id_rejected() {
        let text = "id,display_name,team,contract_hours,platform_ids\n\
                    a-1,A,t,20,u-7\na-2,B,t,20,u-8;u-7\n";
        let errors = parse_agents(text, RosterFormat::Csv).expect_err("duplicate platform id");
        assert!(matches!(&errors[0], RosterError::DuplicatePlatformId { owner, .. } if owner == "a-1"), "{errors}");
    }

    #[test]
    fn json_duplicate_reported_by_index() {
        let text = r#"[{"id":"a-1","display_name":"A","team":"t","contract_hours":20},
                       {"id":"a-1","display_name":"B","team":"t","contract_hours":20}]"#;
        let errors = parse_agents(text, RosterFormat::Json).expect_err("duplicate id");
        assert_eq!(errors[0].location(), Location::Item { list: "agents", index: 1 });
    }

    #[test]
    fn bad_contract_hours_named() {
        let text = "id,display_name,team,contract_hours\na-1,A,t,twenty\n";
        let errors = parse_agents(text, RosterFormat::Csv).expect_err("bad hours");
        assert_eq!(errors.len(), 1);
        assert!(errors.to_string().contains("line 2: contract_hours \"twenty\""), "{errors}");
    }

    #[test]
    fn missing_column_named() {
        let text = "id,display_name,contract_hours\na-1,A,20\n";
        let errors = parse_agents(text, RosterFormat::Csv).expect_err("no team column");
        assert!(matches!(&errors[0], RosterError::MissingColumn { column: "team", .. }), "{errors}");
    }

    #[test]
    fn all_row_errors_collected() {
        let text = "id,display_name,team,contract_hours\n,A,t,20\na-2,B,,20\na-3,C,t,-4\n";
        let errors = parse_agents(text, RosterFormat::Csv).expect_err("three bad rows");
        let lines: Vec<Location> = errors.iter().map(RosterError::location).collect();
        assert_eq!(lines, vec![Location::Line(2), Location::Line(3), Location::Line(4)]);
    }

    #[test]
    fn directory_resolves_platform_id() {
        let directory = Directory::parse(CSV, RosterFormat::Csv).expect("valid directory");
        let agent = directory.resolve("sip:1018@pbx.example.com").map(|a| a.id.as_str());
        assert_eq!(agent, Some("a-118"));
    }

    #[test]
    fn directory_resolves_agent_id() {
        let directory = Directory::parse(CSV, RosterFormat::Csv).expect("valid directory");
        assert_eq!(directory.resolve("a-119").map(|a| a.team.as_str()), Some("team-zuid"));
    }

    #[test]
    fn directory_unknown_reference_is_none() {
        let directory = Directory::parse(CSV, RosterFormat::Csv).expect("valid directory");
        assert!(directory.resolve("u-9999").is_none());
    }
}
