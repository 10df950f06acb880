//! Swapping scheduled hours between two agents.
//!
//! The parts of agent A's activities inside A's ranges move to B, and the
//! parts of B's activities inside B's ranges move to A; activities that
//! cross a range edge are split there. Both agents' rosters in the affected
//! ISO weeks must still obey the labour rules afterwards, or the swap is
//! rejected with the violations and nothing changes. The final-window rule
//! does not apply: agents may swap inside it.

use std::collections::BTreeSet;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use super::book::{PeriodUpdate, RosterBook};
use super::directory::AgentLookup;
use super::rules::{LabourRules, check_weeks, local_date, monday_of, start_of_day};
use super::violation::Violation;
use crate::domain::{AgentId, ScheduledActivity};
use crate::i18n::Locale;

/// A requested swap: which hours each agent gives to the other.
#[derive(Debug, Clone, PartialEq)]
pub struct SwapRequest {
    pub agent_a: AgentId,
    pub agent_b: AgentId,
    /// Ranges `[start, end)` of A's roster that move to B.
    pub from_a: Vec<(Timestamp, Timestamp)>,
    /// Ranges `[start, end)` of B's roster that move to A.
    pub from_b: Vec<(Timestamp, Timestamp)>,
}

/// Reason a swap was not made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SwapError {
    #[error("agent {agent_id} cannot swap with itself; name two different agents")]
    SameAgent { agent_id: AgentId },

    #[error("range {start} to {end} for agent {agent_id} is empty; the end must be after the start")]
    EmptyRange { agent_id: AgentId, start: Timestamp, end: Timestamp },

    #[error("nothing to swap: neither agent has activities inside the given ranges")]
    NothingToSwap,

    #[error("swap rejected: {} labour rule violations after the swap", violations.len())]
    Rejected { violations: Vec<Violation> },
}

/// How far beyond the affected weeks neighbouring activities are read, so
/// a block or shift that runs over a week edge is checked whole.
const NEIGHBOUR_MARGIN_DAYS: i64 = 1;

/// Computes the swap and checks it. On success returns the update that
/// replaces both agents' activities in the affected weeks; apply it with
/// [`RosterBook::apply`].
pub fn swap<L: AgentLookup + ?Sized>(
    book: &RosterBook,
    request: &SwapRequest,
    directory: &L,
    tz: &TimeZone,
    rules: &LabourRules,
) -> Result<PeriodUpdate, SwapError> {
    let (a, b) = (request.agent_a.as_str(), request.agent_b.as_str());
    if a == b {
        return Err(SwapError::SameAgent { agent_id: a.to_string() });
    }
    let ranges_a = normalize(a, &request.from_a)?;
    let ranges_b = normalize(b, &request.from_b)?;
    let Some((period_start, period_end, weeks)) = affected_period(book, request, &ranges_a, &ranges_b, tz) else {
        return Err(SwapError::NothingToSwap);
    };

    let in_period = |agent: &str| -> Vec<ScheduledActivity> {
        book.activities(agent).iter().filter(|x| x.start >= period_start && x.start < period_end).cloned().collect()
    };
    let (kept_a, moved_to_b) = split(&in_period(a), &ranges_a, b);
    let (kept_b, moved_to_a) = split(&in_period(b), &ranges_b, a);
    if moved_to_a.is_empty() && moved_to_b.is_empty() {
        return Err(SwapError::NothingToSwap);
    }

    let mut new_activities = kept_a;
    new_activities.extend(moved_to_a);
    new_activities.extend(kept_b);
    new_activities.extend(moved_to_b);

    let violations =
        check_after_swap(book, [a, b], &new_activities, (period_start, period_end), &weeks, directory, tz, rules);
    if !violations.is_empty() {
        tracing::info!(agent_a = a, agent_b = b, violations = violations.len(), "swap rejected");
        return Err(SwapError::Rejected { violations });
    }

    tracing::info!(agent_a = a, agent_b = b, weeks = weeks.len(), "swap accepted");
    Ok(PeriodUpdate {
        start: period_start,
        end: period_end,
        agent_ids: [a.to_string(), b.to_string()].into_iter().collect(),
        activities: new_activities,
    })
}

