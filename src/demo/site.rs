//! Site generator: agents in teams and one ISO week of roster that obeys the
//! labour rules.
//!
//! The generator is a pure function of its arguments: the same seed, agent
//! count, week, time zone and rules give the same site. It plans every day
//! in whole quarter hours of local time and converts each boundary to a UTC
//! timestamp in the site zone, so a roster on a daylight-saving day has the
//! offset that day really has.
//!
//! How each rule is met (the tests check every one of them per agent):
//!
//! - **Contract hours.** A contract is drawn from a table of usual part-time
//!   contracts and clamped to the rules' range and to what one week can hold
//!   under the other rules, in whole half hours.
//! - **Full contract hours every week.** [`split_week`] hands out exactly the
//!   contract's quarter hours over the days, and the days are laid out with
//!   exactly those work quarters.
//! - **Maximum hours a day.** No day gets more than `Limits::day_quarters`,
//!   which is the rules' daily maximum, lowered if the day's blocks and
//!   breaks would not fit in the opening hours.
//! - **Maximum block.** A day is cut into `ceil(work / max block)` or more
//!   blocks of near-equal length, so no block exceeds the maximum. Blocks are
//!   separated by a 15 min break or a 30 min lunch, both non-work
//!   activities. Training, meetings, coaching and team days replace phone
//!   duty inside a block and never lengthen it.
//! - **Breaks.** A day of more than 3 h has at least two blocks and so at
//!   least one break. A day of more than 4 h has at least three blocks, with
//!   a lunch in the middle and breaks elsewhere.
//! - **Opening hours.** Weekday shifts lie within 08:00–20:00 and Saturday
//!   shifts within 09:00–13:00 as one block without a break. Sunday is closed.
//!
//! The generator does not call the roster module's validator; its tests
//! check every rule with a small checker of their own.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::domain::{ActivityType, Agent, ScheduledActivity};
use crate::roster::rules::LabourRules;

use super::names::{FIRST_NAMES, LAST_NAMES, TEAM_NAMES};

/// An agent directory and its roster for one week.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub agents: Vec<Agent>,
    /// Scheduled activities, ordered by agent (in directory order), then
    /// start.
    pub activities: Vec<ScheduledActivity>,
}

/// The default number of agents, about the size of the first site.
pub const DEFAULT_AGENTS: usize = 163;

/// Extension of the first agent; agent `n` (from 0) has `FIRST_EXTENSION + n`.
pub const FIRST_EXTENSION: usize = 1001;

/// Largest team; teams are as equal as the agent count allows.
const MAX_TEAM_SIZE: usize = 14;

/// Local opening hours in quarter hours after midnight.
const WEEKDAY_OPEN: i64 = 8 * 4;
const WEEKDAY_CLOSE: i64 = 20 * 4;
const SATURDAY_OPEN: i64 = 9 * 4;
const SATURDAY_CLOSE: i64 = 13 * 4;

/// Saturday is day 5 counted from Monday (0).
const SATURDAY: usize = 5;

const BREAK_QUARTERS: i64 = 1;
const LUNCH_QUARTERS: i64 = 2;

/// Days of at most this much work are one block without a break (3 h).
const SINGLE_BLOCK_MAX: i64 = 12;
/// Days of more than this much work get three blocks with a lunch (4 h).
const LUNCH_FROM: i64 = 16;

/// Share of agents who also work a Saturday morning.
const SATURDAY_SHARE: f64 = 0.22;

/// Usual part-time contracts in hours a week, with relative frequency.
const CONTRACTS: &[(f64, u32)] = &[
    (15.0, 2),
    (16.0, 8),
    (17.5, 2),
    (18.0, 5),
    (19.0, 1),
    (20.0, 10),
    (21.0, 2),
    (22.0, 3),
    (22.5, 3),
    (24.0, 10),
    (25.0, 2),
    (26.0, 3),
    (27.0, 1),
    (28.0, 6),
];

