//! Reading roster times: local site time, local time with offset, or UTC.
//!
//! A local time without offset is read in the site's time zone. It must name
//! exactly one instant: a time the clocks skip (the spring-forward gap) or
//! show twice (the fall-back fold) is rejected with the fix, never guessed.
//! An explicit offset picks one side of a fold. It must be an offset the zone
//! uses at that instant, so a wrong offset cannot silently move a shift by an
//! hour. `Z`, `+00:00` and `-00:00` mark UTC and are always taken as given.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};

use super::error::{Location, RosterError};

/// Problem with a time value, before a location is attached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TimeProblem {
    Invalid,
    Gap { before: Offset, after: Offset, suggestion: DateTime },
    Fold { before: Offset, after: Offset },
    OffsetMismatch { given: Offset, expected: Offset },
}

/// Part of a value after the local date and time.
enum Suffix {
    None,
    Utc,
    Offset(Offset),
}

/// Parses `value` to an instant, reading local times in `tz`.
pub(crate) fn parse_instant(value: &str, tz: &TimeZone) -> Result<Timestamp, TimeProblem> {
    let (local, suffix) = split_suffix(value.trim()).ok_or(TimeProblem::Invalid)?;
    let datetime: DateTime = local.parse().map_err(|_| TimeProblem::Invalid)?;

    match suffix {
        Suffix::Utc => Offset::UTC.to_timestamp(datetime).map_err(|_| TimeProblem::Invalid),
        Suffix::Offset(given) => {
            let instant = given.to_timestamp(datetime).map_err(|_| TimeProblem::Invalid)?;
            let expected = tz.to_offset(instant);
            if expected != given {
                return Err(TimeProblem::OffsetMismatch { given, expected });
            }
            Ok(instant)
        }
        Suffix::None => match tz.to_ambiguous_timestamp(datetime).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(datetime).map_err(|_| TimeProblem::Invalid),
            AmbiguousOffset::Gap { before, after } => {
                // The wall-clock time the value reaches when the skipped hour
                // is added, which is what most planners meant.
                let suggestion = before
                    .to_timestamp(datetime)
                    .map(|instant| tz.to_datetime(instant))
                    .map_err(|_| TimeProblem::Invalid)?;
                Err(TimeProblem::Gap { before, after, suggestion })
            }
            AmbiguousOffset::Fold { before, after } => Err(TimeProblem::Fold { before, after }),
        },
    }
}

/// Parses `value` and attaches `at` and `field` to any problem.
// Errors are rare and end up in a Vec, so their size does not matter here.
#[allow(clippy::result_large_err)]
pub(crate) fn parse_field(
    value: &str,
    tz: &TimeZone,
    at: Location,
    field: &'static str,
) -> Result<Timestamp, RosterError> {
    parse_instant(value, tz).map_err(|problem| problem.into_error(value.trim(), tz, at, field))
}

