//! `RosterService`: the agent directory and the published roster, checked
//! against the labour rules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use tonic::{Request, Response, Status};
use tracing::{error, info};

use super::auth::{Principal, Role};
use super::convert::{activity_record_from_proto, activity_record_to_proto, timestamp_from_proto};
use super::state::ApiState;
use crate::daemon::engine_task::EngineCommand;
use crate::domain::{Agent, ScheduledActivity};
use crate::i18n::Locale;
use crate::proto;
use crate::roster::{self, PeriodUpdate, RosterBook, RosterFormat, SwapError, SwapRequest, Violation};
use crate::store::RosterVersionRecord;

/// Most activities accepted in one publish request.
const MAX_ACTIVITIES: usize = 500_000;

/// Most agents accepted in one `PutAgents` request.
const MAX_AGENTS_PER_REQUEST: usize = 10_000;

/// The gRPC `RosterService`.
pub struct RosterApi {
    state: Arc<ApiState>,
}

/// A publish request after parsing.
struct Submitted {
    update: PeriodUpdate,
    locale: Locale,
}

// === impl RosterApi ===

impl RosterApi {
    pub fn new(state: Arc<ApiState>) -> RosterApi {
        RosterApi { state }
    }

    /// Parses a publish or check request into a period update.
    fn submitted(&self, request: &proto::PublishRosterRequest) -> Result<Submitted, Status> {
        let locale = self.state.locale_for(&request.lang)?;
        let start = timestamp_from_proto(request.period_start.as_ref(), "period_start")?;
        let end = timestamp_from_proto(request.period_end.as_ref(), "period_end")?;
        if end <= start {
            return Err(Status::invalid_argument(format!("period_end {end} is not after period_start {start}")));
        }

        let activities = if !request.activities.is_empty() {
            if request.activities.len() > MAX_ACTIVITIES {
                return Err(Status::invalid_argument(format!(
                    "activities has {} entries, more than the {MAX_ACTIVITIES} allowed per request; publish per week",
                    request.activities.len()
                )));
            }
            request
                .activities
                .iter()
                .enumerate()
                .map(|(i, a)| activity_record_from_proto(a, &format!("activities[{i}]")))
                .collect::<Result<Vec<_>, _>>()?
        } else if !request.file_content.is_empty() {
            let format = match request.file_format.to_ascii_lowercase().as_str() {
                "csv" => RosterFormat::Csv,
                "json" => RosterFormat::Json,
                other => {
                    return Err(Status::invalid_argument(format!(
                        "file_format: \"{other}\" is not supported; use \"csv\" or \"json\""
                    )));
                }
            };
            roster::parse_roster(&request.file_content, format, &self.state.tz)
                .map_err(|errors| Status::invalid_argument(format!("file_content: {}", errors.text(locale))))?
        } else {
            Vec::new()
        };

        for (i, activity) in activities.iter().enumerate() {
            if activity.start < start || activity.start >= end {
                return Err(Status::invalid_argument(format!(
                    "activities[{i}]: starts at {} outside the period {start} to {end}; widen the period",
                    activity.start
                )));
            }
        }
        let agent_ids: BTreeSet<String> = activities.iter().map(|a| a.agent_id.clone()).collect();
        Ok(Submitted { update: PeriodUpdate { start, end, agent_ids, activities }, locale })
    }

    /// Returns every violation the update would cause: the labour rules on
    /// the roster as it would be, unknown agents, and changes inside the
    /// final window.
    fn violations(&self, book: &RosterBook, update: &PeriodUpdate) -> Vec<Violation> {
        let directory = self.state.directory.load();
        let mut next = book.clone();
        if next.apply(update).is_err() {
            return Vec::new();
        }
        let weeks = roster::weeks_touched(&update.activities, &self.state.tz);
        let affected: Vec<ScheduledActivity> =
            update.agent_ids.iter().flat_map(|agent| next.activities(agent).iter().cloned()).collect();
        let mut violations =
            roster::check_weeks(&*directory, &affected, &weeks, &self.state.tz, &self.state.labour_rules);
        violations.extend(roster::changes_inside_final_window(
            book,
            update,
            self.state.clock.now(),
            &self.state.tz,
            &self.state.labour_rules,
        ));
        violations
    }