/// Daily chances of the work activities that replace phone duty, and their
/// lengths in quarter hours.
const MEETING_CHANCE: f64 = 0.10;
const COACHING_CHANCE: f64 = 0.06;
const TRAINING_CHANCE: f64 = 0.05;
/// Chance that a team has a team-day hour this week.
const TEAM_DAY_CHANCE: f64 = 0.4;
/// The team-day hour, 10:00–11:00, in quarter hours after midnight.
const TEAM_DAY_START: i64 = 10 * 4;
const TEAM_DAY_LEN: i64 = 4;

/// When an agent likes to start a weekday. Gives the floor its daily shape:
/// most people start in the morning, fewer cover the afternoon and evening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShiftHabit {
    Early,
    Morning,
    Afternoon,
    Evening,
}

const HABITS: &[(ShiftHabit, u32)] =
    &[(ShiftHabit::Early, 32), (ShiftHabit::Morning, 28), (ShiftHabit::Afternoon, 24), (ShiftHabit::Evening, 16)];

/// The labour rules in quarter hours, adjusted to what the opening hours
/// allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    block_quarters: i64,
    day_quarters: i64,
    saturday_quarters: i64,
    /// Contract range in quarter hours; both are whole half hours.
    min_contract_quarters: i64,
    max_contract_quarters: i64,
}

/// One day of one agent: an activity per quarter hour from `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DayPlan {
    /// Days after Monday (0–5).
    day: usize,
    /// First quarter hour after local midnight.
    start: i64,
    quarters: Vec<ActivityType>,
}

/// Generates a site of `agents` agents and their roster for the ISO week
/// that contains `week_monday` (any day of the week is moved back to its
/// Monday).
///
/// Days whose local times cannot be represented in `tz` (only near the ends
/// of the supported date range) are left out of the roster.
pub fn generate_site(seed: u64, agents: usize, week_monday: Date, tz: &TimeZone, rules: &LabourRules) -> Site {
    let mut rng = StdRng::seed_from_u64(seed);
    let limits = Limits::from_rules(rules);
    let monday = monday_of_week(week_monday);

    let team_count = agents.div_ceil(MAX_TEAM_SIZE).max(1);
    let team_days: Vec<Option<usize>> =
        (0..team_count).map(|_| rng.random_bool(TEAM_DAY_CHANCE).then(|| rng.random_range(0..SATURDAY))).collect();

    let mut site = Site { agents: Vec::with_capacity(agents), activities: Vec::new() };
    let mut used_names = std::collections::HashSet::new();

    for index in 0..agents {
        let team = index * team_count / agents;
        let extension = FIRST_EXTENSION + index;
        let contract_quarters = draw_contract(&mut rng, &limits);
        let agent = Agent {
            id: format!("a-{:03}", index + 1),
            display_name: draw_display_name(&mut rng, &mut used_names),
            team: team_name(team),
            contract_hours: contract_quarters as f64 / 4.0,
            platform_ids: vec![format!("sip:{extension}@pbx.example.com"), format!("u-{extension}")],
        };

        let habit = *pick_weighted(&mut rng, HABITS);
        let week = split_week(&mut rng, contract_quarters, &limits);
        for (day, &work) in week.iter().enumerate() {
            if work == 0 {
                continue;
            }
            let mut plan = lay_out_day(&mut rng, day, work, habit, &limits);
            if team_days[team] == Some(day) {
                place_team_day(&mut plan);
            }
            add_work_activities(&mut rng, &mut plan);
            push_activities(&mut site.activities, &agent.id, monday, &plan, tz);
        }

        site.agents.push(agent);
    }

    site
}

/// Returns the team name for team number `team` (from 0).
fn team_name(team: usize) -> String {
    let name = TEAM_NAMES[team % TEAM_NAMES.len()];
    let round = team / TEAM_NAMES.len();
    if round == 0 { name.to_string() } else { format!("{name}-{}", round + 1) }
}

fn monday_of_week(date: Date) -> Date {
    let back = i64::from(date.weekday().to_monday_zero_offset());
    date.checked_sub(Span::new().days(back)).unwrap_or(date)
}

