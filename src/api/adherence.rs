//! `AdherenceService`: figures per agent and team, and exceptions.

use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use tonic::{Request, Response, Status};
use tracing::{error, info};

use super::auth::{Principal, Role};
use super::convert::{self, timestamp_from_proto, timestamp_to_proto};
use super::state::ApiState;
use crate::adherence::DayFigures;
use crate::adherence::schedule::day_start_ms;
use crate::daemon::engine_task::EngineCommand;
use crate::domain::Agent;
use crate::proto;
use crate::store::{ExceptionRecord, NewException};

/// Longest accepted exception reason, in characters.
const MAX_REASON_CHARS: usize = 500;

/// The gRPC `AdherenceService`.
pub struct AdherenceApi {
    state: Arc<ApiState>,
}

// === impl AdherenceApi ===

impl AdherenceApi {
    pub fn new(state: Arc<ApiState>) -> AdherenceApi {
        AdherenceApi { state }
    }

    /// Returns the agent if the caller may see it: NOT_FOUND for an agent
    /// not in the directory, PERMISSION_DENIED for one outside the caller's
    /// scope.
    fn visible_agent(&self, principal: &Principal, agent_id: &str) -> Result<Agent, Status> {
        if agent_id.trim().is_empty() {
            return Err(Status::invalid_argument("agent_id is required"));
        }
        let directory = self.state.directory.load();
        match directory.get(agent_id) {
            Some(agent) if principal.may_see_agent(&agent.id, &agent.team) => Ok(agent.clone()),
            Some(_) => {
                Err(Status::permission_denied(format!("token \"{}\" may not see agent \"{agent_id}\"", principal.name)))
            }
            None => Err(Status::not_found(format!("agent \"{agent_id}\" is not in the agent directory"))),
        }
    }

    fn day_bounds(&self, date: Date) -> (Timestamp, Timestamp) {
        let start = Timestamp::from_millisecond(day_start_ms(date, &self.state.tz)).unwrap_or(Timestamp::MIN);
        let end = date
            .tomorrow()
            .ok()
            .and_then(|d| Timestamp::from_millisecond(day_start_ms(d, &self.state.tz)).ok())
            .unwrap_or(Timestamp::MAX);
        (start, end)
    }

    fn today(&self) -> Date {
        self.state.tz.to_datetime(self.state.clock.now()).date()
    }
}

fn engine_gone() -> Status {
    Status::unavailable("the adherence engine is shutting down")
}

fn exception_to_proto(record: &ExceptionRecord) -> proto::AdherenceException {
    proto::AdherenceException {
        id: record.id,
        agent_id: record.agent_id.clone(),
        start: Some(timestamp_to_proto(record.start)),
        end: Some(timestamp_to_proto(record.end)),
        reason: record.reason.clone(),
        approved_by: record.approved_by.clone(),
        approved_at: Some(timestamp_to_proto(record.approved_at)),
    }
}