    /// Stores a new roster version, applies it to the book and sends the
    /// changed agents' schedules to the engine. The caller holds the book
    /// lock.
    async fn store(
        &self,
        book: &mut RosterBook,
        update: PeriodUpdate,
        comment: String,
        principal: &Principal,
    ) -> Result<u64, Status> {
        let mut next = book.clone();
        next.apply(&update).map_err(|e| Status::invalid_argument(e.to_string()))?;

        let agent_ids: Vec<String> = update.agent_ids.iter().cloned().collect();
        let version = self
            .state
            .journal
            .publish_roster(RosterVersionRecord {
                period_start: update.start,
                period_end: update.end,
                agent_ids: agent_ids.clone(),
                activities: update.activities,
                comment,
                published_by: principal.name.clone(),
                published_at: self.state.clock.now(),
            })
            .await
            .map_err(|e| {
                error!(error = %e, "storing the roster failed");
                Status::internal("storing the roster failed; nothing was published; see the server log")
            })?;
        *book = next;
        book.set_version(version);

        let schedules = agent_ids.iter().map(|id| (id.clone(), book.activities(id).to_vec())).collect();
        // The barrier makes the reply wait until the floor shows the roster.
        let engine = &self.state.engine;
        if engine.send(EngineCommand::Schedules(schedules)).await.is_err() || engine.barrier().await.is_err() {
            return Err(Status::unavailable(
                "the engine is shutting down; the roster is stored and applies after a restart",
            ));
        }
        Ok(version)
    }
}

fn violation_to_proto(violation: &Violation, locale: Locale) -> proto::Violation {
    proto::Violation {
        agent_id: violation.agent_id.clone(),
        date: violation.date.to_string(),
        rule: violation.rule.as_str().to_string(),
        value: violation.value,
        limit: violation.limit,
        text: violation.text(locale),
    }
}

fn validate_agent(agent: &proto::Agent, field: &str) -> Result<Agent, Status> {
    let id = agent.id.trim();
    if id.is_empty() || id.len() > 128 {
        return Err(Status::invalid_argument(format!("{field}.id is required and at most 128 bytes")));
    }
    if agent.team.trim().is_empty() {
        return Err(Status::invalid_argument(format!("{field}.team is required")));
    }
    if !(agent.contract_hours.is_finite() && agent.contract_hours > 0.0 && agent.contract_hours <= 168.0) {
        return Err(Status::invalid_argument(format!(
            "{field}.contract_hours {} is not a number of hours between 0 and 168",
            agent.contract_hours
        )));
    }
    Ok(Agent {
        id: id.to_string(),
        display_name: if agent.display_name.trim().is_empty() { id.to_string() } else { agent.display_name.clone() },
        team: agent.team.trim().to_string(),
        contract_hours: agent.contract_hours,
        platform_ids: agent.platform_ids.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
    })
}

