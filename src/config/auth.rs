//! API tokens: who may call the gRPC API and in which role.
//!
//! The config file stores only the SHA-256 of each bearer token, so a leaked
//! file does not leak a token. This module checks the entries and matches a
//! presented token; the API layer decides what each role may do.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::domain::{AgentId, TeamId};

use super::parse::{Checker, RawToken};

/// Permission set of a token holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Planner,
    /// Sees and acts on the listed teams only.
    Supervisor,
    /// Read-only floor view of the listed teams.
    Wallboard,
    /// One agent, reading its own roster and chat.
    Agent,
    /// A bridge or CTI connector that submits events.
    Ingest,
}

/// One configured bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Unique name, used in logs and audit records instead of the token.
    pub name: String,
    pub role: Role,
    /// SHA-256 of the bearer token.
    pub sha256: [u8; 32],
    /// Teams in scope; non-empty for supervisor and wallboard.
    pub teams: Vec<TeamId>,
    /// The agent, for role agent only.
    pub agent_id: Option<AgentId>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub tokens: Vec<ApiToken>,
}

/// Returns the lowercase hex SHA-256 of a bearer token, as `sha256` in
/// `[[auth.token]]` expects it.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

// === impl Role ===

impl Role {
    pub const ALL: [Role; 6] =
        [Role::Admin, Role::Planner, Role::Supervisor, Role::Wallboard, Role::Agent, Role::Ingest];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Planner => "planner",
            Role::Supervisor => "supervisor",
            Role::Wallboard => "wallboard",
            Role::Agent => "agent",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name.trim())
    }

    fn needs_teams(self) -> bool {
        matches!(self, Role::Supervisor | Role::Wallboard)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl ApiToken ===

impl fmt::Debug for ApiToken {
    /// Shows the hash prefix only, so a debug dump cannot be replayed as a
    /// lookup table entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("sha256", &format_args!("{}…", hex::encode(&self.sha256[..4])))
            .field("teams", &self.teams)
            .field("agent_id", &self.agent_id)
            .finish()
    }
}

// === impl AuthConfig ===

impl AuthConfig {
    /// Returns the token entry whose hash matches `bearer`, if any.
    pub fn verify(&self, bearer: &str) -> Option<&ApiToken> {
        let presented: [u8; 32] = Sha256::digest(bearer.as_bytes()).into();
        self.tokens.iter().find(|token| constant_time_eq(&token.sha256, &presented))
    }
}

/// Compares two hashes without stopping at the first differing byte.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the `[[auth.token]]` entries and converts the valid ones.
pub(crate) fn build_auth(raw_tokens: Vec<RawToken>, checker: &mut Checker) -> AuthConfig {
    let configured = raw_tokens.len();
    let mut tokens = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut hashes: BTreeMap<[u8; 32], usize> = BTreeMap::new();

    for (index, raw) in raw_tokens.into_iter().enumerate() {
        let key = format!("auth.token[{index}]");

        let name = match raw.name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => Some(name.to_owned()),
            _ => {
                checker.problem(
                    &format!("{key}.name"),
                    "missing or empty token name",
                    "add name = \"…\", a unique label such as \"wallboard-noord\"",
                );
                None
            }
        };
        if let Some(name) = &name
            && let Some(first) = names.insert(name.clone(), index)
        {
            checker.problem(
                &format!("{key}.name"),
                format!("token name \"{name}\" is also used by auth.token[{first}]"),
                "give every token a unique name",
            );
        }

        let role = parse_role(raw.role.as_deref(), &key, checker);

        let sha256 = parse_hash(raw.sha256.as_deref(), &key, checker);
        if let Some(hash) = sha256
            && let Some(first) = hashes.insert(hash, index)
        {
            checker.problem(
                &format!("{key}.sha256"),
                format!("the same token hash is used by auth.token[{first}]"),
                "issue a separate token for each client so each can be revoked alone",
            );
        }

        check_scope(role, &raw, &key, checker);

        if let (Some(name), Some(role), Some(sha256)) = (name, role, sha256) {
            tokens.push(ApiToken {
                name,
                role,
                sha256,
                teams: raw.teams.iter().map(|t| t.trim().to_owned()).collect(),
                agent_id: raw.agent_id.map(|a| a.trim().to_owned()),
            });
        }
    }

    if configured == 0 {
        checker.warning(
            "auth.token",
            "no API tokens are configured, so no client can authenticate to the gRPC API",
            "add [[auth.token]] entries; docs/configuration.md shows how to hash a token",
        );
    }
    AuthConfig { tokens }
}

