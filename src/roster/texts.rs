//! Dutch and English texts for planners: violations and file errors.
//!
//! Numbers of hours get one decimal (two when a quarter hour needs it), with
//! a decimal comma in Dutch. Days read `Mon 2026-12-07` / `ma 2026-12-07`.

use jiff::civil::{Date, DateTime, Weekday};

use super::error::RosterError;
use super::violation::{Detail, LocalActivity, Rule, Violation};
use crate::domain::ActivityType;
use crate::i18n::Locale;

/// Returns the violation as a sentence in `locale`.
pub(crate) fn violation_text(v: &Violation, locale: Locale) -> String {
    let agent = &v.agent_id;
    let day = day(v.date, locale);
    let value = hours(v.value, locale);
    let limit = hours(v.limit, locale);

    match (v.rule, locale) {
        (Rule::ContractHoursRange, Locale::En) => {
            let side = if v.value > v.limit { "more than the maximum" } else { "less than the minimum" };
            format!("{agent} in {}: contract of {value} h a week is {side} of {limit} h", week(v.date, locale))
        }
        (Rule::ContractHoursRange, Locale::Nl) => {
            let side = if v.value > v.limit { "meer dan het maximum" } else { "minder dan het minimum" };
            format!("{agent} in {}: contract van {value} uur per week is {side} van {limit} uur", week(v.date, locale))
        }

        (Rule::WeeklyContractHours, Locale::En) => {
            let gap = hours((v.value - v.limit).abs(), locale);
            let side = if v.value > v.limit { "more" } else { "less" };
            format!(
                "{agent} in {}: {value} h of work scheduled, {gap} h {side} than the contract of {limit} h",
                week(v.date, locale)
            )
        }
        (Rule::WeeklyContractHours, Locale::Nl) => {
            let gap = hours((v.value - v.limit).abs(), locale);
            let side = if v.value > v.limit { "meer" } else { "minder" };
            format!(
                "{agent} in {}: {value} uur werk ingeroosterd, {gap} uur {side} dan het contract van {limit} uur",
                week(v.date, locale)
            )
        }

        (Rule::MaxBlockHours, Locale::En) => {
            format!("{agent} on {day}: block {} is {value} h, more than the {limit} h maximum", block_span(&v.detail))
        }
        (Rule::MaxBlockHours, Locale::Nl) => format!(
            "{agent} op {day}: blok {} duurt {value} uur, meer dan het maximum van {limit} uur",
            block_span(&v.detail)
        ),

        (Rule::MaxDayHours, Locale::En) => {
            format!("{agent} on {day}: {value} h of work in one day, more than the {limit} h maximum")
        }
        (Rule::MaxDayHours, Locale::Nl) => {
            format!("{agent} op {day}: {value} uur werk op één dag, meer dan het maximum van {limit} uur")
        }

        (Rule::OverlappingActivities, _) => overlap_text(v, &day, &value, locale),
        (Rule::ChangeInsideFinalWindow, _) => change_text(v, &day, locale),

        (Rule::UnknownAgent, Locale::En) => {
            let count = v.value as u64;
            let noun = if count == 1 { "activity" } else { "activities" };
            format!(
                "{agent} on {day}: agent is not in the agent directory ({count} {noun}); add the agent or correct the id"
            )
        }
        (Rule::UnknownAgent, Locale::Nl) => {
            let count = v.value as u64;
            let noun = if count == 1 { "activiteit" } else { "activiteiten" };
            format!(
                "{agent} op {day}: medewerker staat niet in de medewerkerslijst ({count} {noun}); voeg de medewerker toe of verbeter de id"
            )
        }
    }
}

fn overlap_text(v: &Violation, day: &str, value: &str, locale: Locale) -> String {
    let agent = &v.agent_id;
    let Detail::Overlap { first, second } = &v.detail else {
        return match locale {
            Locale::En => format!("{agent} on {day}: activities overlap by {value} h"),
            Locale::Nl => format!("{agent} op {day}: activiteiten overlappen {value} uur"),
        };
    };
    let first = local_activity(first, locale);
    let second = local_activity(second, locale);
    match locale {
        Locale::En => format!("{agent} on {day}: {first} overlaps {second} by {value} h"),
        Locale::Nl => format!("{agent} op {day}: {first} overlapt {second} met {value} uur"),
    }
}

