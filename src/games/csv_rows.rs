//! Reading a data file's CSV rows: each row with its line number, every failure named by file
//! and line.

use std::io::Read;
use std::path::Path;

use super::retrosheet::DataError;

/// One CSV row, its line and the file's header.
pub(super) struct CsvRow<'a> {
    pub line: u64,
    headers: &'a csv::StringRecord,
    record: csv::StringRecord,
}

impl CsvRow<'_> {
    /// The row as `T`, by the header's column names.
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, (u64, String)> {
        self.record
            .deserialize(Some(self.headers))
            .map_err(|e| (self.line, format!("bad value: {e}")))
    }

    /// The cell of a named column.
    pub fn get(&self, column: &str) -> Option<&str> {
        let at = self.headers.iter().position(|name| name == column)?;
        self.record.get(at)
    }
}

/// Hands every row of the CSV in `reader` (read from `path`) to `each`, which may refuse it
/// with a line and a reason; the first failure stops the file.
pub(super) fn read_rows(
    path: &Path,
    reader: impl Read,
    mut each: impl FnMut(CsvRow<'_>) -> Result<(), (u64, String)>,
) -> Result<(), DataError> {
    let malformed = |line: u64, reason: String| DataError::Malformed {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut csv = csv::Reader::from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| malformed(1, format!("unreadable header: {e}")))?
        .clone();
    for record in csv.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            malformed(line, format!("unreadable row: {e}"))
        })?;
        let row = CsvRow {
            line: record.position().map_or(0, csv::Position::line),
            headers: &headers,
            record,
        };
        each(row).map_err(|(line, reason)| malformed(line, reason))?;
    }
    Ok(())
}