#[tonic::async_trait]
impl proto::adherence_service_server::AdherenceService for AdherenceApi {
    async fn get_agent_day(
        &self,
        request: Request<proto::GetAgentDayRequest>,
    ) -> Result<Response<proto::AgentDayFigures>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Planner, Role::Supervisor, Role::Agent], "read agent figures")?;
        let request = request.into_inner();
        let agent = self.visible_agent(&principal, &request.agent_id)?;
        let date = self.state.date_field(&request.date, "date")?;

        let (date, as_of, figures) = self
            .state
            .engine
            .agent_day(&agent.id, date)
            .await
            .map_err(|_| engine_gone())?
            .ok_or_else(|| Status::not_found(format!("no figures for agent \"{}\"", agent.id)))?;
        Ok(Response::new(convert::day_figures(&agent.id, &date.to_string(), as_of, &figures)))
    }

    async fn get_team_day(
        &self,
        request: Request<proto::GetTeamDayRequest>,
    ) -> Result<Response<proto::TeamDayFigures>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Planner, Role::Supervisor, Role::Wallboard], "read team figures")?;
        let request = request.into_inner();
        if request.team.trim().is_empty() {
            return Err(Status::invalid_argument("team is required"));
        }
        principal.require_team(&request.team)?;
        let date = self.state.date_field(&request.date, "date")?;

        let mut agent_ids: Vec<String> =
            self.state.directory.load().agents().filter(|a| a.team == request.team).map(|a| a.id.clone()).collect();
        if agent_ids.is_empty() {
            return Err(Status::not_found(format!("team \"{}\" has no agents in the directory", request.team)));
        }
        agent_ids.sort();

        let (date, as_of, figures) = self.state.engine.team_day(agent_ids, date).await.map_err(|_| engine_gone())?;
        let date = date.to_string();
        let mut total = DayFigures::default();
        let agents = figures
            .iter()
            .map(|(id, f)| {
                total.accumulate(f);
                convert::day_figures(id, &date, as_of, f)
            })
            .collect();
        Ok(Response::new(proto::TeamDayFigures {
            team: request.team.clone(),
            date: date.clone(),
            as_of: Some(timestamp_to_proto(as_of)),
            total: Some(convert::day_figures("", &date, as_of, &total)),
            agents,
        }))
    }

    async fn add_exception(
        &self,
        request: Request<proto::AddExceptionRequest>,
    ) -> Result<Response<proto::AdherenceException>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Supervisor], "approve an exception")?;
        let request = request.into_inner();
        let agent = self.visible_agent(&principal, &request.agent_id)?;
        let start = timestamp_from_proto(request.start.as_ref(), "start")?;
        let end = timestamp_from_proto(request.end.as_ref(), "end")?;
        if end <= start {
            return Err(Status::invalid_argument(format!("end {end} is not after start {start}")));
        }
        let reason = request.reason.trim();
        if reason.is_empty() {
            return Err(Status::invalid_argument("reason is required: say why the period is excused"));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(Status::invalid_argument(format!("reason is longer than {MAX_REASON_CHARS} characters")));
        }

        let approved_at = self.state.clock.now();
        let exception = NewException {
            agent_id: agent.id.clone(),
            start,
            end,
            reason: reason.to_string(),
            approved_by: principal.name.clone(),
            approved_at,
        };
        let id = self.state.journal.add_exception(exception.clone()).await.map_err(|e| {
            error!(error = %e, agent_id = %agent.id, "storing an exception failed");
            Status::internal("storing the exception failed; see the server log")
        })?;
        info!(agent_id = %agent.id, exception_id = id, approved_by = %principal.name, "exception approved");

        self.reload_exceptions(&agent.id).await?;
        Ok(Response::new(exception_to_proto(&ExceptionRecord {
            id,
            agent_id: exception.agent_id,
            start,
            end,
            reason: exception.reason,
            approved_by: exception.approved_by,
            approved_at,
        })))
    }

    async fn list_exceptions(
        &self,
        request: Request<proto::ListExceptionsRequest>,
    ) -> Result<Response<proto::ListExceptionsResponse>, Status> {
        let principal = self.state.auth.authenticate(&request)?;
        principal.require(&[Role::Admin, Role::Planner, Role::Supervisor, Role::Agent], "list exceptions")?;
        let request = request.into_inner();
        let date = self.state.date_field(&request.date, "date")?.unwrap_or_else(|| self.today());
        let (start, end) = self.day_bounds(date);

        let agents: Vec<String> = if !request.agent_id.is_empty() {
            vec![self.visible_agent(&principal, &request.agent_id)?.id]
        } else if !request.team.is_empty() {
            principal.require_team(&request.team)?;
            self.state.directory.load().agents().filter(|a| a.team == request.team).map(|a| a.id.clone()).collect()
        } else {
            return Err(Status::invalid_argument("one of agent_id or team is required"));
        };

        let records = self.state.journal.exceptions_overlapping(start, end).map_err(|e| {
            error!(error = %e, "reading exceptions failed");
            Status::internal("reading exceptions failed; see the server log")
        })?;
        let exceptions = records.iter().filter(|r| agents.contains(&r.agent_id)).map(exception_to_proto).collect();
        Ok(Response::new(proto::ListExceptionsResponse { exceptions }))
    }
}

impl AdherenceApi {
    /// Sends the agent's exceptions in the retained window to the engine.
    async fn reload_exceptions(&self, agent_id: &str) -> Result<(), Status> {
        let from = retained_window_start(&self.state);
        let periods = self
            .state
            .journal
            .load_exceptions_since(from)
            .map_err(|e| {
                error!(error = %e, "reading exceptions failed");
                Status::internal("reading exceptions failed; see the server log")
            })?
            .into_iter()
            .filter(|r| r.agent_id == agent_id)
            .map(|r| (r.start, r.end))
            .collect();
        let engine = &self.state.engine;
        engine
            .send(EngineCommand::Exceptions { agent_id: agent_id.to_string(), periods })
            .await
            .map_err(|_| engine_gone())?;
        engine.barrier().await.map_err(|_| engine_gone())
    }
}

/// Returns the start of yesterday in the site zone: the engine keeps inputs
/// from there for recomputation.
pub fn retained_window_start(state: &ApiState) -> Timestamp {
    let today = state.tz.to_datetime(state.clock.now()).date();
    let yesterday = today.yesterday().unwrap_or(today);
    Timestamp::from_millisecond(day_start_ms(yesterday, &state.tz)).unwrap_or(Timestamp::UNIX_EPOCH)
}