#[tonic::async_trait]
impl proto::roster_service_server::RosterService for RosterApi {
    async fn put_agents(
        &self,
        request: Request<proto::PutAgentsRequest>,
    ) -> Result<Response<proto::PutAgentsResponse>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Planner], "change the agent directory")?;
        let request = request.into_inner();
        if request.agents.len() > MAX_AGENTS_PER_REQUEST {
            return Err(Status::invalid_argument(format!("agents has more than {MAX_AGENTS_PER_REQUEST} entries")));
        }
        let agents = request
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| validate_agent(a, &format!("agents[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;

        let stored = agents.len() as u32;
        let next = {
            let _write = self.state.directory_write.lock().unwrap_or_else(|p| p.into_inner());
            let current = self.state.directory.load();

            // A platform id may point at one agent only.
            let mut claimed: BTreeMap<&str, &str> = BTreeMap::new();
            for agent in &agents {
                for platform_id in &agent.platform_ids {
                    if let Some(other) = claimed.insert(platform_id, &agent.id) {
                        return Err(Status::invalid_argument(format!(
                            "platform id \"{platform_id}\" is given for agents \"{other}\" and \"{}\"",
                            agent.id
                        )));
                    }
                    if let Some(owner) = current.resolve(platform_id)
                        && owner != &agent.id
                        && !agents.iter().any(|a| &a.id == owner)
                    {
                        return Err(Status::already_exists(format!(
                            "platform id \"{platform_id}\" already belongs to agent \"{owner}\""
                        )));
                    }
                }
            }
            let next = current.with(agents.iter().cloned());
            if next.len() > self.state.limits.max_agents {
                return Err(Status::resource_exhausted(format!(
                    "the directory would hold {} agents, more than limits.max_agents",
                    next.len()
                )));
            }
            next
        };

        self.state.journal.put_agents(agents.clone()).await.map_err(|e| {
            error!(error = %e, "storing agents failed");
            Status::internal("storing the agents failed; nothing changed; see the server log")
        })?;
        self.state.directory.store(next);
        let ids = agents.into_iter().map(|a| a.id).collect();
        // The barrier makes the reply wait until the floor shows the agents.
        let engine = &self.state.engine;
        if engine.send(EngineCommand::AgentsChanged(ids)).await.is_err() || engine.barrier().await.is_err() {
            return Err(Status::unavailable(
                "the engine is shutting down; the agents are stored and appear after a restart",
            ));
        }
        info!(stored, by = %principal.name, "agents stored");
        Ok(Response::new(proto::PutAgentsResponse { stored }))
    }

    async fn list_agents(
        &self,
        request: Request<proto::ListAgentsRequest>,
    ) -> Result<Response<proto::ListAgentsResponse>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Planner, Role::Supervisor, Role::Wallboard], "list agents")?;
        let request = request.into_inner();
        if !request.team.is_empty() {
            principal.require_team(&request.team)?;
        }
        let directory = self.state.directory.load();
        let mut agents: Vec<proto::Agent> = directory
            .agents()
            .filter(|a| request.team.is_empty() || a.team == request.team)
            .filter(|a| principal.may_see_team(&a.team))
            .map(|a| proto::Agent {
                id: a.id.clone(),
                display_name: a.display_name.clone(),
                team: a.team.clone(),
                contract_hours: a.contract_hours,
                platform_ids: a.platform_ids.clone(),
            })
            .collect();
        agents.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Response::new(proto::ListAgentsResponse { agents }))
    }

    async fn publish_roster(
        &self,
        request: Request<proto::PublishRosterRequest>,
    ) -> Result<Response<proto::PublishRosterResponse>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Planner], "publish a roster")?;
        let request = request.into_inner();
        let Submitted { update, locale } = self.submitted(&request)?;
        let activities = update.activities.len() as u32;

        let mut book = self.state.roster.lock().await;
        let violations = self.violations(&book, &update);
        let protos: Vec<proto::Violation> = violations.iter().map(|v| violation_to_proto(v, locale)).collect();
        if request.reject_on_violation && !violations.is_empty() {
            info!(violations = violations.len(), by = %principal.name, "roster not published: violations found");
            return Ok(Response::new(proto::PublishRosterResponse {
                version: 0,
                published: false,
                violations: protos,
                activities,
            }));
        }

        let version = self.store(&mut book, update, request.comment.clone(), &principal).await?;
        info!(version, activities, violations = violations.len(), by = %principal.name, "roster published");
        Ok(Response::new(proto::PublishRosterResponse { version, published: true, violations: protos, activities }))
    }

    async fn check_roster(
        &self,
        request: Request<proto::PublishRosterRequest>,
    ) -> Result<Response<proto::CheckRosterResponse>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Planner, Role::Supervisor], "check a roster")?;
        let request = request.into_inner();
        let Submitted { update, locale } = self.submitted(&request)?;
        let book = self.state.roster.lock().await;
        let violations = self.violations(&book, &update);
        Ok(Response::new(proto::CheckRosterResponse {
            violations: violations.iter().map(|v| violation_to_proto(v, locale)).collect(),
            activities: update.activities.len() as u32,
        }))
    }

    async fn get_roster(
        &self,
        request: Request<proto::GetRosterRequest>,
    ) -> Result<Response<proto::GetRosterResponse>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(
            &[Role::Admin, Role::Planner, Role::Supervisor, Role::Wallboard, Role::Agent],
            "read the roster",
        )?;
        let request = request.into_inner();
        let start = timestamp_from_proto(request.period_start.as_ref(), "period_start")?;
        let end = timestamp_from_proto(request.period_end.as_ref(), "period_end")?;
        if end <= start {
            return Err(Status::invalid_argument(format!("period_end {end} is not after period_start {start}")));
        }
        if !request.team.is_empty() {
            principal.require_team(&request.team)?;
        }

        let directory = self.state.directory.load();
        let book = self.state.roster.lock().await;
        let wanted: BTreeSet<&str> = request.agent_ids.iter().map(String::as_str).collect();
        let mut activities = Vec::new();
        for agent_id in book.agents() {
            if !wanted.is_empty() && !wanted.contains(agent_id.as_str()) {
                continue;
            }
            let team = directory.get(agent_id).map_or("", |a| a.team.as_str());
            if !request.team.is_empty() && team != request.team {
                continue;
            }
            if !principal.may_see_agent(agent_id, team) {
                continue;
            }
            activities.extend(book.activities_in(agent_id, start, end).map(activity_record_to_proto));
        }
        Ok(Response::new(proto::GetRosterResponse { version: book.version(), activities }))
    }

    async fn swap_shifts(
        &self,
        request: Request<proto::SwapShiftsRequest>,
    ) -> Result<Response<proto::SwapShiftsResponse>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Planner, Role::Agent], "swap shifts")?;
        let request = request.into_inner();
        let locale = self.state.locale_for(&request.lang)?;
        if principal.role == Role::Agent {
            let own = principal.agent_id.as_deref();
            if own != Some(request.agent_a.as_str()) && own != Some(request.agent_b.as_str()) {
                return Err(Status::permission_denied("an agent may only swap their own shifts"));
            }
        }
        let directory = self.state.directory.load();
        for (field, id) in [("agent_a", &request.agent_a), ("agent_b", &request.agent_b)] {
            if directory.get(id).is_none() {
                return Err(Status::not_found(format!("{field}: agent \"{id}\" is not in the agent directory")));
            }
        }
        let ranges = |ranges: &[proto::TimeRange], field: &str| -> Result<Vec<(Timestamp, Timestamp)>, Status> {
            ranges
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    Ok((
                        timestamp_from_proto(r.start.as_ref(), &format!("{field}[{i}].start"))?,
                        timestamp_from_proto(r.end.as_ref(), &format!("{field}[{i}].end"))?,
                    ))
                })
                .collect()
        };
        let swap_request = SwapRequest {
            agent_a: request.agent_a.clone(),
            agent_b: request.agent_b.clone(),
            from_a: ranges(&request.from_a, "from_a")?,
            from_b: ranges(&request.from_b, "from_b")?,
        };

        let mut book = self.state.roster.lock().await;
        match roster::swap(&book, &swap_request, &*directory, &self.state.tz, &self.state.labour_rules) {
            Ok(update) => {
                let comment = format!("swap between {} and {}", request.agent_a, request.agent_b);
                let version = self.store(&mut book, update, comment, &principal).await?;
                info!(version, agent_a = %request.agent_a, agent_b = %request.agent_b, by = %principal.name, "shifts swapped");
                Ok(Response::new(proto::SwapShiftsResponse { applied: true, version, violations: Vec::new() }))
            }
            Err(SwapError::Rejected { violations }) => Ok(Response::new(proto::SwapShiftsResponse {
                applied: false,
                version: 0,
                violations: violations.iter().map(|v| violation_to_proto(v, locale)).collect(),
            })),
            Err(other) => Err(Status::invalid_argument(other.text(locale))),
        }
    }
}
