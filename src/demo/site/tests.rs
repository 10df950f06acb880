//! Checks the generated site against the labour rules, minute by minute,
//! with a small checker of its own (the roster module has the real one).

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::civil::{Date, date};
use jiff::tz::TimeZone;

use super::*;

fn amsterdam() -> TimeZone {
    TimeZone::get("Europe/Amsterdam").expect("the bundled tzdb must contain Europe/Amsterdam")
}

fn week() -> Date {
    date(2026, 12, 7)
}

fn default_site(seed: u64) -> Site {
    generate_site(seed, DEFAULT_AGENTS, week(), &amsterdam(), &LabourRules::default())
}

fn minutes(activity: &ScheduledActivity) -> i64 {
    (activity.end.as_second() - activity.start.as_second()) / 60
}

/// Returns every labour-rule violation in one agent's week, as text naming
/// the agent, day and rule.
fn week_violations(
    agent: &Agent,
    activities: &[&ScheduledActivity],
    tz: &TimeZone,
    rules: &LabourRules,
) -> Vec<String> {
    let mut problems = Vec::new();
    let max_block = (rules.max_block_hours * 60.0).round() as i64;
    let max_day = (rules.max_day_hours * 60.0).round() as i64;

    let mut by_day: BTreeMap<Date, Vec<&ScheduledActivity>> = BTreeMap::new();
    for &activity in activities {
        by_day.entry(activity.start.to_zoned_datetime(tz.clone()).date()).or_default().push(activity);
    }

    let mut week_work = 0;
    for (day, list) in &by_day {
        let work: i64 = list.iter().filter(|a| a.activity.is_work()).map(|a| minutes(a)).sum();
        week_work += work;
        if work > max_day {
            problems.push(format!("{} {day}: {work} min of work, more than {max_day}", agent.id));
        }

        // Blocks: runs of work activities that touch; any gap or non-work
        // activity between two runs must last at least 15 min.
        let mut block_start = None;
        let mut block_end: Option<jiff::Timestamp> = None;
        for activity in list.iter().filter(|a| a.activity.is_work()) {
            match block_end {
                Some(end) if end == activity.start => {}
                Some(end) => {
                    let pause = (activity.start.as_second() - end.as_second()) / 60;
                    if pause < 15 {
                        problems.push(format!("{} {day}: pause of {pause} min between blocks", agent.id));
                    }
                    block_start = Some(activity.start);
                }
                None => block_start = Some(activity.start),
            }
            block_end = Some(activity.end);
            let length = (activity.end.as_second() - block_start.unwrap_or(activity.start).as_second()) / 60;
            if length > max_block {
                problems.push(format!("{} {day}: block of {length} min, more than {max_block}", agent.id));
            }
        }

        let pauses = list.iter().filter(|a| !a.activity.is_work()).count();
        if work > 180 && pauses == 0 {
            problems.push(format!("{} {day}: {work} min of work without a break", agent.id));
        }
        let first_is_work = list.first().is_some_and(|a| a.activity.is_work());
        let last_is_work = list.last().is_some_and(|a| a.activity.is_work());
        if !first_is_work || !last_is_work {
            problems.push(format!("{} {day}: a break starts or ends the day", agent.id));
        }
    }

    let contract = (agent.contract_hours * 60.0).round() as i64;
    if week_work != contract {
        problems.push(format!("{}: {week_work} min of work, contract is {contract}", agent.id));
    }
    problems
}

fn activities_by_agent(site: &Site) -> HashMap<&str, Vec<&ScheduledActivity>> {
    let mut map: HashMap<&str, Vec<&ScheduledActivity>> = HashMap::new();
    for activity in &site.activities {
        map.entry(activity.agent_id.as_str()).or_default().push(activity);
    }
    map
}

#[test]
fn site_has_requested_agents() {
    let site = default_site(7);
    assert_eq!(site.agents.len(), 163);
}

#[test]
fn site_is_deterministic() {
    assert_eq!(default_site(11), default_site(11));
}

#[test]
fn site_differs_by_seed() {
    assert_ne!(default_site(11).activities, default_site(12).activities);
}