/// Formats an offset as `+01:00`, the form the roster files use.
pub(crate) fn format_offset(offset: Offset) -> String {
    let seconds = offset.seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Returns the IANA name of `tz`, or a description when it has none.
pub(crate) fn zone_name(tz: &TimeZone) -> String {
    tz.iana_name().unwrap_or("the site time zone").to_string()
}

/// Splits `2026-12-07T09:00+01:00` into the local part (with `T`) and the
/// suffix. Returns None when the value has no date-time shape at all.
fn split_suffix(value: &str) -> Option<(String, Suffix)> {
    let date = value.get(..10)?;
    let separator = value.get(10..11)?;
    if !matches!(separator, "T" | "t" | " ") {
        return None;
    }
    let rest = value.get(11..)?;

    if let Some(time) = rest.strip_suffix(['Z', 'z']) {
        return Some((format!("{date}T{}", time.trim_end()), Suffix::Utc));
    }

    match rest.find(['+', '-']) {
        None => Some((format!("{date}T{rest}"), Suffix::None)),
        Some(index) => {
            let (time, offset) = rest.split_at(index);
            let offset = parse_offset(offset)?;
            let suffix = if offset == Offset::UTC { Suffix::Utc } else { Suffix::Offset(offset) };
            Some((format!("{date}T{}", time.trim_end()), suffix))
        }
    }
}

/// Parses `+01:00`, `+0100` or `+01`.
fn parse_offset(text: &str) -> Option<Offset> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = match digits.len() {
        2 | 4 => digits.to_string(),
        5 if digits.as_bytes()[2] == b':' => digits.replacen(':', "", 1),
        _ => return None,
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }

    let hours: i32 = digits.get(..2)?.parse().ok()?;
    let minutes: i32 = match digits.get(2..) {
        Some("") | None => 0,
        Some(m) => m.parse().ok()?,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

// === impl TimeProblem ===

impl TimeProblem {
    pub(crate) fn into_error(self, value: &str, tz: &TimeZone, at: Location, field: &'static str) -> RosterError {
        let value = value.to_string();
        match self {
            TimeProblem::Invalid => RosterError::InvalidTime { at, field, value },
            TimeProblem::Gap { before, after, suggestion } => RosterError::TimeInGap {
                at,
                field,
                value,
                zone: zone_name(tz),
                offset_before: format_offset(before),
                offset_after: format_offset(after),
                suggestion: suggestion.strftime("%Y-%m-%dT%H:%M").to_string(),
            },
            TimeProblem::Fold { before, after } => RosterError::AmbiguousTime {
                at,
                field,
                value,
                zone: zone_name(tz),
                offset_before: format_offset(before),
                offset_after: format_offset(after),
            },
            TimeProblem::OffsetMismatch { given, expected } => RosterError::OffsetMismatch {
                at,
                field,
                value,
                zone: zone_name(tz),
                given: format_offset(given),
                expected: format_offset(expected),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amsterdam() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").expect("bundled tzdb must contain Europe/Amsterdam")
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("test instant must parse")
    }

    #[test]
    fn local_winter_time_uses_plus_one() {
        let got = parse_instant("2026-12-07T09:00", &amsterdam());
        assert_eq!(got, Ok(ts("2026-12-07T08:00:00Z")));
    }

    #[test]
    fn space_separator_accepted() {
        let got = parse_instant("2026-12-07 09:00", &amsterdam());
        assert_eq!(got, Ok(ts("2026-12-07T08:00:00Z")));
    }

    #[test]
    fn utc_z_taken_as_given() {
        let got = parse_instant("2026-12-07T09:00Z", &amsterdam());
        assert_eq!(got, Ok(ts("2026-12-07T09:00:00Z")));
    }

    #[test]
    fn zero_offset_is_utc() {
        let got = parse_instant("2026-12-07T09:00+00:00", &amsterdam());
        assert_eq!(got, Ok(ts("2026-12-07T09:00:00Z")));
    }

    #[test]
    fn matching_offset_accepted() {
        let got = parse_instant("2026-12-07T09:00+01:00", &amsterdam());
        assert_eq!(got, Ok(ts("2026-12-07T08:00:00Z")));
    }

    #[test]
    fn compact_offset_accepted() {
        let got = parse_instant("2026-12-07T09:00+0100", &amsterdam());
        assert_eq!(got, Ok(ts("2026-12-07T08:00:00Z")));
    }

    #[test]
    fn wrong_offset_rejected() {
        let got = parse_instant("2026-12-07T09:00+02:00", &amsterdam());
        assert!(matches!(got, Err(TimeProblem::OffsetMismatch { .. })), "{got:?}");
    }

    #[test]
    fn gap_time_rejected_with_suggestion() {
        let got = parse_instant("2024-03-31T02:30", &amsterdam());
        let Err(TimeProblem::Gap { suggestion, .. }) = got else {
            panic!("expected a gap, got {got:?}");
        };
        assert_eq!(suggestion.to_string(), "2024-03-31T03:30:00");
    }

    #[test]
    fn fold_time_rejected() {
        let got = parse_instant("2024-10-27T02:30", &amsterdam());
        assert!(matches!(got, Err(TimeProblem::Fold { .. })), "{got:?}");
    }

    #[test]
    fn fold_resolved_by_summer_offset() {
        let got = parse_instant("2024-10-27T02:30+02:00", &amsterdam());
        assert_eq!(got, Ok(ts("2024-10-27T00:30:00Z")));
    }

    #[test]
    fn fold_resolved_by_winter_offset() {
        let got = parse_instant("2024-10-27T02:30+01:00", &amsterdam());
        assert_eq!(got, Ok(ts("2024-10-27T01:30:00Z")));
    }

    #[test]
    fn garbage_times_rejected() {
        let inputs = [
            "",
            "2026",
            "2026-12-07",
            "2026-12-07X09:00",
            "2026-12-07T",
            "2026-12-07T25:00",
            "2026-13-07T09:00",
            "2026-12-07T09:00+",
            "2026-12-07T09:00+1",
            "2026-12-07T09:00+99:00",
            "2026-12-07T09:00+01:0x",
            "ééééééééééé",
            "2026-12-0é09:00",
            "2026-12-07T09:00ZZ",
            "9999999999-01-01T00:00",
        ];
        for input in inputs {
            let got = parse_instant(input, &amsterdam());
            assert!(got.is_err(), "{input:?} parsed as {got:?}");
        }
    }

    #[test]
    fn offset_formats_with_minutes() {
        let offset = Offset::from_seconds(-(5 * 3600 + 30 * 60)).expect("offset in range");
        assert_eq!(format_offset(offset), "-05:30");
    }
}
