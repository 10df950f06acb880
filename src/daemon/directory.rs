//! The agent directory at run time: agents by id, and the platform ids
//! (SIP AORs, feed user ids) that resolve to them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::{Agent, AgentId};

/// An immutable directory; replaced whole when agents change.
#[derive(Debug, Default)]
pub struct Directory {
    agents: HashMap<AgentId, Agent>,
    by_platform_id: HashMap<String, AgentId>,
}

/// The current directory, shared by the adapters, the engine task and the
/// API. Readers take a cheap `Arc` snapshot.
#[derive(Debug, Clone, Default)]
pub struct SharedDirectory {
    current: Arc<RwLock<Arc<Directory>>>,
}

// === impl Directory ===

impl Directory {
    pub fn new(agents: impl IntoIterator<Item = Agent>) -> Directory {
        let mut directory = Directory::default();
        for agent in agents {
            directory.insert(agent);
        }
        directory
    }

    fn insert(&mut self, agent: Agent) {
        if let Some(old) = self.agents.remove(&agent.id) {
            for id in &old.platform_ids {
                self.by_platform_id.remove(&normalize_ref(id));
            }
        }
        for id in &agent.platform_ids {
            self.by_platform_id.insert(normalize_ref(id), agent.id.clone());
        }
        self.agents.insert(agent.id.clone(), agent);
    }

    /// Returns the agent id an event's agent reference points at: an agent
    /// id, or one of an agent's platform ids (SIP URIs compare without
    /// case in scheme and host, and without `<>`).
    pub fn resolve(&self, agent_ref: &str) -> Option<&AgentId> {
        if let Some((id, _)) = self.agents.get_key_value(agent_ref) {
            return Some(id);
        }
        self.by_platform_id.get(&normalize_ref(agent_ref))
    }

    pub fn get(&self, agent_id: &str) -> Option<&Agent> {
        self.agents.get(agent_id)
    }

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    /// Returns a new directory with `agents` added or replaced.
    pub fn with(&self, agents: impl IntoIterator<Item = Agent>) -> Directory {
        let mut next = Directory { agents: self.agents.clone(), by_platform_id: self.by_platform_id.clone() };
        for agent in agents {
            next.insert(agent);
        }
        next
    }
}

fn normalize_ref(agent_ref: &str) -> String {
    let trimmed = agent_ref.trim().trim_start_matches('<').trim_end_matches('>');
    match trimmed.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") => {
            match rest.split_once('@') {
                Some((user, host)) => format!("sip:{user}@{}", host.to_ascii_lowercase()),
                None => format!("sip:{}", rest.to_ascii_lowercase()),
            }
        }
        _ => trimmed.to_string(),
    }
}

impl crate::roster::AgentLookup for Directory {
    fn find_agent(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id)
    }
}

// === impl SharedDirectory ===

impl SharedDirectory {
    pub fn new(directory: Directory) -> SharedDirectory {
        SharedDirectory { current: Arc::new(RwLock::new(Arc::new(directory))) }
    }

    pub fn load(&self) -> Arc<Directory> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn store(&self, directory: Directory) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(directory);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        Agent {
            id: "a-117".into(),
            display_name: "Anna de Vries".into(),
            team: "team-noord".into(),
            contract_hours: 24.0,
            platform_ids: vec!["sip:1017@PBX.example.com".into(), "u-1017".into()],
        }
    }

    #[test]
    fn resolves_id_and_platform_ids() {
        let directory = Directory::new([agent()]);
        assert_eq!(directory.resolve("a-117").map(String::as_str), Some("a-117"));
        assert_eq!(directory.resolve("u-1017").map(String::as_str), Some("a-117"));
        assert_eq!(directory.resolve("<sip:1017@pbx.example.com>").map(String::as_str), Some("a-117"));
        assert_eq!(directory.resolve("u-9999"), None);
    }

    #[test]
    fn replacing_agent_drops_old_platform_ids() {
        let directory = Directory::new([agent()]);
        let mut changed = agent();
        changed.platform_ids = vec!["u-2000".into()];
        let next = directory.with([changed]);
        assert_eq!(next.resolve("u-1017"), None);
        assert_eq!(next.resolve("u-2000").map(String::as_str), Some("a-117"));
    }
}
