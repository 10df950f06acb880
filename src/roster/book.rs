//! The published roster in memory, shaped for the adherence engine's
//! lookups: what is an agent scheduled to do at instant `t`, and when does
//! that change next.
//!
//! Per agent the activities are kept sorted by start, with two prefix
//! arrays that make every lookup a binary search plus, for overlapping
//! activities only, a short backward scan. The book does no validation of
//! labour rules; publish checks those first. Cloning is cheap: each agent's
//! activities sit behind an [`Arc`] and a publish replaces only the agents
//! it touches.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;

use crate::domain::{AgentId, ScheduledActivity};

/// The published roster: per agent a sorted list of scheduled activities.
#[derive(Debug, Clone, Default)]
pub struct RosterBook {
    /// Number of changes applied since the book was created.
    version: u64,
    agents: BTreeMap<AgentId, Arc<AgentSchedule>>,
}

/// One agent's activities, sorted by `(start, end, activity)`.
#[derive(Debug, Default)]
struct AgentSchedule {
    activities: Vec<ScheduledActivity>,
    /// `max_end[i]` is the latest end among `activities[..=i]`; it lets a
    /// backward scan stop as soon as no earlier activity can reach `t`.
    max_end: Vec<Timestamp>,
    /// `chain_start[i]` is the start of the chain of touching or overlapping
    /// activities that `activities[i]` belongs to: the shift it is part of.
    chain_start: Vec<Timestamp>,
}

/// The new roster for a period: replaces the listed agents' activities that
/// start inside `[start, end)`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodUpdate {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Agents whose activities in the period are replaced. An agent listed
    /// here without activities ends up with none in the period.
    pub agent_ids: BTreeSet<AgentId>,
    pub activities: Vec<ScheduledActivity>,
}

/// Reason an update could not be applied to the book.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BookError {
    #[error("period end {end} is not after its start {start}")]
    EmptyPeriod { start: Timestamp, end: Timestamp },

    #[error(
        "activity of agent {agent_id} starting {activity_start} lies outside the period \
         {start} to {end}; widen the period or leave the activity out"
    )]
    OutsidePeriod { agent_id: AgentId, activity_start: Timestamp, start: Timestamp, end: Timestamp },

    #[error(
        "activity of agent {agent_id} starting {activity_start} is for an agent not listed in \
         the update; add the agent to agent_ids"
    )]
    AgentNotListed { agent_id: AgentId, activity_start: Timestamp },

    #[error("activity of agent {agent_id} starting {activity_start} does not end after its start")]
    EmptyActivity { agent_id: AgentId, activity_start: Timestamp },
}

// === impl RosterBook ===

impl RosterBook {
    pub fn new() -> RosterBook {
        RosterBook::default()
    }

    /// Builds a book holding `activities`, at version 0.
    pub fn from_activities(activities: Vec<ScheduledActivity>) -> RosterBook {
        let mut grouped: BTreeMap<AgentId, Vec<ScheduledActivity>> = BTreeMap::new();
        for activity in activities {
            grouped.entry(activity.agent_id.clone()).or_default().push(activity);
        }
        let agents = grouped.into_iter().map(|(agent, list)| (agent, Arc::new(AgentSchedule::new(list)))).collect();
        RosterBook { version: 0, agents }
    }

    /// Sets the version, for a book loaded from storage or updated with a
    /// version number the store assigned.
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    /// Returns the version: the number of updates applied (it grows by one
    /// per update), unless [`RosterBook::set_version`] set it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Replaces the activities of `agent_ids` that start inside
    /// `[period_start, period_end)` with `activities`. Every new activity
    /// must start inside the period and belong to a listed agent, so the
    /// update can be applied again without duplicating anything.
    pub fn replace_period<I, S>(
        &mut self,
        period_start: Timestamp,
        period_end: Timestamp,
        agent_ids: I,
        activities: Vec<ScheduledActivity>,
    ) -> Result<u64, BookError>
    where
        I: IntoIterator<Item = S>,
        S: Into<AgentId>,
    {
        let update = PeriodUpdate {
            start: period_start,
            end: period_end,
            agent_ids: agent_ids.into_iter().map(Into::into).collect(),
            activities,
        };
        self.apply(&update)
    }