/// Sorts and merges ranges; an empty or reversed range is an error.
fn normalize(agent: &str, ranges: &[(Timestamp, Timestamp)]) -> Result<Vec<(Timestamp, Timestamp)>, SwapError> {
    let mut sorted = ranges.to_vec();
    sorted.sort();
    let mut merged: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(sorted.len());
    for (start, end) in sorted {
        if end <= start {
            return Err(SwapError::EmptyRange { agent_id: agent.to_string(), start, end });
        }
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    Ok(merged)
}

/// Returns the replaced period and the Mondays of the affected ISO weeks.
/// The period covers whole local weeks, widened back to the start of any
/// activity that a range cuts, so the update can replace that activity.
fn affected_period(
    book: &RosterBook,
    request: &SwapRequest,
    ranges_a: &[(Timestamp, Timestamp)],
    ranges_b: &[(Timestamp, Timestamp)],
    tz: &TimeZone,
) -> Option<(Timestamp, Timestamp, BTreeSet<Date>)> {
    let all = ranges_a.iter().chain(ranges_b);
    let first = all.clone().map(|r| r.0).min()?;
    let last = all.map(|r| r.1).max()?;

    let first_monday = monday_of(local_date(first, tz));
    // The range end is exclusive, so the last affected day is the one just
    // before it.
    let last_day = local_date(last.checked_sub(jiff::SignedDuration::from_nanos(1)).ok()?, tz);
    let end_monday = monday_of(last_day).checked_add(Span::new().weeks(1)).ok()?;

    let mut weeks = BTreeSet::new();
    let mut monday = first_monday;
    while monday < end_monday {
        weeks.insert(monday);
        monday = monday.checked_add(Span::new().weeks(1)).ok()?;
    }

    let mut start = start_of_day(first_monday, tz)?;
    let end = start_of_day(end_monday, tz)?;
    for (agent, ranges) in [(&request.agent_a, ranges_a), (&request.agent_b, ranges_b)] {
        for &(range_start, range_end) in ranges {
            if let Some(cut) = book.activities_in(agent, range_start, range_end).map(|x| x.start).min() {
                start = start.min(cut);
            }
        }
    }
    Some((start, end, weeks))
}

/// Splits `activities` at the range edges; returns the parts that stay and
/// the parts that move, relabelled for `receiver`.
fn split(
    activities: &[ScheduledActivity],
    ranges: &[(Timestamp, Timestamp)],
    receiver: &str,
) -> (Vec<ScheduledActivity>, Vec<ScheduledActivity>) {
    let mut kept = Vec::new();
    let mut moved = Vec::new();
    let part = |x: &ScheduledActivity, start: Timestamp, end: Timestamp| ScheduledActivity { start, end, ..x.clone() };

    for x in activities {
        let mut cursor = x.start;
        for &(range_start, range_end) in ranges {
            let inside_start = range_start.max(x.start);
            let inside_end = range_end.min(x.end);
            if inside_start >= inside_end {
                continue;
            }
            if cursor < inside_start {
                kept.push(part(x, cursor, inside_start));
            }
            moved.push(ScheduledActivity { agent_id: receiver.to_string(), ..part(x, inside_start, inside_end) });
            cursor = inside_end;
        }
        if cursor < x.end {
            kept.push(part(x, cursor, x.end));
        }
    }
    (kept, moved)
}

/// Checks both agents after the swap. Activities just outside the period
/// are included so blocks and shifts over its edges are seen whole, but
/// only violations dated inside the affected weeks count.
#[allow(clippy::too_many_arguments)]
fn check_after_swap<L: AgentLookup + ?Sized>(
    book: &RosterBook,
    agents: [&str; 2],
    new_activities: &[ScheduledActivity],
    (period_start, period_end): (Timestamp, Timestamp),
    weeks: &BTreeSet<Date>,
    directory: &L,
    tz: &TimeZone,
    rules: &LabourRules,
) -> Vec<Violation> {
    let margin = jiff::SignedDuration::from_hours(24 * NEIGHBOUR_MARGIN_DAYS);
    let before = period_start.checked_sub(margin).unwrap_or(period_start);
    let after = period_end.checked_add(margin).unwrap_or(period_end);

    let mut activities = new_activities.to_vec();
    for agent in agents {
        activities.extend(
            book.activities(agent)
                .iter()
                .filter(|x| (x.start >= before && x.start < period_start) || (x.start >= period_end && x.start < after))
                .cloned(),
        );
    }

    let first_day = weeks.first().copied();
    let end_day = weeks.last().and_then(|m| m.checked_add(Span::new().weeks(1)).ok());
    check_weeks(directory, &activities, weeks, tz, rules)
        .into_iter()
        .filter(|v| first_day.is_some_and(|d| v.date >= d) && end_day.is_some_and(|d| v.date < d))
        .collect()
}

// === impl SwapError ===

impl SwapError {
    /// Returns the message in `locale`; a rejection lists every violation,
    /// one per line.
    pub fn text(&self, locale: Locale) -> String {
        match (self, locale) {
            (SwapError::Rejected { violations }, _) => {
                let header = match locale {
                    Locale::En => "swap rejected; after the swap:".to_string(),
                    Locale::Nl => "ruil afgewezen; na de ruil:".to_string(),
                };
                let lines: Vec<String> = violations.iter().map(|v| v.text(locale)).collect();
                format!("{header}\n{}", lines.join("\n"))
            }
            (_, Locale::En) => self.to_string(),
            (SwapError::SameAgent { agent_id }, Locale::Nl) => {
                format!("medewerker {agent_id} kan niet met zichzelf ruilen; noem twee verschillende medewerkers")
            }
            (SwapError::EmptyRange { agent_id, start, end }, Locale::Nl) => {
                format!(
                    "periode {start} tot {end} voor medewerker {agent_id} is leeg; het einde moet na het begin liggen"
                )
            }
            (SwapError::NothingToSwap, Locale::Nl) => {
                "niets te ruilen: geen van beide medewerkers heeft activiteiten in de opgegeven periodes".to_string()
            }
        }
    }

    /// Returns the violations of a rejected swap; empty for other errors.
    pub fn violations(&self) -> &[Violation] {
        match self {
            SwapError::Rejected { violations } => violations,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ActivityType, Agent};
    use crate::roster::violation::Rule;

    fn amsterdam() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").expect("bundled tzdb must contain Europe/Amsterdam")
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("test instant must parse")
    }

    fn agent(id: &str, hours: f64) -> Agent {
        Agent {
            id: id.into(),
            display_name: id.into(),
            team: "team-noord".into(),
            contract_hours: hours,
            platform_ids: Vec::new(),
        }
    }

    fn phone(agent: &str, start: &str, end: &str) -> ScheduledActivity {
        ScheduledActivity { agent_id: agent.into(), start: ts(start), end: ts(end), activity: ActivityType::PhoneDuty }
    }

    /// Week 50 of 2026 (Mon 2026-12-07, UTC+1). Both agents have 15 h:
    /// five days of 3 h, a-1 in the morning and a-2 in the afternoon.
    fn week_book() -> RosterBook {
        let mut activities = Vec::new();
        for day in 7..=11 {
            activities.push(phone(
                "a-1",
                &format!("2026-12-{day:02}T08:00:00Z"),
                &format!("2026-12-{day:02}T11:00:00Z"),
            ));
            activities.push(phone(
                "a-2",
                &format!("2026-12-{day:02}T12:00:00Z"),
                &format!("2026-12-{day:02}T15:00:00Z"),
            ));
        }
        RosterBook::from_activities(activities)
    }

    fn directory() -> Vec<Agent> {
        vec![agent("a-1", 15.0), agent("a-2", 15.0)]
    }

    #[test]
    fn week_book_obeys_rules() {
        let activities: Vec<ScheduledActivity> = week_book().all_activities().cloned().collect();
        let violations = crate::roster::rules::check(&directory(), &activities, &amsterdam(), &LabourRules::default());
        assert!(violations.is_empty(), "{violations:?}");
    }

    #[test]
    fn swap_of_equal_shifts_accepted() {
        let request = SwapRequest {
            agent_a: "a-1".into(),
            agent_b: "a-2".into(),
            from_a: vec![(ts("2026-12-08T08:00:00Z"), ts("2026-12-08T11:00:00Z"))],
            from_b: vec![(ts("2026-12-09T12:00:00Z"), ts("2026-12-09T15:00:00Z"))],
        };
        let update = swap(&week_book(), &request, &directory(), &amsterdam(), &LabourRules::default())
            .expect("equal swap keeps both weeks at 15 h");

        let mut book = week_book();
        book.apply(&update).expect("swap update applies");
        let at = book.activity_at("a-2", ts("2026-12-08T09:00:00Z")).map(|x| x.agent_id.as_str());
        assert_eq!(at, Some("a-2"));
        assert_eq!(book.activity_at("a-1", ts("2026-12-08T09:00:00Z")), None);
        assert!(book.activity_at("a-1", ts("2026-12-09T13:00:00Z")).is_some());
    }

    #[test]
    fn swap_keeps_weekly_totals() {
        let request = SwapRequest {
            agent_a: "a-1".into(),
            agent_b: "a-2".into(),
            from_a: vec![(ts("2026-12-08T08:00:00Z"), ts("2026-12-08T11:00:00Z"))],
            from_b: vec![(ts("2026-12-09T12:00:00Z"), ts("2026-12-09T15:00:00Z"))],
        };
        let update = swap(&week_book(), &request, &directory(), &amsterdam(), &LabourRules::default())
            .expect("equal swap accepted");
        let a2_hours: i64 = update
            .activities
            .iter()
            .filter(|x| x.agent_id == "a-2")
            .map(|x| x.end.duration_since(x.start).as_mins())
            .sum();
        assert_eq!(a2_hours, 15 * 60);
    }

    #[test]
    fn one_way_swap_rejected_for_weekly_hours() {
        let request = SwapRequest {
            agent_a: "a-1".into(),
            agent_b: "a-2".into(),
            from_a: vec![(ts("2026-12-08T08:00:00Z"), ts("2026-12-08T11:00:00Z"))],
            from_b: Vec::new(),
        };
        let err = swap(&week_book(), &request, &directory(), &amsterdam(), &LabourRules::default())
            .expect_err("a-1 would drop to 12 h and a-2 rise to 18 h");
        let rules: Vec<Rule> = err.violations().iter().map(|v| v.rule).collect();
        assert!(rules.contains(&Rule::WeeklyContractHours), "{rules:?}");
    }

    #[test]
    fn swap_into_busy_time_rejected_for_overlap() {
        // a-1 gives Monday 08-11 and takes a-2's Monday 12-15, but a-1
        // already has a break 13-14 inside the received phone duty.
        let mut activities: Vec<ScheduledActivity> = week_book().all_activities().cloned().collect();
        activities.push(ScheduledActivity {
            agent_id: "a-1".into(),
            start: ts("2026-12-07T13:00:00Z"),
            end: ts("2026-12-07T14:00:00Z"),
            activity: ActivityType::Break,
        });
        let book = RosterBook::from_activities(activities);
        let request = SwapRequest {
            agent_a: "a-1".into(),
            agent_b: "a-2".into(),
            from_a: vec![(ts("2026-12-07T08:00:00Z"), ts("2026-12-07T11:00:00Z"))],
            from_b: vec![(ts("2026-12-07T12:00:00Z"), ts("2026-12-07T15:00:00Z"))],
        };
        let err = swap(&book, &request, &directory(), &amsterdam(), &LabourRules::default())
            .expect_err("a-1 would have a break inside received phone duty");
        let rules: Vec<Rule> = err.violations().iter().map(|v| v.rule).collect();
        assert!(rules.contains(&Rule::OverlappingActivities), "{rules:?}");
    }

    #[test]
    fn swap_splits_activity_at_range_edges() {
        let request = SwapRequest {
            agent_a: "a-1".into(),
            agent_b: "a-2".into(),
            from_a: vec![(ts("2026-12-07T09:00:00Z"), ts("2026-12-07T10:00:00Z"))],
            from_b: vec![(ts("2026-12-07T12:00:00Z"), ts("2026-12-07T13:00:00Z"))],
        };
        let update = swap(&week_book(), &request, &directory(), &amsterdam(), &LabourRules::default())
            .expect("hour for hour swap accepted");
        let monday_a1: Vec<(Timestamp, Timestamp)> = update
            .activities
            .iter()
            .filter(|x| x.agent_id == "a-1" && x.start < ts("2026-12-08T00:00:00Z"))
            .map(|x| (x.start, x.end))
            .collect();
        let mut monday_a1 = monday_a1;
        monday_a1.sort();
        assert_eq!(
            monday_a1,
            vec![
                (ts("2026-12-07T08:00:00Z"), ts("2026-12-07T09:00:00Z")),
                (ts("2026-12-07T10:00:00Z"), ts("2026-12-07T11:00:00Z")),
                (ts("2026-12-07T12:00:00Z"), ts("2026-12-07T13:00:00Z")),
            ]
        );
    }

    #[test]
    fn swap_with_self_rejected() {
        let request =
            SwapRequest { agent_a: "a-1".into(), agent_b: "a-1".into(), from_a: Vec::new(), from_b: Vec::new() };
        let got = swap(&week_book(), &request, &directory(), &amsterdam(), &LabourRules::default());
        assert!(matches!(got, Err(SwapError::SameAgent { .. })), "{got:?}");
    }

    #[test]
    fn swap_of_empty_ranges_is_nothing() {
        let request = SwapRequest {
            agent_a: "a-1".into(),
            agent_b: "a-2".into(),
            from_a: vec![(ts("2026-12-12T08:00:00Z"), ts("2026-12-12T11:00:00Z"))],
            from_b: Vec::new(),
        };
        let got = swap(&week_book(), &request, &directory(), &amsterdam(), &LabourRules::default());
        assert_eq!(got, Err(SwapError::NothingToSwap));
    }

    #[test]
    fn rejected_swap_text_in_dutch() {
        let request = SwapRequest {
            agent_a: "a-1".into(),
            agent_b: "a-2".into(),
            from_a: vec![(ts("2026-12-08T08:00:00Z"), ts("2026-12-08T11:00:00Z"))],
            from_b: Vec::new(),
        };
        let err = swap(&week_book(), &request, &directory(), &amsterdam(), &LabourRules::default())
            .expect_err("one-way swap rejected");
        assert!(err.text(Locale::Nl).starts_with("ruil afgewezen"), "{}", err.text(Locale::Nl));
    }
}