#[test]
fn teams_have_twelve_to_fourteen_agents() {
    let site = default_site(7);
    let mut sizes: HashMap<&str, usize> = HashMap::new();
    for agent in &site.agents {
        *sizes.entry(agent.team.as_str()).or_default() += 1;
    }
    for (team, size) in sizes {
        assert!((12..=14).contains(&size), "{team} has {size} agents");
    }
}

#[test]
fn display_names_are_unique() {
    let site = default_site(7);
    let names: HashSet<&str> = site.agents.iter().map(|a| a.display_name.as_str()).collect();
    assert_eq!(names.len(), site.agents.len());
}

#[test]
fn contracts_are_half_hours_in_range() {
    let site = default_site(7);
    for agent in &site.agents {
        let hours = agent.contract_hours;
        assert!((15.0..=28.0).contains(&hours), "{}: {hours} h", agent.id);
        assert_eq!((hours * 2.0).fract(), 0.0, "{}: {hours} h", agent.id);
    }
    let distinct: HashSet<u64> = site.agents.iter().map(|a| a.contract_hours.to_bits()).collect();
    assert!(distinct.len() >= 8, "only {} distinct contracts", distinct.len());
}

#[test]
fn platform_ids_follow_extension() {
    let site = default_site(7);
    assert_eq!(site.agents[0].platform_ids, ["sip:1001@pbx.example.com", "u-1001"]);
    assert_eq!(site.agents[162].platform_ids, ["sip:1163@pbx.example.com", "u-1163"]);
}

#[test]
fn every_week_obeys_labour_rules() {
    let tz = amsterdam();
    let rules = LabourRules::default();
    for seed in [1, 2, 3] {
        let site = default_site(seed);
        let by_agent = activities_by_agent(&site);
        for agent in &site.agents {
            let list = by_agent.get(agent.id.as_str()).cloned().unwrap_or_default();
            let problems = week_violations(agent, &list, &tz, &rules);
            assert!(problems.is_empty(), "seed {seed}: {problems:?}");
        }
    }
}

#[test]
fn stricter_rules_are_obeyed() {
    let tz = amsterdam();
    let rules = LabourRules { max_block_hours: 2.0, max_day_hours: 5.0, ..LabourRules::default() };
    let site = generate_site(5, 60, week(), &tz, &rules);
    let by_agent = activities_by_agent(&site);
    for agent in &site.agents {
        let list = by_agent.get(agent.id.as_str()).cloned().unwrap_or_default();
        let problems = week_violations(agent, &list, &tz, &rules);
        assert!(problems.is_empty(), "{problems:?}");
    }
}

#[test]
fn activities_are_quarters_within_opening_hours() {
    let tz = amsterdam();
    let site = default_site(7);
    for activity in &site.activities {
        let start = activity.start.to_zoned_datetime(tz.clone());
        let end = activity.end.to_zoned_datetime(tz.clone());
        assert_eq!(start.minute() % 15, 0, "{activity:?}");
        assert_eq!(start.second(), 0, "{activity:?}");
        assert_eq!(end.minute() % 15, 0, "{activity:?}");
        assert!(activity.start < activity.end, "{activity:?}");

        let (open, close) = match start.weekday() {
            jiff::civil::Weekday::Saturday => (9 * 60, 13 * 60),
            jiff::civil::Weekday::Sunday => (0, 0),
            _ => (8 * 60, 20 * 60),
        };
        let from = i32::from(start.hour()) * 60 + i32::from(start.minute());
        let to = i32::from(end.hour()) * 60 + i32::from(end.minute());
        assert!(from >= open, "{activity:?} starts before opening");
        assert!(to <= close, "{activity:?} ends after closing");
        assert_eq!(start.date(), end.date(), "{activity:?}");
    }
}

#[test]
fn activities_do_not_overlap() {
    let site = default_site(7);
    for list in activities_by_agent(&site).values() {
        for pair in list.windows(2) {
            assert!(pair[0].end <= pair[1].start, "{:?} overlaps {:?}", pair[0], pair[1]);
        }
    }
}

