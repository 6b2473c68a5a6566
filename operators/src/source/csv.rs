//! `kind: csv` — one CSV file, every column read as nullable text.
//!
//! ```yaml
//! source:
//!   kind: csv
//!   path: data/pagos.csv     # relative to the pipeline file
//!   header: true             # default true; false names the columns column_1, column_2, ...
//!   delimiter: ","           # default ","; one ASCII character ("\t" for TSV)
//!   quote: '"'               # default '"'
//!   null_text: ""            # text read as NULL, default "" (empty field); ~ = nothing is NULL
//! ```
//!
//! Types are deliberately not inferred: sniffing "0123" as a number or "1.10" as a float corrupts
//! ids and money (weakness W-15). The Postgres encoder parses text into the target column's type
//! with row-precise errors, and `transform.derive` can cast explicitly.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{SourceContext, blocking};
use crate::{BatchStream, OperatorError};

/// The `source:` block of a CSV table.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSpec {
    /// The file; relative paths resolve against the pipeline file's folder.
    pub path: PathBuf,
    /// Whether the first line names the columns.
    #[serde(default = "default_header")]
    pub header: bool,
    /// Field separator, one ASCII character.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Quote character, one ASCII character.
    #[serde(default = "default_quote")]
    pub quote: char,
    /// Field text read as NULL (compared whole, literally). `None` (`null_text: ~`): nothing is
    /// NULL. (Not called `null`: YAML reads a bare `null:` key as the null value.)
    #[serde(default = "default_null")]
    pub null_text: Option<String>,
}

fn default_header() -> bool {
    true
}
fn default_delimiter() -> char {
    ','
}
fn default_quote() -> char {
    '"'
}
fn default_null() -> Option<String> {
    Some(String::new())
}

impl CsvSpec {
    /// A spec with the defaults (header, comma, double quote, empty field = NULL).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvSpec {
            path: path.into(),
            header: true,
            delimiter: ',',
            quote: '"',
            null_text: Some(String::new()),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), OperatorError> {
        self.format().map(|_| ())
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "csv {} (delimiter {:?}, header {})",
            self.path.display(),
            self.delimiter,
            self.header
        )
    }

    fn format(&self) -> Result<Format, OperatorError> {
        let byte = |c: char, what: &str| {
            u8::try_from(c).ok().filter(u8::is_ascii).ok_or_else(|| {
                OperatorError::spec(
                    "csv source",
                    format!("{what} {c:?} is not one ASCII character"),
                )
            })
        };
        let mut format = Format::default()
            .with_header(self.header)
            .with_delimiter(byte(self.delimiter, "delimiter")?)
            .with_quote(byte(self.quote, "quote")?);
        match &self.null_text {
            // Arrow's default: an empty field is NULL.
            Some(text) if text.is_empty() => {}
            Some(text) => {
                let re = regex::Regex::new(&format!("^{}$", regex::escape(text))).map_err(|e| {
                    OperatorError::spec("csv source", format!("null text {text:?}: {e}"))
                })?;
                format = format.with_null_regex(re);
            }
            None => {
                // A pattern that matches nothing, not even the empty field.
                let never = regex::Regex::new(r"[^\s\S]")
                    .map_err(|e| OperatorError::spec("csv source", e.to_string()))?;
                format = format.with_null_regex(never);
            }
        }
        Ok(format)
    }

    pub(crate) async fn open(
        &self,
        ctx: &SourceContext,
    ) -> Result<(SchemaRef, BatchStream), OperatorError> {
        let path = ctx.resolve(&self.path);
        let format = self.format()?;
        let batch_size = ctx.batch_size();
        let what = format!("csv {}", path.display());
        let reader_path = path.clone();
        let (schema, reader) = blocking::run(&what, move || {
            let mut file = open_file(&reader_path)?;
            let schema = header_schema(&reader_path, &format, &mut file)?;
            file.rewind()
                .map_err(|e| OperatorError::io(&reader_path, e))?;
            let reader = arrow::csv::ReaderBuilder::new(schema.clone())
                .with_format(format)
                .with_batch_size(batch_size)
                .build(BufReader::with_capacity(1 << 20, file))
                .map_err(|e| file_error(&reader_path, e.to_string()))?;
            Ok((schema, reader))
        })
        .await?;
        let batches = reader.map(move |item| item.map_err(|e| file_error(&path, e.to_string())));
        Ok((schema, blocking::stream(what, batches)))
    }

    pub(crate) async fn schema(&self, ctx: &SourceContext) -> Result<SchemaRef, OperatorError> {
        let path = ctx.resolve(&self.path);
        let format = self.format()?;
        let what = format!("csv {}", path.display());
        blocking::run(&what, move || {
            let mut file = open_file(&path)?;
            header_schema(&path, &format, &mut file)
        })
        .await
    }
}

fn open_file(path: &Path) -> Result<File, OperatorError> {
    File::open(path).map_err(|e| OperatorError::io(path, e))
}

fn file_error(path: &Path, message: String) -> OperatorError {
    OperatorError::File {
        format: "csv",
        path: path.to_path_buf(),
        lines: None,
        message,
    }
}

/// Column names from the header line (or `column_N` from the first record), all nullable Utf8.
fn header_schema(
    path: &Path,
    format: &Format,
    file: &mut File,
) -> Result<SchemaRef, OperatorError> {
    let (inferred, _) = format
        .infer_schema(BufReader::new(&mut *file), Some(0))
        .map_err(|e| file_error(path, e.to_string()))?;
    if inferred.fields().is_empty() {
        return Err(OperatorError::File {
            format: "csv",
            path: path.to_path_buf(),
            lines: Some((1, 1)),
            message: "no columns (empty file or empty header)".to_string(),
        });
    }
    let mut seen = HashSet::new();
    let mut fields = Vec::with_capacity(inferred.fields().len());
    for (i, field) in inferred.fields().iter().enumerate() {
        // Files saved by spreadsheet programs often start with a UTF-8 byte-order mark.
        let name = if i == 0 {
            field.name().trim_start_matches('\u{feff}')
        } else {
            field.name().as_str()
        };
        if name.is_empty() {
            return Err(header_error(
                path,
                format!("column {} has an empty name", i + 1),
            ));
        }
        if !seen.insert(name.to_string()) {
            return Err(header_error(
                path,
                format!("column name {name:?} appears more than once"),
            ));
        }
        fields.push(Field::new(name, DataType::Utf8, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

fn header_error(path: &Path, message: String) -> OperatorError {
    OperatorError::File {
        format: "csv",
        path: path.to_path_buf(),
        lines: Some((1, 1)),
        message,
    }
}
