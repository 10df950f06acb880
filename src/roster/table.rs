//! Reading a CSV file with a header into rows of named columns.
//!
//! Columns are found by header name (case-insensitive, surrounding spaces
//! ignored), so their order is free and extra columns are skipped. Lines
//! starting with `#` and empty lines are skipped.

use csv::{ReaderBuilder, StringRecord, Trim};

use super::error::{ErrorSink, Location, RosterError};

/// Most data rows one file may have. A site of a few hundred agents
/// publishing three weeks of about ten activities a day stays far below it.
pub(crate) const MAX_ROWS: usize = 100_000;

/// A column the reader looks for.
pub(crate) struct Column {
    pub name: &'static str,
    /// Other header names accepted for this column.
    pub aliases: &'static [&'static str],
    pub required: bool,
}

/// One data row: its line number and the trimmed value of each requested
/// column, in the order the columns were requested. Empty cells are None.
pub(crate) struct Row {
    pub line: u64,
    pub values: Vec<Option<String>>,
}

/// Reads `text` and returns its data rows. Problems go to `errors`; a
/// missing required column stops reading (every row would fail).
pub(crate) fn read_rows(
    text: &str,
    columns: &[Column],
    required_list: &'static str,
    errors: &mut ErrorSink,
) -> Vec<Row> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader =
        ReaderBuilder::new().flexible(true).trim(Trim::All).comment(Some(b'#')).from_reader(text.as_bytes());

    let lines = LineIndex::new(text);

    let header = match reader.headers() {
        Ok(header) => header.clone(),
        Err(err) => {
            errors.push(RosterError::Csv { at: lines.error_location(&err), message: err.to_string() });
            return Vec::new();
        }
    };
    let header_line = header.position().map_or(1, |p| lines.line_at(p.byte()));
    let Some(indexes) = column_indexes(&header, columns, header_line, required_list, errors) else {
        return Vec::new();
    };

    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let error = RosterError::Csv { at: lines.error_location(&err), message: err.to_string() };
                if !errors.push(error) {
                    break;
                }
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }

        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        if rows.len() >= MAX_ROWS {
            errors.push(RosterError::TooManyRows { at: Location::Line(line), limit: MAX_ROWS });
            break;
        }

        let values = indexes
            .iter()
            .map(|index| index.and_then(|i| record.get(i)).filter(|value| !value.is_empty()).map(str::to_string))
            .collect();
        rows.push(Row { line, values });
    }
    rows
}

fn column_indexes(
    header: &StringRecord,
    columns: &[Column],
    line: u64,
    required_list: &'static str,
    errors: &mut ErrorSink,
) -> Option<Vec<Option<usize>>> {
    let names: Vec<String> = header.iter().map(|name| name.trim().to_ascii_lowercase()).collect();

    let mut indexes = Vec::with_capacity(columns.len());
    let mut complete = true;
    for column in columns {
        let index = names.iter().position(|name| name == column.name || column.aliases.contains(&name.as_str()));
        if index.is_none() && column.required {
            errors.push(RosterError::MissingColumn {
                at: Location::Line(line),
                column: column.name,
                required: required_list,
            });
            complete = false;
        }
        indexes.push(index);
    }
    complete.then_some(indexes)
}

/// Line numbers of byte offsets. The csv crate's own line count skips
/// blank and comment lines, and its byte position points at the end of the
/// previous record, so the record's first line is found here instead.
struct LineIndex<'a> {
    text: &'a [u8],
    newlines: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> LineIndex<'a> {
        let newlines = text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i).collect();
        LineIndex { text: text.as_bytes(), newlines }
    }

    /// Returns the line of the first record that starts at or after
    /// `byte`, skipping line ends and `#` comment lines.
    fn line_at(&self, byte: u64) -> u64 {
        let text = self.text;
        let mut i = usize::try_from(byte).unwrap_or(usize::MAX).min(text.len());
        loop {
            while i < text.len() && matches!(text[i], b'\r' | b'\n') {
                i += 1;
            }
            if i < text.len() && text[i] == b'#' {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            break;
        }
        1 + self.newlines.partition_point(|&n| n < i) as u64
    }

    fn error_location(&self, err: &csv::Error) -> Location {
        err.position().map_or(Location::File, |p| Location::Line(self.line_at(p.byte())))
    }
}
