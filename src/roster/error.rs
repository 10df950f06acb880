//! Errors from reading agent directory and roster files.
//!
//! Every error carries its [`Location`] in the file, names the offending
//! value and tells how to fix it. The English text is the `Display` output;
//! [`RosterError::text`] gives the same message in Dutch for planners.

use std::fmt;

use crate::i18n::Locale;

/// Position of an error in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A CSV line, counting from 1 (the header is line 1).
    Line(u64),
    /// A position in a JSON document, as the JSON parser reports it.
    LineColumn { line: usize, column: usize },
    /// An element of a JSON array, counting from 0 (`activities[3]`).
    Item { list: &'static str, index: usize },
    /// The file as a whole.
    File,
}

/// One problem in an agent directory or roster file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RosterError {
    #[error("{at}: invalid CSV: {message}")]
    Csv { at: Location, message: String },

    #[error("{at}: invalid JSON: {message}")]
    Json { at: Location, message: String },

    #[error("{at}: the header has no column {column}; the header must name the columns {required}")]
    MissingColumn { at: Location, column: &'static str, required: &'static str },

    #[error("{at}: {field} is missing or empty")]
    MissingField { at: Location, field: &'static str },

    #[error(
        "{at}: {field} {value:?} is not a valid time; write 2026-12-07T09:00 or \
         2026-12-07 09:00 (site time), 2026-12-07T09:00+01:00 (with offset) or \
         2026-12-07T08:00Z (UTC)"
    )]
    InvalidTime { at: Location, field: &'static str, value: String },

    #[error(
        "{at}: {field} {value} does not exist in {zone}: the clocks move forward from \
         {offset_before} to {offset_after} at that hour; use the time after the change \
         (for example {suggestion}) or a time outside the skipped hour"
    )]
    TimeInGap {
        at: Location,
        field: &'static str,
        value: String,
        zone: String,
        offset_before: String,
        offset_after: String,
        suggestion: String,
    },

    #[error(
        "{at}: {field} {value} occurs twice in {zone} because the clocks move back; \
         add the offset, e.g. {value}{offset_before} for the first (summer time) or \
         {value}{offset_after} for the second (winter time)"
    )]
    AmbiguousTime {
        at: Location,
        field: &'static str,
        value: String,
        zone: String,
        offset_before: String,
        offset_after: String,
    },

    #[error(
        "{at}: {field} {value} has offset {given}, but {zone} uses {expected} at that \
         instant; write the offset {expected} with the local time, or write UTC with Z"
    )]
    OffsetMismatch { at: Location, field: &'static str, value: String, zone: String, given: String, expected: String },

    #[error("{at}: end {end} is not after start {start}; an activity must end after it starts")]
    EndNotAfterStart { at: Location, start: String, end: String },

    #[error("{at}: unknown activity {value:?}; use one of {known}")]
    UnknownActivity { at: Location, value: String, known: String },

    #[error("{at}: {field} {value:?} is not a valid number of hours; write for example 24 or 22.5")]
    InvalidHours { at: Location, field: &'static str, value: String },

    #[error(
        "{at}: contract_hours {value} for agent {agent_id} differs from {first} given \
         earlier; give the same contract hours on every row of an agent"
    )]
    ContractHoursDiffer { at: Location, agent_id: String, value: String, first: String },

    #[error("{at}: agent id {agent_id} is listed twice (first at {first}); keep one entry")]
    DuplicateAgent { at: Location, agent_id: String, first: Location },

    #[error(
        "{at}: platform id {platform_id} already belongs to agent {owner}; a platform id \
         must point at one agent"
    )]
    DuplicatePlatformId { at: Location, platform_id: String, owner: String },

    #[error("{at}: more than {limit} rows; split the file or raise the limit")]
    TooManyRows { at: Location, limit: usize },

    #[error("{at}: more than {limit} errors; fix these first, the rest of the file was not checked")]
    TooManyErrors { at: Location, limit: usize },
}

/// All errors found in one file, in file order. Never empty when returned
/// as an error.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterErrors(pub Vec<RosterError>);

/// Stops collecting errors after this many, so a file of garbage yields a
/// readable report rather than one line per row.
pub(crate) const MAX_ERRORS: usize = 200;

// === impl Location ===

