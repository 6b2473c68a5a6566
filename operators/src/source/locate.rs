//! Where a source row is in its file, for error messages: the line its record starts on (CSV,
//! NDJSON) or its row number (Parquet).
//!
//! Readers stay batch-wise and keep no per-row positions: a row is known downstream only by its
//! index in the source's stream (the n-th row read). When a row turns out to be bad, the file is
//! read again up to that row to find its line — work done only on the way to an error.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{SourceContext, SourceSpec, blocking};
use crate::OperatorError;

/// A row's place in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowPlace {
    /// "csv", "ndjson" or "parquet".
    pub format: &'static str,
    pub path: PathBuf,
    pub position: Position,
}

/// Lines for text formats, row numbers for Parquet; both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The line the row's record starts on (a quoted CSV field may continue on later lines).
    Line(u64),
    /// The row's number in the file (Parquet has no lines).
    Row(u64),
}

impl fmt::Display for RowPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} file {}", self.format, self.path.display())?;
        match self.position {
            Position::Line(n) => write!(f, " line {n}"),
            Position::Row(n) => write!(f, " row {n}"),
        }
    }
}

/// Finds the place of the n-th row (0-based) a file source reads. Made by
/// [`SourceSpec::locator`]; the format settings must be the reader's own.
#[derive(Debug, Clone)]
pub struct RowLocator {
    path: PathBuf,
    format: Format,
}

#[derive(Debug, Clone)]
enum Format {
    Csv {
        header: bool,
        delimiter: u8,
        quote: u8,
    },
    Ndjson,
    Parquet,
}

impl SourceSpec {
    /// How to find a row's file and line, for the sources that read files (`None` for the
    /// generator and BigQuery, whose rows have no place to point at).
    pub fn locator(&self, ctx: &SourceContext) -> Option<RowLocator> {
        let (path, format) = match self {
            SourceSpec::Csv(spec) => {
                let byte = |c: char| u8::try_from(c).ok().filter(u8::is_ascii);
                let format = Format::Csv {
                    header: spec.header,
                    delimiter: byte(spec.delimiter)?,
                    quote: byte(spec.quote)?,
                };
                (&spec.path, format)
            }
            SourceSpec::Ndjson(spec) => (&spec.path, Format::Ndjson),
            SourceSpec::Parquet(spec) => (&spec.path, Format::Parquet),
            SourceSpec::Generate(_) | SourceSpec::Bigquery(_) => return None,
        };
        Some(RowLocator {
            path: ctx.resolve(path),
            format,
        })
    }
}

impl RowLocator {
    /// The place of row `index` (0-based, in reading order), reading the file again on a blocking
    /// thread. `None` when the file no longer has that row (it changed since it was read).
    pub async fn place(&self, index: u64) -> Option<RowPlace> {
        let locator = self.clone();
        let what = format!("locating row {index} of {}", self.path.display());
        blocking::run(&what, move || Ok(locator.place_blocking(index)))
            .await
            .ok()
            .flatten()
    }

    fn place_blocking(&self, index: u64) -> Option<RowPlace> {
        let (format, position) = match &self.format {
            Format::Csv {
                header,
                delimiter,
                quote,
            } => (
                "csv",
                Position::Line(csv_line(&self.path, *header, *delimiter, *quote, index).ok()??),
            ),
            Format::Ndjson => (
                "ndjson",
                Position::Line(ndjson_line(&self.path, index).ok()??),
            ),
            Format::Parquet => ("parquet", Position::Row(index + 1)),
        };
        Some(RowPlace {
            format,
            path: self.path.clone(),
            position,
        })
    }
}

/// The line CSV record `index` (after the header) starts on. The `csv` crate splits records with
/// the same `csv-core` state machine as Arrow's reader, with the same delimiter, quote and
/// defaults (double quotes escape a quote, CRLF or LF, blank lines skipped), so it counts the
/// same records. Its line numbers lag behind after CRLF line ends, so the line is counted here
/// from the record's byte offset.
fn csv_line(
    path: &Path,
    header: bool,
    delimiter: u8,
    quote: u8,
    index: u64,
) -> Result<Option<u64>, OperatorError> {
    let file = File::open(path).map_err(|e| OperatorError::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .quote(quote)
        .flexible(true)
        .from_reader(BufReader::with_capacity(1 << 20, file));
    let target = index + u64::from(header);
    let mut record = csv::ByteRecord::new();
    let mut n = 0u64;
    loop {
        let more = reader
            .read_byte_record(&mut record)
            .map_err(|e| OperatorError::spec("csv row", e.to_string()))?;
        if !more {
            return Ok(None);
        }
        if n == target {
            return match record.position() {
                Some(position) => line_at(path, position.byte()).map(Some),
                None => Ok(None),
            };
        }
        n += 1;
    }
}

/// The line of the first byte at or after `offset` that is not a line end: where a CSV record
/// starts when its recorded offset still points at the previous record's terminator or at blank
/// lines before it.
fn line_at(path: &Path, offset: u64) -> Result<u64, OperatorError> {
    let file = File::open(path).map_err(|e| OperatorError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = 1u64;
    let mut at = 0u64;
    loop {
        let buf = reader.fill_buf().map_err(|e| OperatorError::io(path, e))?;
        if buf.is_empty() {
            return Ok(line);
        }
        let mut used = 0;
        for &b in buf {
            if at >= offset && b != b'\n' && b != b'\r' {
                return Ok(line);
            }
            if b == b'\n' {
                line += 1;
            }
            at += 1;
            used += 1;
        }
        reader.consume(used);
    }
}

/// The line of NDJSON record `index`: the reader skips blank lines, so they are not records.
fn ndjson_line(path: &Path, index: u64) -> Result<Option<u64>, OperatorError> {
    let file = File::open(path).map_err(|e| OperatorError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let (mut line, mut records) = (0u64, 0u64);
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| OperatorError::io(path, e))?;
        if n == 0 {
            return Ok(None);
        }
        line += 1;
        if buf.trim_ascii().is_empty() {
            continue;
        }
        if records == index {
            return Ok(Some(line));
        }
        records += 1;
    }
}