    /// Applies `update` and returns the new version. Nothing changes when
    /// the update is invalid.
    pub fn apply(&mut self, update: &PeriodUpdate) -> Result<u64, BookError> {
        update.validate()?;

        let mut incoming: BTreeMap<&str, Vec<ScheduledActivity>> =
            update.agent_ids.iter().map(|agent| (agent.as_str(), Vec::new())).collect();
        for activity in &update.activities {
            if let Some(list) = incoming.get_mut(activity.agent_id.as_str()) {
                list.push(activity.clone());
            }
        }

        for (agent, new) in incoming {
            let mut kept: Vec<ScheduledActivity> = self
                .activities(agent)
                .iter()
                .filter(|a| a.start < update.start || a.start >= update.end)
                .cloned()
                .collect();
            kept.extend(new);

            if kept.is_empty() {
                self.agents.remove(agent);
            } else {
                self.agents.insert(agent.to_string(), Arc::new(AgentSchedule::new(kept)));
            }
        }

        self.version += 1;
        tracing::debug!(
            version = self.version,
            agents = update.agent_ids.len(),
            activities = update.activities.len(),
            "roster period replaced"
        );
        Ok(self.version)
    }

    /// Returns all of `agent`'s activities, sorted by start.
    pub fn activities(&self, agent: &str) -> &[ScheduledActivity] {
        self.agents.get(agent).map_or(&[], |schedule| schedule.activities.as_slice())
    }