/// Draws a display name not used before; after many collisions (only with
/// thousands of agents) a name may repeat.
fn draw_display_name(rng: &mut StdRng, used: &mut std::collections::HashSet<String>) -> String {
    let mut name = String::new();
    for _ in 0..50 {
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        name = format!("{first} {last}");
        if used.insert(name.clone()) {
            break;
        }
    }
    name
}

/// Draws contract hours in quarter hours (a whole number of half hours).
fn draw_contract(rng: &mut StdRng, limits: &Limits) -> i64 {
    let hours = *pick_weighted(rng, CONTRACTS);
    let quarters = (hours * 2.0).round() as i64 * 2;
    quarters.max(limits.min_contract_quarters).min(limits.max_contract_quarters)
}

/// Splits a week's contract over Monday–Saturday; returns work quarters per
/// day. The sum is exactly `contract`, no day exceeds its cap, and weekday
/// shares differ by a few quarters at most so shifts look self-rostered.
fn split_week(rng: &mut StdRng, contract: i64, limits: &Limits) -> [i64; 6] {
    let mut week = [0; 6];

    let weekday_capacity = 5 * limits.day_quarters;
    let saturday_needed = (contract - weekday_capacity).max(0);
    if saturday_needed > 0 || rng.random_bool(SATURDAY_SHARE) {
        let wish = rng.random_range(8..=12);
        week[SATURDAY] = wish.max(saturday_needed).min(limits.saturday_quarters).min(contract);
    }

    let rest = contract - week[SATURDAY];
    if rest <= 0 {
        return week;
    }

    // At least enough days to stay under the daily cap, at most five, and
    // preferably no day shorter than 3 h.
    let min_days = ceil_div(rest, limits.day_quarters).clamp(1, 5);
    let max_days = (rest / SINGLE_BLOCK_MAX).min(5).max(min_days);
    let day_count = rng.random_range(min_days..=max_days) as usize;

    let mut days = [0usize, 1, 2, 3, 4];
    days.shuffle(rng);
    let days = &mut days[..day_count];
    days.sort_unstable();

    let base = rest / day_count as i64;
    let extra = (rest % day_count as i64) as usize;
    for (i, &day) in days.iter().enumerate() {
        week[day] = base + i64::from(i < extra);
    }

    // Move a few quarters between days so not every day is the same length.
    let shortest = base.min(8);
    for _ in 0..day_count {
        let from = days[rng.random_range(0..day_count)];
        let to = days[rng.random_range(0..day_count)];
        let amount = rng.random_range(1..=4);
        if from != to && week[from] - amount >= shortest && week[to] + amount <= limits.day_quarters {
            week[from] -= amount;
            week[to] += amount;
        }
    }

    week
}

/// Returns how many blocks a day of `work` quarters gets; see the module
/// doc for the reasons.
fn block_count(work: i64, block_quarters: i64) -> i64 {
    let needed = ceil_div(work, block_quarters);
    let preferred = if work <= SINGLE_BLOCK_MAX {
        1
    } else if work <= LUNCH_FROM {
        2
    } else {
        3
    };
    needed.max(preferred).min(work).max(1)
}

/// Returns the non-work activities between the blocks of a day of `work`
/// quarters: breaks, with a lunch in the middle on days of more than 4 h.
fn separators(work: i64, blocks: i64) -> Vec<ActivityType> {
    let count = (blocks - 1).max(0) as usize;
    let lunch_at = count / 2;
    (0..count)
        .map(|i| if work > LUNCH_FROM && i == lunch_at { ActivityType::Lunch } else { ActivityType::Break })
        .collect()
}

fn separator_quarters(activity: ActivityType) -> i64 {
    if activity == ActivityType::Lunch { LUNCH_QUARTERS } else { BREAK_QUARTERS }
}