fn parse_role(role: Option<&str>, key: &str, checker: &mut Checker) -> Option<Role> {
    let names = Role::ALL.map(Role::as_str).join(", ");
    let Some(text) = role else {
        checker.problem(&format!("{key}.role"), "missing key \"role\"", format!("add role = one of {names}"));
        return None;
    };
    let role = Role::parse(text);
    if role.is_none() {
        checker.problem(&format!("{key}.role"), format!("unknown role \"{text}\""), format!("use one of {names}"));
    }
    role
}

fn parse_hash(hash: Option<&str>, key: &str, checker: &mut Checker) -> Option<[u8; 32]> {
    let fix = "write the 64-digit hex SHA-256 of the token, as printed by \
               `printf %s \"$TOKEN\" | sha256sum`";
    let Some(text) = hash else {
        checker.problem(&format!("{key}.sha256"), "missing key \"sha256\"", fix);
        return None;
    };

    let mut bytes = [0u8; 32];
    let text = text.trim();
    if text.len() != 64 || hex::decode_to_slice(text, &mut bytes).is_err() {
        // Never echo the value: someone may have pasted the token itself.
        checker.problem(
            &format!("{key}.sha256"),
            format!("not a hex SHA-256 ({} characters, expected 64 hex digits)", text.chars().count()),
            fix,
        );
        return None;
    }
    Some(bytes)
}

/// Checks that teams and agent_id fit the role.
fn check_scope(role: Option<Role>, raw: &RawToken, key: &str, checker: &mut Checker) {
    let Some(role) = role else {
        return;
    };

    for (index, team) in raw.teams.iter().enumerate() {
        if team.trim().is_empty() {
            checker.problem(&format!("{key}.teams[{index}]"), "empty team name", "remove the entry or name the team");
        }
    }

    if role.needs_teams() && raw.teams.is_empty() {
        checker.problem(
            &format!("{key}.teams"),
            format!("role {role} needs at least one team"),
            "add teams = [\"team-noord\"] with the teams this token may see",
        );
    }
    if !role.needs_teams() && !raw.teams.is_empty() {
        checker.problem(
            &format!("{key}.teams"),
            format!("teams apply to roles supervisor and wallboard only, not to {role}"),
            "remove teams, or change the role",
        );
    }

    let agent_id = raw.agent_id.as_deref().map(str::trim);
    match (role, agent_id) {
        (Role::Agent, None | Some("")) => checker.problem(
            &format!("{key}.agent_id"),
            "role agent needs the agent's id",
            "add agent_id = \"a-117\" with the agent's id from the agents file",
        ),
        (Role::Agent, Some(_)) | (_, None) => {}
        (_, Some(_)) => checker.problem(
            &format!("{key}.agent_id"),
            format!("agent_id applies to role agent only, not to {role}"),
            "remove agent_id, or change the role to agent",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_token_is_hex_sha256() {
        // SHA-256 of the empty string, a published test vector.
        assert_eq!(hash_token(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn verify_matches_only_the_hashed_token() {
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(hash_token("s3cret-example"), &mut sha256).expect("hash_token returns 64 hex digits");
        let auth = AuthConfig {
            tokens: vec![ApiToken { name: "ops".into(), role: Role::Admin, sha256, teams: vec![], agent_id: None }],
        };
        assert_eq!(auth.verify("s3cret-example").map(|t| t.name.as_str()), Some("ops"));
        assert!(auth.verify("s3cret-exampl").is_none());
    }

    #[test]
    fn debug_hides_most_of_the_hash() {
        let token =
            ApiToken { name: "ops".into(), role: Role::Admin, sha256: [0xab; 32], teams: vec![], agent_id: None };
        let debug_output = format!("{token:?}");
        assert!(debug_output.contains("abababab…"), "{debug_output}");
        assert!(!debug_output.contains(&"ab".repeat(5)), "{debug_output}");
    }
}