fn change_text(v: &Violation, day: &str, locale: Locale) -> String {
    let agent = &v.agent_id;
    let weeks = v.limit as u32;
    let change = match (&v.detail, locale) {
        (Detail::Added { activity }, Locale::En) => {
            format!("{} added", local_activity(activity, locale))
        }
        (Detail::Added { activity }, Locale::Nl) => {
            format!("{} toegevoegd", local_activity(activity, locale))
        }
        (Detail::Removed { activity }, Locale::En) => {
            format!("{} removed", local_activity(activity, locale))
        }
        (Detail::Removed { activity }, Locale::Nl) => {
            format!("{} verwijderd", local_activity(activity, locale))
        }
        (Detail::Changed { before, after }, Locale::En) => {
            format!("{} changed to {}", local_activity(before, locale), local_activity(after, locale))
        }
        (Detail::Changed { before, after }, Locale::Nl) => {
            format!("{} gewijzigd in {}", local_activity(before, locale), local_activity(after, locale))
        }
        (_, Locale::En) => "roster changed".to_string(),
        (_, Locale::Nl) => "rooster gewijzigd".to_string(),
    };
    match locale {
        Locale::En => format!(
            "{agent} on {day}: {change}, but this week is final (rosters are final {weeks} weeks ahead); agree the change with the planner or swap with a colleague"
        ),
        Locale::Nl => format!(
            "{agent} op {day}: {change}, maar deze week ligt al vast (roosters liggen {weeks} weken vooruit vast); overleg met de planner of ruil met een collega"
        ),
    }
}

/// Returns the Dutch message for a file error.
pub(crate) fn roster_error_nl(error: &RosterError) -> String {
    let at = error.location().text(Locale::Nl);
    match error {
        RosterError::Csv { message, .. } => format!("{at}: ongeldige CSV: {message}"),
        RosterError::Json { message, .. } => format!("{at}: ongeldige JSON: {message}"),
        RosterError::MissingColumn { column, required, .. } => {
            format!("{at}: de kopregel heeft geen kolom {column}; de kopregel moet de kolommen {required} noemen")
        }
        RosterError::MissingField { field, .. } => format!("{at}: {field} ontbreekt of is leeg"),
        RosterError::InvalidTime { field, value, .. } => format!(
            "{at}: {field} {value:?} is geen geldige tijd; schrijf 2026-12-07T09:00 of \
             2026-12-07 09:00 (lokale tijd), 2026-12-07T09:00+01:00 (met offset) of \
             2026-12-07T08:00Z (UTC)"
        ),
        RosterError::TimeInGap { field, value, zone, offset_before, offset_after, suggestion, .. } => format!(
            "{at}: {field} {value} bestaat niet in {zone}: de klok gaat op dat uur vooruit van \
             {offset_before} naar {offset_after}; gebruik de tijd na de omschakeling (bijvoorbeeld \
             {suggestion}) of een tijd buiten het overgeslagen uur"
        ),
        RosterError::AmbiguousTime { field, value, zone, offset_before, offset_after, .. } => format!(
            "{at}: {field} {value} komt twee keer voor in {zone} omdat de klok teruggaat; voeg de \
             offset toe, bijvoorbeeld {value}{offset_before} voor de eerste (zomertijd) of \
             {value}{offset_after} voor de tweede (wintertijd)"
        ),
        RosterError::OffsetMismatch { field, value, zone, given, expected, .. } => format!(
            "{at}: {field} {value} heeft offset {given}, maar {zone} gebruikt op dat moment \
             {expected}; schrijf de offset {expected} bij de lokale tijd, of schrijf UTC met Z"
        ),
        RosterError::EndNotAfterStart { start, end, .. } => {
            format!("{at}: einde {end} ligt niet na begin {start}; een activiteit moet eindigen na het begin")
        }
        RosterError::UnknownActivity { value, known, .. } => {
            format!("{at}: onbekende activiteit {value:?}; gebruik een van {known}")
        }
        RosterError::InvalidHours { field, value, .. } => {
            format!("{at}: {field} {value:?} is geen geldig aantal uren; schrijf bijvoorbeeld 24 of 22,5")
        }
        RosterError::ContractHoursDiffer { agent_id, value, first, .. } => format!(
            "{at}: contract_hours {value} voor medewerker {agent_id} verschilt van eerder \
             opgegeven {first}; geef op elke regel van een medewerker dezelfde contracturen"
        ),
        RosterError::DuplicateAgent { agent_id, first, .. } => format!(
            "{at}: medewerker-id {agent_id} staat twee keer in de lijst (eerst op {}); houd één regel over",
            first.text(Locale::Nl)
        ),
        RosterError::DuplicatePlatformId { platform_id, owner, .. } => format!(
            "{at}: platform-id {platform_id} hoort al bij medewerker {owner}; een platform-id \
             mag naar één medewerker wijzen"
        ),
        RosterError::TooManyRows { limit, .. } => {
            format!("{at}: meer dan {limit} regels; splits het bestand of verhoog de limiet")
        }
        RosterError::TooManyErrors { limit, .. } => {
            format!("{at}: meer dan {limit} fouten; herstel deze eerst, de rest van het bestand is niet gecontroleerd")
        }
    }
}