/// Lays out one day: phone-duty blocks with breaks between them, placed
/// within the opening hours according to the agent's habit.
fn lay_out_day(rng: &mut StdRng, day: usize, work: i64, habit: ShiftHabit, limits: &Limits) -> DayPlan {
    let blocks = block_count(work, limits.block_quarters);
    let separators = separators(work, blocks);

    // Near-equal blocks; the remainder goes to randomly chosen blocks.
    let mut lengths = vec![work / blocks; blocks as usize];
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(rng);
    for &i in order.iter().take((work % blocks) as usize) {
        lengths[i] += 1;
    }

    // Shift a quarter or two between blocks so that breaks of agents with
    // the same shift do not all fall at the same time.
    for _ in 0..lengths.len() {
        let from = rng.random_range(0..lengths.len());
        let to = rng.random_range(0..lengths.len());
        let amount = rng.random_range(1..=2);
        if from != to && lengths[from] - amount >= 4 && lengths[to] + amount <= limits.block_quarters {
            lengths[from] -= amount;
            lengths[to] += amount;
        }
    }

    let mut quarters = Vec::new();
    for (i, &length) in lengths.iter().enumerate() {
        quarters.extend(std::iter::repeat_n(ActivityType::PhoneDuty, length as usize));
        if let Some(&separator) = separators.get(i) {
            let length = separator_quarters(separator) as usize;
            quarters.extend(std::iter::repeat_n(separator, length));
        }
    }

    let length = quarters.len() as i64;
    let start = if day == SATURDAY {
        // Half the Saturday crew opens, a third closes, the rest fills in.
        let latest = (SATURDAY_CLOSE - length).max(SATURDAY_OPEN);
        match rng.random_range(0..6) {
            0..=2 => SATURDAY_OPEN,
            3 | 4 => latest,
            _ => rng.random_range(SATURDAY_OPEN..=latest),
        }
    } else {
        let wish = match habit {
            ShiftHabit::Early => WEEKDAY_OPEN + rng.random_range(0..=2),
            ShiftHabit::Morning => WEEKDAY_OPEN + 4 + rng.random_range(0..=10),
            ShiftHabit::Afternoon => 17 * 4 + 3 + rng.random_range(0..=7) - length,
            ShiftHabit::Evening => WEEKDAY_CLOSE - length - rng.random_range(0..=1),
        };
        let latest = (WEEKDAY_CLOSE - length).max(WEEKDAY_OPEN);
        (wish + rng.random_range(-1..=1)).clamp(WEEKDAY_OPEN, latest)
    };

    DayPlan { day, start, quarters }
}

/// Turns the team-day hour into a team day where the agent has phone duty
/// for the whole hour.
fn place_team_day(plan: &mut DayPlan) {
    let from = TEAM_DAY_START - plan.start;
    if from < 0 {
        return;
    }
    let from = from as usize;
    let to = from + TEAM_DAY_LEN as usize;
    if plan.quarters.get(from..to).is_some_and(|q| q.iter().all(|&a| a == ActivityType::PhoneDuty)) {
        plan.quarters[from..to].fill(ActivityType::TeamDay);
    }
}

/// Replaces stretches of phone duty with an occasional meeting, coaching
/// session or training. Only phone-duty quarters are replaced, so blocks
/// and breaks keep their lengths.
fn add_work_activities(rng: &mut StdRng, plan: &mut DayPlan) {
    if rng.random_bool(MEETING_CHANCE) {
        let length = if rng.random_bool(0.5) { 2 } else { 4 };
        replace_phone_duty(rng, plan, ActivityType::Meeting, length);
    }
    if rng.random_bool(COACHING_CHANCE) {
        replace_phone_duty(rng, plan, ActivityType::Coaching, 2);
    }
    if rng.random_bool(TRAINING_CHANCE) {
        let length = rng.random_range(4..=8);
        replace_phone_duty(rng, plan, ActivityType::Training, length);
    }
}

fn replace_phone_duty(rng: &mut StdRng, plan: &mut DayPlan, activity: ActivityType, length: usize) {
    let candidates: Vec<usize> = (0..plan.quarters.len().saturating_sub(length - 1))
        .filter(|&i| plan.quarters[i..i + length].iter().all(|&a| a == ActivityType::PhoneDuty))
        .collect();
    if candidates.is_empty() {
        return;
    }
    let at = candidates[rng.random_range(0..candidates.len())];
    plan.quarters[at..at + length].fill(activity);
}

