//! Start-up recovery: the agent directory, the roster and today's engine
//! state, rebuilt from the journal (and the configured files on first
//! start).
//!
//! The engine is fed the retained window of the journal — yesterday and
//! today in the site zone — in journal order, exactly as it was fed live,
//! so a restart in the middle of the day gives the same figures.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use jiff::Timestamp;
use tracing::{info, warn};

use super::clock::Clock;
use super::directory::{Directory, SharedDirectory};
use super::engine_task::EngineInput;
use super::pipeline::replayed_input;
use crate::adherence::Engine;
use crate::adherence::schedule::day_start_ms;
use crate::config::Config;
use crate::domain::{Agent, ScheduledActivity};
use crate::roster::{self, RosterBook};
use crate::store::{Journal, RosterVersionRecord};

/// State recovery hands to the daemon.
pub struct Recovered {
    pub engine: Engine,
    pub directory: SharedDirectory,
    pub roster: RosterBook,
    pub agent_count: usize,
}

/// Rebuilds directory, roster and engine.
pub async fn recover(config: &Config, journal: &Journal, clock: &Clock) -> anyhow::Result<Recovered> {
    let now = clock.now();
    let tz = &config.site.time_zone;

    if let Some(path) = &config.roster.agents_file {
        let agents = read_agents(path)?;
        info!(path = %path.display(), agents = agents.len(), "importing the agent directory file");
        journal.put_agents(agents).await?;
    }
    let agents = journal.load_agents()?;
    if agents.len() > config.limits.max_agents {
        anyhow::bail!(
            "the directory contains {} agents, more than limits.max_agents = {}; raise the limit",
            agents.len(),
            config.limits.max_agents
        );
    }
    let directory = Directory::new(agents.iter().cloned());

    let mut snapshot = journal.load_roster()?;
    if snapshot.version == 0
        && let Some(path) = &config.roster.roster_file
    {
        publish_roster_file(config, journal, &agents, path, now).await?;
        snapshot = journal.load_roster()?;
    }
    let mut roster = RosterBook::from_activities(snapshot.activities.clone());
    roster.set_version(snapshot.version);
    info!(version = snapshot.version, activities = snapshot.activities.len(), "roster loaded");

    let today = tz.to_datetime(now).date();
    let yesterday = today.yesterday().unwrap_or(today);
    let retain_from = Timestamp::from_millisecond(day_start_ms(yesterday, tz)).unwrap_or(now);

    let mut engine = Engine::new(super::engine_config(config), retain_from);
    for agent in &agents {
        engine.ensure_agent(&agent.id);
    }
    for (agent_id, activities) in schedules_by_agent(&snapshot.activities) {
        engine.set_schedule(&agent_id, &activities);
    }
    let mut exceptions: BTreeMap<String, Vec<(Timestamp, Timestamp)>> = BTreeMap::new();
    for record in journal.load_exceptions_since(retain_from)? {
        exceptions.entry(record.agent_id).or_default().push((record.start, record.end));
    }
    for (agent_id, periods) in exceptions {
        engine.set_exceptions(&agent_id, periods);
    }

    let replayed = journal.for_each_since(retain_from, |seq, entry| match replayed_input(seq, entry) {
        EngineInput::Event { seq, agent_id, source, effective, kind, .. } => {
            engine.advance(effective.min(now));
            engine.apply_event(seq, &agent_id, &source, effective, &kind);
        }
        EngineInput::SourceHealth { seq, source, healthy, at } => {
            engine.advance(at.min(now));
            engine.apply_source_health(seq, &source, healthy, at);
        }
    })?;
    engine.advance(now);
    engine.drain_outputs().for_each(drop);
    info!(entries = replayed, from = %retain_from, "engine state rebuilt from the journal");

    Ok(Recovered { engine, agent_count: agents.len(), directory: SharedDirectory::new(directory), roster })
}

/// Groups activities per agent for the engine.
pub fn schedules_by_agent(activities: &[ScheduledActivity]) -> BTreeMap<String, Vec<ScheduledActivity>> {
    let mut by_agent: BTreeMap<String, Vec<ScheduledActivity>> = BTreeMap::new();
    for activity in activities {
        by_agent.entry(activity.agent_id.clone()).or_default().push(activity.clone());
    }
    by_agent
}

fn read_agents(path: &Path) -> anyhow::Result<Vec<Agent>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read roster.agents_file {}", path.display()))?;
    roster::parse_agents(&text, roster::RosterFormat::from_path(path)).map_err(|errors| {
        anyhow::anyhow!("roster.agents_file {}: {}", path.display(), errors.text(crate::i18n::Locale::En))
    })
}

async fn publish_roster_file(
    config: &Config,
    journal: &Journal,
    agents: &[Agent],
    path: &Path,
    now: Timestamp,
) -> anyhow::Result<()> {
    let tz = &config.site.time_zone;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read roster.roster_file {}", path.display()))?;
    let activities = roster::parse_roster(&text, roster::RosterFormat::from_path(path), tz).map_err(|errors| {
        anyhow::anyhow!("roster.roster_file {}: {}", path.display(), errors.text(crate::i18n::Locale::En))
    })?;
    let Some(period_start) = activities.iter().map(|a| a.start).min() else {
        warn!(path = %path.display(), "roster.roster_file has no activities; nothing published");
        return Ok(());
    };
    let period_end = activities.iter().map(|a| a.end).max().unwrap_or(period_start);

    let violations = roster::check(agents, &activities, tz, &config.roster.labour_rules);
    for violation in &violations {
        warn!(rule = violation.rule.as_str(), agent_id = %violation.agent_id, date = %violation.date, "{}", violation.text(config.site.locale));
    }

    let mut agent_ids: Vec<String> = activities.iter().map(|a| a.agent_id.clone()).collect();
    agent_ids.sort();
    agent_ids.dedup();
    let version = journal
        .publish_roster(RosterVersionRecord {
            period_start,
            period_end,
            agent_ids,
            activities,
            comment: format!("imported from {} at start-up", path.display()),
            published_by: "floorwatch".into(),
            published_at: now,
        })
        .await?;
    info!(version, violations = violations.len(), path = %path.display(), "roster file published");
    Ok(())
}