/// Returns the name of an activity for planners.
pub fn activity_name(activity: ActivityType, locale: Locale) -> &'static str {
    match (activity, locale) {
        (ActivityType::PhoneDuty, Locale::En) => "phone duty",
        (ActivityType::PhoneDuty, Locale::Nl) => "telefoondienst",
        (ActivityType::Break, Locale::En) => "break",
        (ActivityType::Break, Locale::Nl) => "pauze",
        (ActivityType::Lunch, Locale::En) => "lunch",
        (ActivityType::Lunch, Locale::Nl) => "lunch",
        (ActivityType::Training, Locale::En) => "training",
        (ActivityType::Training, Locale::Nl) => "training",
        (ActivityType::Meeting, Locale::En) => "meeting",
        (ActivityType::Meeting, Locale::Nl) => "overleg",
        (ActivityType::Coaching, Locale::En) => "coaching",
        (ActivityType::Coaching, Locale::Nl) => "coaching",
        (ActivityType::TeamDay, Locale::En) => "team day",
        (ActivityType::TeamDay, Locale::Nl) => "teamdag",
        (ActivityType::ExtraHours, Locale::En) => "extra hours",
        (ActivityType::ExtraHours, Locale::Nl) => "extra uren",
        (ActivityType::SentHome, Locale::En) => "sent home",
        (ActivityType::SentHome, Locale::Nl) => "naar huis gestuurd",
    }
}

/// Formats hours with one decimal, or two when one would hide a quarter.
pub fn hours(value: f64, locale: Locale) -> String {
    let hundredths = (value * 100.0).round();
    let text = if hundredths % 10.0 == 0.0 {
        format!("{:.1}", hundredths / 100.0)
    } else {
        format!("{:.2}", hundredths / 100.0)
    };
    match locale {
        Locale::En => text,
        Locale::Nl => text.replace('.', ","),
    }
}

/// Formats a date with its weekday: `Mon 2026-12-07`, `ma 2026-12-07`.
pub fn day(date: Date, locale: Locale) -> String {
    format!("{} {date}", weekday(date.weekday(), locale))
}

fn week(monday: Date, locale: Locale) -> String {
    let iso = monday.iso_week_date();
    let from = match locale {
        Locale::En => "from",
        Locale::Nl => "vanaf",
    };
    format!("week {}-W{:02} ({from} {})", iso.year(), iso.week(), day(monday, locale))
}

fn weekday(weekday: Weekday, locale: Locale) -> &'static str {
    let index = weekday.to_monday_zero_offset() as usize;
    let names = match locale {
        Locale::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        Locale::Nl => ["ma", "di", "wo", "do", "vr", "za", "zo"],
    };
    names.get(index).copied().unwrap_or("")
}

fn span(start: DateTime, end: DateTime) -> String {
    format!("{}–{}", start.strftime("%H:%M"), end.strftime("%H:%M"))
}

fn block_span(detail: &Detail) -> String {
    match detail {
        Detail::Block { start, end } => span(*start, *end),
        _ => String::new(),
    }
}

fn local_activity(activity: &LocalActivity, locale: Locale) -> String {
    format!("{} {}", activity_name(activity.activity, locale), span(activity.start, activity.end))
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn block_violation() -> Violation {
        Violation {
            agent_id: "a-117".into(),
            date: date(2026, 12, 7),
            rule: Rule::MaxBlockHours,
            value: 4.0,
            limit: 3.0,
            detail: Detail::Block { start: date(2026, 12, 7).at(9, 0, 0, 0), end: date(2026, 12, 7).at(13, 0, 0, 0) },
        }
    }

    #[test]
    fn block_text_in_english() {
        assert_eq!(
            block_violation().text(Locale::En),
            "a-117 on Mon 2026-12-07: block 09:00–13:00 is 4.0 h, more than the 3.0 h maximum"
        );
    }

    #[test]
    fn block_text_in_dutch() {
        assert_eq!(
            block_violation().text(Locale::Nl),
            "a-117 op ma 2026-12-07: blok 09:00–13:00 duurt 4,0 uur, meer dan het maximum van 3,0 uur"
        );
    }

    #[test]
    fn hours_keep_quarters() {
        assert_eq!(hours(22.25, Locale::Nl), "22,25");
    }

    #[test]
    fn hours_round_to_one_decimal() {
        assert_eq!(hours(22.5, Locale::En), "22.5");
    }

    #[test]
    fn weekly_text_names_week_and_gap() {
        let violation = Violation {
            agent_id: "a-117".into(),
            date: date(2026, 12, 7),
            rule: Rule::WeeklyContractHours,
            value: 20.0,
            limit: 24.0,
            detail: Detail::None,
        };
        assert_eq!(
            violation.text(Locale::Nl),
            "a-117 in week 2026-W50 (vanaf ma 2026-12-07): 20,0 uur werk ingeroosterd, 4,0 uur minder dan het contract van 24,0 uur"
        );
    }

    #[test]
    fn every_rule_has_both_texts() {
        for rule in Rule::ALL {
            let violation = Violation { rule, ..block_violation() };
            for locale in [Locale::En, Locale::Nl] {
                let text = violation.text(locale);
                assert!(text.starts_with("a-117 "), "{rule} {locale:?}: {text}");
            }
        }
    }
}