    /// Returns `agent`'s activities that overlap `[start, end)`, by start.
    pub fn activities_in(
        &self,
        agent: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> impl Iterator<Item = &ScheduledActivity> {
        let candidates: &[ScheduledActivity] = match self.agents.get(agent) {
            None => &[],
            Some(schedule) => {
                // Activities before `first` all end at or before `start`.
                let first = schedule.max_end.partition_point(|&max_end| max_end <= start);
                let last = schedule.activities.partition_point(|a| a.start < end);
                &schedule.activities[first.min(last)..last]
            }
        };
        candidates.iter().filter(move |a| a.end > start)
    }

    /// Returns the activity `agent` is scheduled for at `t` (start
    /// inclusive, end exclusive). When activities overlap, the one that
    /// started latest wins.
    pub fn activity_at(&self, agent: &str, t: Timestamp) -> Option<&ScheduledActivity> {
        let schedule = self.agents.get(agent)?;
        schedule.index_at(t).map(|index| &schedule.activities[index])
    }

    /// Returns the first start or end of one of `agent`'s activities
    /// strictly after `t`: the next instant the scheduled activity may
    /// change.
    pub fn next_boundary_after(&self, agent: &str, t: Timestamp) -> Option<Timestamp> {
        let schedule = self.agents.get(agent)?;
        let next = schedule.activities.partition_point(|a| a.start <= t);
        let mut best = schedule.activities.get(next).map(|a| a.start);

        // Ends after `t` belong to activities that contain `t`; later
        // activities end after their own start, which `best` already covers.
        for index in (0..next).rev() {
            if schedule.max_end[index] <= t {
                break;
            }
            let end = schedule.activities[index].end;
            if end > t && best.is_none_or(|b| end < b) {
                best = Some(end);
            }
        }
        best
    }

    /// Returns the start of the shift that contains `t`: the chain of
    /// touching (end equals next start) or overlapping activities around
    /// `t`. A shift crossing midnight thus belongs to the day it starts.
    pub fn shift_start(&self, agent: &str, t: Timestamp) -> Option<Timestamp> {
        let schedule = self.agents.get(agent)?;
        schedule.index_at(t).map(|index| schedule.chain_start[index])
    }

    /// Returns the ids of agents with at least one activity, in order.
    pub fn agents(&self) -> impl Iterator<Item = &AgentId> {
        self.agents.keys()
    }

    /// Returns every activity, by agent and then by start.
    pub fn all_activities(&self) -> impl Iterator<Item = &ScheduledActivity> {
        self.agents.values().flat_map(|schedule| schedule.activities.iter())
    }

    /// Returns the number of activities in the book.
    pub fn len(&self) -> usize {
        self.agents.values().map(|schedule| schedule.activities.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }
}

// === impl AgentSchedule ===

impl AgentSchedule {
    fn new(mut activities: Vec<ScheduledActivity>) -> AgentSchedule {
        activities.sort_by_key(|a| (a.start, a.end, a.activity));

        let mut max_end = Vec::with_capacity(activities.len());
        let mut chain_start = Vec::with_capacity(activities.len());
        let mut running: Option<(Timestamp, Timestamp)> = None;
        for activity in &activities {
            let (start, end) = match running {
                Some((start, end)) if activity.start <= end => (start, end.max(activity.end)),
                _ => (activity.start, activity.end),
            };
            running = Some((start, end));
            max_end.push(end);
            chain_start.push(start);
        }
        AgentSchedule { activities, max_end, chain_start }
    }

    /// Returns the index of the latest-starting activity containing `t`.
    fn index_at(&self, t: Timestamp) -> Option<usize> {
        let after = self.activities.partition_point(|a| a.start <= t);
        for index in (0..after).rev() {
            if self.max_end[index] <= t {
                return None;
            }
            if self.activities[index].end > t {
                return Some(index);
            }
        }
        None
    }
}

// === impl PeriodUpdate ===

impl PeriodUpdate {
    /// Builds an update for the agents that appear in `activities`.
    pub fn from_activities(start: Timestamp, end: Timestamp, activities: Vec<ScheduledActivity>) -> PeriodUpdate {
        let agent_ids = activities.iter().map(|a| a.agent_id.clone()).collect();
        PeriodUpdate { start, end, agent_ids, activities }
    }

    /// Checks that the period is not empty and every activity starts in it
    /// and belongs to a listed agent.
    pub fn validate(&self) -> Result<(), BookError> {
        if self.end <= self.start {
            return Err(BookError::EmptyPeriod { start: self.start, end: self.end });
        }
        for activity in &self.activities {
            let agent_id = activity.agent_id.clone();
            let activity_start = activity.start;
            if activity.end <= activity.start {
                return Err(BookError::EmptyActivity { agent_id, activity_start });
            }
            if activity.start < self.start || activity.start >= self.end {
                return Err(BookError::OutsidePeriod { agent_id, activity_start, start: self.start, end: self.end });
            }
            if !self.agent_ids.contains(&activity.agent_id) {
                return Err(BookError::AgentNotListed { agent_id, activity_start });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ActivityType;

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("test instant must parse")
    }

    fn activity(agent: &str, start: &str, end: &str, kind: ActivityType) -> ScheduledActivity {
        ScheduledActivity { agent_id: agent.into(), start: ts(start), end: ts(end), activity: kind }
    }

    /// Builds a day: 08–10 phone, 10–10:15 break, 10:15–12 phone, 13–14 training.
    fn day_book() -> RosterBook {
        RosterBook::from_activities(vec![
            activity("a-1", "2026-12-07T10:15:00Z", "2026-12-07T12:00:00Z", ActivityType::PhoneDuty),
            activity("a-1", "2026-12-07T08:00:00Z", "2026-12-07T10:00:00Z", ActivityType::PhoneDuty),
            activity("a-1", "2026-12-07T10:00:00Z", "2026-12-07T10:15:00Z", ActivityType::Break),
            activity("a-1", "2026-12-07T13:00:00Z", "2026-12-07T14:00:00Z", ActivityType::Training),
        ])
    }

    #[test]
    fn activities_sorted_by_start() {
        let book = day_book();
        let starts: Vec<Timestamp> = book.activities("a-1").iter().map(|a| a.start).collect();
        let mut sorted = starts.clone();
        sorted.sort();
        assert_eq!(starts, sorted);
    }

    #[test]
    fn activity_at_start_is_inclusive() {
        let book = day_book();
        let found = book.activity_at("a-1", ts("2026-12-07T10:00:00Z")).map(|a| a.activity);
        assert_eq!(found, Some(ActivityType::Break));
    }

    #[test]
    fn activity_at_end_is_exclusive() {
        let book = day_book();
        assert_eq!(book.activity_at("a-1", ts("2026-12-07T14:00:00Z")), None);
    }

    #[test]
    fn activity_at_gap_is_none() {
        let book = day_book();
        assert_eq!(book.activity_at("a-1", ts("2026-12-07T12:30:00Z")), None);
    }

    #[test]
    fn activity_at_before_first_is_none() {
        let book = day_book();
        assert_eq!(book.activity_at("a-1", ts("2026-12-07T07:59:59Z")), None);
    }

    #[test]
    fn activity_at_unknown_agent_is_none() {
        let book = day_book();
        assert_eq!(book.activity_at("a-404", ts("2026-12-07T09:00:00Z")), None);
    }

    #[test]
    fn overlap_latest_start_wins() {
        let mut activities = day_book().activities("a-1").to_vec();
        activities.push(activity("a-1", "2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z", ActivityType::Coaching));
        let book = RosterBook::from_activities(activities);
        let found = book.activity_at("a-1", ts("2026-12-07T09:10:00Z")).map(|a| a.activity);
        assert_eq!(found, Some(ActivityType::Coaching));
    }

    #[test]
    fn long_overlap_found_behind_short_one() {
        let book = RosterBook::from_activities(vec![
            activity("a-1", "2026-12-07T08:00:00Z", "2026-12-07T16:00:00Z", ActivityType::TeamDay),
            activity("a-1", "2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z", ActivityType::Break),
        ]);
        let found = book.activity_at("a-1", ts("2026-12-07T10:00:00Z")).map(|a| a.activity);
        assert_eq!(found, Some(ActivityType::TeamDay));
    }

    #[test]
    fn next_boundary_from_inside() {
        let book = day_book();
        let next = book.next_boundary_after("a-1", ts("2026-12-07T09:00:00Z"));
        assert_eq!(next, Some(ts("2026-12-07T10:00:00Z")));
    }

    #[test]
    fn next_boundary_is_strictly_after() {
        let book = day_book();
        let next = book.next_boundary_after("a-1", ts("2026-12-07T10:00:00Z"));
        assert_eq!(next, Some(ts("2026-12-07T10:15:00Z")));
    }

    #[test]
    fn next_boundary_from_gap_is_next_start() {
        let book = day_book();
        let next = book.next_boundary_after("a-1", ts("2026-12-07T12:00:00Z"));
        assert_eq!(next, Some(ts("2026-12-07T13:00:00Z")));
    }

    #[test]
    fn next_boundary_after_last_end_is_none() {
        let book = day_book();
        assert_eq!(book.next_boundary_after("a-1", ts("2026-12-07T14:00:00Z")), None);
    }

    #[test]
    fn next_boundary_ends_long_overlap() {
        let book = RosterBook::from_activities(vec![
            activity("a-1", "2026-12-07T08:00:00Z", "2026-12-07T16:00:00Z", ActivityType::TeamDay),
            activity("a-1", "2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z", ActivityType::Break),
        ]);
        let next = book.next_boundary_after("a-1", ts("2026-12-07T10:00:00Z"));
        assert_eq!(next, Some(ts("2026-12-07T16:00:00Z")));
    }

    #[test]
    fn shift_start_follows_touching_chain() {
        let book = day_book();
        let start = book.shift_start("a-1", ts("2026-12-07T11:00:00Z"));
        assert_eq!(start, Some(ts("2026-12-07T08:00:00Z")));
    }

    #[test]
    fn shift_start_breaks_at_gap() {
        let book = day_book();
        let start = book.shift_start("a-1", ts("2026-12-07T13:30:00Z"));
        assert_eq!(start, Some(ts("2026-12-07T13:00:00Z")));
    }

    #[test]
    fn shift_start_crosses_midnight() {
        let book = RosterBook::from_activities(vec![
            activity("a-1", "2026-12-07T21:00:00Z", "2026-12-07T23:00:00Z", ActivityType::PhoneDuty),
            activity("a-1", "2026-12-07T23:00:00Z", "2026-12-08T02:00:00Z", ActivityType::PhoneDuty),
        ]);
        let start = book.shift_start("a-1", ts("2026-12-08T01:00:00Z"));
        assert_eq!(start, Some(ts("2026-12-07T21:00:00Z")));
    }

    #[test]
    fn shift_start_outside_activity_is_none() {
        let book = day_book();
        assert_eq!(book.shift_start("a-1", ts("2026-12-07T12:30:00Z")), None);
    }

    #[test]
    fn activities_in_includes_partial_overlaps() {
        let book = day_book();
        let found: Vec<ActivityType> = book
            .activities_in("a-1", ts("2026-12-07T09:00:00Z"), ts("2026-12-07T10:15:00Z"))
            .map(|a| a.activity)
            .collect();
        assert_eq!(found, vec![ActivityType::PhoneDuty, ActivityType::Break]);
    }

    #[test]
    fn activities_in_end_is_exclusive() {
        let book = day_book();
        let count = book.activities_in("a-1", ts("2026-12-07T12:00:00Z"), ts("2026-12-07T13:00:00Z")).count();
        assert_eq!(count, 0);
    }

    #[test]
    fn replace_period_keeps_outside_activities() {
        let mut book = day_book();
        let new = vec![activity("a-1", "2026-12-07T08:00:00Z", "2026-12-07T09:00:00Z", ActivityType::Meeting)];
        let version = book
            .replace_period(ts("2026-12-07T07:00:00Z"), ts("2026-12-07T12:30:00Z"), ["a-1"], new)
            .expect("valid update");
        assert_eq!(version, 1);
        let kinds: Vec<ActivityType> = book.activities("a-1").iter().map(|a| a.activity).collect();
        assert_eq!(kinds, vec![ActivityType::Meeting, ActivityType::Training]);
    }

    #[test]
    fn replace_period_leaves_other_agents() {
        let mut activities = day_book().activities("a-1").to_vec();
        activities.push(activity("a-2", "2026-12-07T08:00:00Z", "2026-12-07T09:00:00Z", ActivityType::PhoneDuty));
        let mut book = RosterBook::from_activities(activities);
        book.replace_period(ts("2026-12-07T00:00:00Z"), ts("2026-12-08T00:00:00Z"), ["a-1"], Vec::new())
            .expect("valid update");
        assert!(book.activities("a-1").is_empty());
        assert_eq!(book.activities("a-2").len(), 1);
    }

    #[test]
    fn replace_period_rejects_outside_activity() {
        let mut book = RosterBook::new();
        let new = vec![activity("a-1", "2026-12-09T08:00:00Z", "2026-12-09T09:00:00Z", ActivityType::PhoneDuty)];
        let got = book.replace_period(ts("2026-12-07T00:00:00Z"), ts("2026-12-08T00:00:00Z"), ["a-1"], new);
        assert!(matches!(got, Err(BookError::OutsidePeriod { .. })), "{got:?}");
        assert_eq!(book.version(), 0);
    }

    #[test]
    fn clone_shares_until_replaced() {
        let book = day_book();
        let mut next = book.clone();
        next.replace_period(ts("2026-12-07T00:00:00Z"), ts("2026-12-08T00:00:00Z"), ["a-1"], Vec::new())
            .expect("valid update");
        assert_eq!(book.activities("a-1").len(), 4);
        assert!(next.activities("a-1").is_empty());
    }
}
