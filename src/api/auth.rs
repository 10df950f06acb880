//! Bearer-token authentication and role checks for the gRPC API.
//!
//! Tokens are configured as SHA-256 hashes, so the configuration file holds
//! no secret. Each token carries a role and, for supervisors, wall boards and
//! agents, a scope (teams or the agent's own id). Every RPC asks for a role
//! set and checks scope on the data it returns.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tonic::{Request, Status};

/// Roles are the configuration's, so a token file and the API agree.
pub use crate::config::{Role, hash_token};

/// The caller of an RPC, after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Name of the token in the configuration, used in audit fields.
    pub name: String,
    pub role: Role,
    /// Teams a supervisor or wall board may see.
    pub teams: HashSet<String>,
    /// The agent an agent token belongs to.
    pub agent_id: Option<String>,
}

/// A configured token, as the authenticator takes it.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub sha256_hex: String,
    pub principal: Principal,
}

/// Maps presented tokens to principals.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    by_hash: Arc<HashMap<String, Principal>>,
}

// === impl Principal ===

impl Principal {
    /// Returns true when the caller sees every team.
    pub fn sees_all_teams(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Planner)
    }

    /// Returns true when the caller may see agents of `team`.
    pub fn may_see_team(&self, team: &str) -> bool {
        self.sees_all_teams() || (matches!(self.role, Role::Supervisor | Role::Wallboard) && self.teams.contains(team))
    }

    /// Returns true when the caller may see the agent `agent_id` of `team`.
    pub fn may_see_agent(&self, agent_id: &str, team: &str) -> bool {
        match self.role {
            Role::Agent => self.agent_id.as_deref() == Some(agent_id),
            Role::Ingest => false,
            _ => self.may_see_team(team),
        }
    }

    /// Fails with PERMISSION_DENIED unless the role is one of `allowed`.
    pub fn require(&self, allowed: &[Role], action: &str) -> Result<(), Status> {
        if allowed.contains(&self.role) {
            return Ok(());
        }
        let allowed: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        Err(Status::permission_denied(format!(
            "token \"{}\" has role {} and may not {action}; roles allowed: {}",
            self.name,
            self.role.as_str(),
            allowed.join(", ")
        )))
    }

    /// Fails with PERMISSION_DENIED unless the caller may see `team`.
    pub fn require_team(&self, team: &str) -> Result<(), Status> {
        if self.may_see_team(team) {
            return Ok(());
        }
        Err(Status::permission_denied(format!("token \"{}\" may not see team \"{team}\"", self.name)))
    }
}

// === impl Authenticator ===

impl Authenticator {
    pub fn new(tokens: Vec<TokenEntry>) -> Authenticator {
        let by_hash = tokens.into_iter().map(|t| (t.sha256_hex.to_ascii_lowercase(), t.principal)).collect();
        Authenticator { by_hash: Arc::new(by_hash) }
    }

    /// Returns the principal for a bearer token, or UNAUTHENTICATED.
    pub fn authenticate_token(&self, token: &str) -> Result<Principal, Status> {
        self.by_hash
            .get(&hash_token(token))
            .cloned()
            .ok_or_else(|| Status::unauthenticated("unknown bearer token; check FLOORWATCH_TOKEN or the token list"))
    }

    /// Returns the principal for the request's `authorization` metadata.
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let header = request.metadata().get("authorization").ok_or_else(|| {
            Status::unauthenticated("missing authorization metadata; send \"authorization: Bearer <token>\"")
        })?;
        let header =
            header.to_str().map_err(|_| Status::unauthenticated("authorization metadata is not valid ASCII"))?;
        let token = bearer_token(header)
            .ok_or_else(|| Status::unauthenticated("authorization metadata must be \"Bearer <token>\""))?;
        self.authenticate_token(token)
    }
}

/// Returns the token of an `Authorization: Bearer …` value.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> Authenticator {
        Authenticator::new(vec![TokenEntry {
            sha256_hex: hash_token("s3cret"),
            principal: Principal {
                name: "wallboard-noord".into(),
                role: Role::Wallboard,
                teams: HashSet::from(["team-noord".to_string()]),
                agent_id: None,
            },
        }])
    }

    #[test]
    fn known_token_authenticates() {
        let mut request = Request::new(());
        request.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
        let principal = authenticator().authenticate(&request).unwrap();
        assert_eq!(principal.role, Role::Wallboard);
    }

    #[test]
    fn unknown_token_is_unauthenticated() {
        let mut request = Request::new(());
        request.metadata_mut().insert("authorization", "Bearer wrong".parse().unwrap());
        let status = authenticator().authenticate(&request).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn missing_header_is_unauthenticated() {
        let status = authenticator().authenticate(&Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn wallboard_sees_only_its_team() {
        let principal = authenticator().authenticate_token("s3cret").unwrap();
        assert!(principal.may_see_team("team-noord"));
        assert!(!principal.may_see_team("team-zuid"));
        assert_eq!(
            principal.require(&[Role::Planner], "publish a roster").unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
    }
}