impl Location {
    /// Returns a number that orders locations within one file.
    fn order(&self) -> u64 {
        match self {
            Location::File => 0,
            Location::Line(line) => *line,
            Location::LineColumn { line, .. } => *line as u64,
            Location::Item { index, .. } => *index as u64,
        }
    }

    /// Returns the location as a phrase in `locale` (`line 5`, `regel 5`).
    pub fn text(&self, locale: Locale) -> String {
        match (self, locale) {
            (Location::Line(line), Locale::En) => format!("line {line}"),
            (Location::Line(line), Locale::Nl) => format!("regel {line}"),
            (Location::LineColumn { line, column }, Locale::En) => {
                format!("line {line}, column {column}")
            }
            (Location::LineColumn { line, column }, Locale::Nl) => {
                format!("regel {line}, kolom {column}")
            }
            (Location::Item { list, index }, _) => format!("{list}[{index}]"),
            (Location::File, Locale::En) => "file".to_string(),
            (Location::File, Locale::Nl) => "bestand".to_string(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(Locale::En))
    }
}

// === impl RosterError ===

impl RosterError {
    /// Returns where in the file the error is.
    pub fn location(&self) -> Location {
        match self {
            RosterError::Csv { at, .. }
            | RosterError::Json { at, .. }
            | RosterError::MissingColumn { at, .. }
            | RosterError::MissingField { at, .. }
            | RosterError::InvalidTime { at, .. }
            | RosterError::TimeInGap { at, .. }
            | RosterError::AmbiguousTime { at, .. }
            | RosterError::OffsetMismatch { at, .. }
            | RosterError::EndNotAfterStart { at, .. }
            | RosterError::UnknownActivity { at, .. }
            | RosterError::InvalidHours { at, .. }
            | RosterError::ContractHoursDiffer { at, .. }
            | RosterError::DuplicateAgent { at, .. }
            | RosterError::DuplicatePlatformId { at, .. }
            | RosterError::TooManyRows { at, .. }
            | RosterError::TooManyErrors { at, .. } => *at,
        }
    }

    /// Returns the message in `locale`; English is the same as `Display`.
    pub fn text(&self, locale: Locale) -> String {
        match locale {
            Locale::En => self.to_string(),
            Locale::Nl => super::texts::roster_error_nl(self),
        }
    }
}

// === impl RosterErrors ===

impl RosterErrors {
    /// Returns the errors as lines of text in `locale`.
    pub fn text(&self, locale: Locale) -> String {
        let lines: Vec<String> = self.0.iter().map(|e| e.text(locale)).collect();
        lines.join("\n")
    }

    pub fn iter(&self) -> std::slice::Iter<'_, RosterError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for RosterErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(Locale::En))
    }
}

impl std::error::Error for RosterErrors {}

impl std::ops::Deref for RosterErrors {
    type Target = [RosterError];

    fn deref(&self) -> &[RosterError] {
        &self.0
    }
}

impl IntoIterator for RosterErrors {
    type Item = RosterError;
    type IntoIter = std::vec::IntoIter<RosterError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a RosterErrors {
    type Item = &'a RosterError;
    type IntoIter = std::slice::Iter<'a, RosterError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Collects errors up to [`MAX_ERRORS`], then records one
/// [`RosterError::TooManyErrors`] and reports that the caller should stop.
#[derive(Debug, Default)]
pub(crate) struct ErrorSink {
    errors: Vec<RosterError>,
    full: bool,
}

impl ErrorSink {
    /// Records `error`; returns false once the sink is full.
    pub(crate) fn push(&mut self, error: RosterError) -> bool {
        if self.full {
            return false;
        }
        if self.errors.len() >= MAX_ERRORS {
            let at = error.location();
            self.errors.push(RosterError::TooManyErrors { at, limit: MAX_ERRORS });
            self.full = true;
            return false;
        }
        self.errors.push(error);
        true
    }

    pub(crate) fn is_full(&self) -> bool {
        self.full
    }

    /// Returns `value`, or the errors in file order. Errors of one row keep
    /// the order they were found in; the cap notice stays last.
    pub(crate) fn into_result<T>(mut self, value: T) -> Result<T, RosterErrors> {
        if self.errors.is_empty() {
            return Ok(value);
        }
        self.errors.sort_by_key(|error| match error {
            RosterError::TooManyErrors { .. } => u64::MAX,
            other => other.location().order(),
        });
        Err(RosterErrors(self.errors))
    }
}