/// Appends a day's activities, one per run of equal quarters, with UTC
/// timestamps for the local quarter-hour boundaries.
fn push_activities(out: &mut Vec<ScheduledActivity>, agent_id: &str, monday: Date, plan: &DayPlan, tz: &TimeZone) {
    let Ok(date) = monday.checked_add(Span::new().days(plan.day as i64)) else {
        return;
    };

    let mut run_start = 0;
    for i in 1..=plan.quarters.len() {
        if i < plan.quarters.len() && plan.quarters[i] == plan.quarters[run_start] {
            continue;
        }
        let start = local_timestamp(date, plan.start + run_start as i64, tz);
        let end = local_timestamp(date, plan.start + i as i64, tz);
        if let (Some(start), Some(end)) = (start, end) {
            out.push(ScheduledActivity {
                agent_id: agent_id.to_string(),
                start,
                end,
                activity: plan.quarters[run_start],
            });
        }
        run_start = i;
    }
}

/// Returns the instant of quarter hour `quarter` after local midnight of
/// `date` in `tz`. A local time that a clock change skips resolves to the
/// later offset.
fn local_timestamp(date: Date, quarter: i64, tz: &TimeZone) -> Option<Timestamp> {
    let hour = i8::try_from(quarter / 4).ok()?;
    let minute = i8::try_from((quarter % 4) * 15).ok()?;
    let time = jiff::civil::Time::new(hour, minute, 0, 0).ok()?;
    date.to_datetime(time).to_zoned_datetime(tz.clone()).ok().map(|zoned| zoned.timestamp())
}

/// Picks an item with probability proportional to its weight.
pub(crate) fn pick_weighted<'a, T>(rng: &mut StdRng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, weight)| weight).sum();
    let mut ticket = rng.random_range(0..total.max(1));
    for (item, weight) in items {
        if ticket < *weight {
            return item;
        }
        ticket -= weight;
    }
    &items[items.len() - 1].0
}

// === impl Limits ===

impl Limits {
    fn from_rules(rules: &LabourRules) -> Limits {
        let defaults = LabourRules::default();
        let block_quarters = floor_quarters(rules.max_block_hours, defaults.max_block_hours).max(1);
        let rule_day = floor_quarters(rules.max_day_hours, defaults.max_day_hours).max(1);

        // Lower the daily cap until the day's blocks and breaks fit in the
        // weekday opening hours.
        let mut day_quarters = rule_day.min(WEEKDAY_CLOSE - WEEKDAY_OPEN);
        while day_quarters > 1 {
            let blocks = block_count(day_quarters, block_quarters);
            let pauses: i64 = separators(day_quarters, blocks).into_iter().map(separator_quarters).sum();
            if day_quarters + pauses <= WEEKDAY_CLOSE - WEEKDAY_OPEN {
                break;
            }
            day_quarters -= 1;
        }

        let saturday_quarters =
            block_quarters.min(day_quarters).min(SINGLE_BLOCK_MAX).min(SATURDAY_CLOSE - SATURDAY_OPEN);

        let capacity = 5 * day_quarters + saturday_quarters;
        let max_contract = floor_quarters(rules.max_contract_hours, defaults.max_contract_hours).min(capacity);
        let max_contract_quarters = max_contract - max_contract % 2;
        let min_contract = floor_quarters(rules.min_contract_hours, defaults.min_contract_hours);
        let min_contract_quarters = (min_contract + min_contract % 2).min(max_contract_quarters).max(2);

        Limits {
            block_quarters,
            day_quarters,
            saturday_quarters,
            min_contract_quarters,
            max_contract_quarters: max_contract_quarters.max(min_contract_quarters),
        }
    }
}

/// Divides and rounds up; both numbers are positive.
fn ceil_div(numerator: i64, denominator: i64) -> i64 {
    (numerator + denominator - 1) / denominator
}

/// Converts hours to whole quarter hours, rounding down; a value that is not
/// a positive finite number falls back to `default` hours.
fn floor_quarters(hours: f64, default: f64) -> i64 {
    let hours = if hours.is_finite() && hours > 0.0 { hours } else { default };
    (hours * 4.0 + 1e-9).floor().min(10_000.0) as i64
}

#[cfg(test)]
mod tests;