#[test]
fn roster_mixes_work_activities() {
    let site = default_site(7);
    let count = |kind: ActivityType| site.activities.iter().filter(|a| a.activity == kind).count();
    let phone: i64 = site.activities.iter().filter(|a| a.activity == ActivityType::PhoneDuty).map(minutes).sum();
    let work: i64 = site.activities.iter().filter(|a| a.activity.is_work()).map(minutes).sum();
    assert!(phone * 100 / work >= 85, "phone duty is {}% of work", phone * 100 / work);
    assert!(count(ActivityType::Training) > 0);
    assert!(count(ActivityType::Meeting) > 0);
    assert!(count(ActivityType::Coaching) > 0);
    assert!(count(ActivityType::Lunch) > 0);
    assert!(count(ActivityType::Break) > 0);
}

/// Between 09:00 and 17:00 on weekdays at least one agent in five is on
/// phone duty at every quarter hour, and more than a third on average.
#[test]
fn weekday_business_hours_are_busy() {
    let tz = amsterdam();
    for seed in [1, 2, 7] {
        let site = default_site(seed);
        let mut shares = Vec::new();
        for day in 0..5 {
            let date = week().checked_add(Span::new().days(day)).expect("a December 2026 date");
            for quarter in (9 * 4)..(17 * 4) {
                let at = local_timestamp(date, quarter, &tz).expect("a valid local time");
                let on_phone = site
                    .activities
                    .iter()
                    .filter(|a| a.activity == ActivityType::PhoneDuty && a.start <= at && at < a.end)
                    .count();
                let share = on_phone * 100 / site.agents.len();
                assert!(share >= 20, "seed {seed}, {date} quarter {quarter}: {share}% on phone duty");
                shares.push(share);
            }
        }
        let mean = shares.iter().sum::<usize>() / shares.len();
        assert!(mean >= 35, "seed {seed}: {mean}% on phone duty on average");
    }
}

#[test]
fn opening_hours_are_staffed() {
    let tz = amsterdam();
    let site = default_site(7);
    for day in 0..6 {
        let date = week().checked_add(Span::new().days(day)).expect("a December 2026 date");
        let (open, close) = if day == 5 { (SATURDAY_OPEN, SATURDAY_CLOSE) } else { (WEEKDAY_OPEN, WEEKDAY_CLOSE) };
        for quarter in open..close {
            let at = local_timestamp(date, quarter, &tz).expect("a valid local time");
            let on_phone = site
                .activities
                .iter()
                .filter(|a| a.activity == ActivityType::PhoneDuty && a.start <= at && at < a.end)
                .count();
            assert!(on_phone >= 3, "{date} quarter {quarter}: {on_phone} agents on phone duty");
        }
    }
}

#[test]
fn roster_follows_dst_offset() {
    let tz = amsterdam();
    let rules = LabourRules::default();
    // Clocks go forward on Sunday 29 March 2026.
    let before = generate_site(3, 20, date(2026, 3, 23), &tz, &rules);
    let after = generate_site(3, 20, date(2026, 3, 30), &tz, &rules);
    for activity in &before.activities {
        let offset = activity.start.to_zoned_datetime(tz.clone()).offset().seconds();
        assert_eq!(offset, 3600, "{activity:?}");
    }
    for activity in &after.activities {
        let offset = activity.start.to_zoned_datetime(tz.clone()).offset().seconds();
        assert_eq!(offset, 7200, "{activity:?}");
    }
}

#[test]
fn week_starts_on_monday() {
    let tz = amsterdam();
    let rules = LabourRules::default();
    let from_thursday = generate_site(3, 20, date(2026, 12, 10), &tz, &rules);
    let from_monday = generate_site(3, 20, week(), &tz, &rules);
    assert_eq!(from_thursday, from_monday);
}

#[test]
fn zero_agents_is_empty() {
    let site = generate_site(3, 0, week(), &amsterdam(), &LabourRules::default());
    assert!(site.agents.is_empty());
    assert!(site.activities.is_empty());
}
