//! `kind: ndjson` — one newline-delimited JSON file (one object per line), every column read as
//! nullable text.
//!
//! ```yaml
//! source:
//!   kind: ndjson
//!   path: data/gestiones.ndjson   # relative to the pipeline file
//!   infer_rows: 1000              # default 1000: lines scanned for column names
//! ```
//!
//! How values become text:
//! - strings as they are; numbers keep their exact source text (`12.30` stays `12.30`, never
//!   through f64, invariant 7); `true`/`false`; JSON `null` and missing keys are NULL;
//! - nested objects and arrays become their JSON text (numbers inside them are re-rendered by
//!   Arrow, so `1.10` inside a nested value reads back as `1.1`).
//!
//! Columns are the keys of the first `infer_rows` non-empty lines, in order of first appearance.
//! A key first seen later is an error naming the lines, never silently dropped.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::json::reader::Decoder;
use arrow::json::writer::{EncoderOptions, make_encoder};
use indexmap::IndexMap;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{SourceContext, blocking};
use crate::{BatchStream, OperatorError};

/// The `source:` block of an NDJSON table.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NdjsonSpec {
    /// The file; relative paths resolve against the pipeline file's folder.
    pub path: PathBuf,
    /// Non-empty lines scanned for column names.
    #[serde(default = "default_infer_rows")]
    pub infer_rows: usize,
}

fn default_infer_rows() -> usize {
    1000
}

impl NdjsonSpec {
    /// A spec with the defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        NdjsonSpec {
            path: path.into(),
            infer_rows: default_infer_rows(),
        }
    }

    pub(crate) async fn open(
        &self,
        ctx: &SourceContext,
    ) -> Result<(SchemaRef, BatchStream), OperatorError> {
        let path = ctx.resolve(&self.path);
        let infer_rows = self.infer_rows.max(1);
        let batch_size = ctx.batch_size();
        let what = format!("ndjson {}", path.display());
        let (schema, batches) = blocking::run(&what, move || {
            let mut file = File::open(&path).map_err(|e| OperatorError::io(&path, e))?;
            let columns = discover(&path, &mut file, infer_rows)?;
            file.rewind().map_err(|e| OperatorError::io(&path, e))?;
            let batches = NdjsonBatches::new(path, file, &columns, batch_size)?;
            Ok((columns.output_schema(), batches))
        })
        .await?;
        Ok((schema, blocking::stream(what, batches)))
    }

    pub(crate) async fn schema(&self, ctx: &SourceContext) -> Result<SchemaRef, OperatorError> {
        let path = ctx.resolve(&self.path);
        let infer_rows = self.infer_rows.max(1);
        let what = format!("ndjson {}", path.display());
        blocking::run(&what, move || {
            let mut file = File::open(&path).map_err(|e| OperatorError::io(&path, e))?;
            Ok(discover(&path, &mut file, infer_rows)?.output_schema())
        })
        .await
    }
}

fn file_error(path: &Path, lines: Option<(u64, u64)>, message: impl Into<String>) -> OperatorError {
    OperatorError::File {
        format: "ndjson",
        path: path.to_path_buf(),
        lines,
        message: message.into(),
    }
}

/// A serde_json error on line `line` of the file: its own "at line 1 column C" is relative to
/// the single line it was given, so only the column is kept.
fn json_error(path: &Path, line: u64, e: &serde_json::Error) -> OperatorError {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(at) => format!("{} (column {})", &text[..at], e.column()),
        None => text,
    };
    file_error(path, Some((line, line)), message)
}

/// The columns found in the first lines: name → Arrow type used to decode. Scalars decode as
/// Utf8 directly; nested values decode with their inferred type and are rendered as JSON text.
struct Columns(Vec<FieldRef>);

impl Columns {
    fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.0
                .iter()
                .map(|f| Field::new(f.name(), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ))
    }

    fn decode_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.0.clone()))
    }
}

fn discover(path: &Path, file: &mut File, infer_rows: usize) -> Result<Columns, OperatorError> {
    let mut keys: IndexMap<String, bool> = IndexMap::new();
    let mut values = Vec::new();
    let mut seen = 0usize;
    let reader = BufReader::new(file);
    for (index, line) in reader.lines().enumerate() {
        let n = index as u64 + 1;
        let line = line.map_err(|e| file_error(path, Some((n, n)), e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(&line);
        KeySeed(&mut keys)
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(|e| json_error(path, n, &e))?;
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| json_error(path, n, &e))?;
        values.push(value);
        seen += 1;
        if seen >= infer_rows {
            break;
        }
    }
    if keys.is_empty() {
        return Err(file_error(
            path,
            None,
            "no columns (empty file or only empty objects)",
        ));
    }
    // Arrow's inference knows nested types; it is only consulted for the nested keys because its
    // field order is not the file's.
    let inferred = if keys.values().any(|nested| *nested) {
        Some(
            arrow::json::reader::infer_json_schema_from_iterator(values.iter().map(Ok))
                .map_err(|e| file_error(path, None, format!("inferring nested columns: {e}")))?,
        )
    } else {
        None
    };
    let mut fields = Vec::with_capacity(keys.len());
    for (name, nested) in keys {
        let field = match (&inferred, nested) {
            (Some(schema), true) => {
                let inferred_field = schema
                    .field_with_name(&name)
                    .map_err(|e| file_error(path, None, e.to_string()))?;
                Field::new(&name, inferred_field.data_type().clone(), true)
            }
            _ => Field::new(&name, DataType::Utf8, true),
        };
        fields.push(Arc::new(field));
    }
    Ok(Columns(fields))
}

/// Collects the keys of one JSON object in order, recording whether any value was nested.
struct KeySeed<'a>(&'a mut IndexMap<String, bool>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let Shape(nested) = map.next_value()?;
            *self.0.entry(key).or_insert(false) |= nested;
        }
        Ok(())
    }
}

/// Whether a JSON value is an object or an array (its content is skipped).
struct Shape(bool);

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape(false))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape(false))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape(false))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape(false))
    }
    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape(false))
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape(false))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape(true))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Shape(true))
    }
}

/// Builds arrow-json's push decoder for the discovered columns.
fn decoder(schema: SchemaRef, batch_size: usize) -> Result<Decoder, arrow::error::ArrowError> {
    arrow::json::ReaderBuilder::new(schema)
        .with_batch_size(batch_size)
        // Numbers and booleans into text columns keep their source text.
        .with_coerce_primitive(true)
        // A key missing from the schema is an error rather than a silently dropped column.
        .with_strict_mode(true)
        .build_decoder()
}

/// Decodes the file batch by batch with arrow-json's push decoder, one line at a time, so that
/// errors name the line at fault.
struct NdjsonBatches {
    path: PathBuf,
    reader: BufReader<File>,
    decoder: Decoder,
    decode_schema: SchemaRef,
    output_schema: SchemaRef,
    batch_size: usize,
    /// Lines read so far (the number of the last line read).
    line: u64,
    /// Bytes read so far.
    offset: u64,
    buf: Vec<u8>,
    done: bool,
}

impl NdjsonBatches {
    fn new(
        path: PathBuf,
        file: File,
        columns: &Columns,
        batch_size: usize,
    ) -> Result<Self, OperatorError> {
        let decode_schema = columns.decode_schema();
        let decoder = decoder(decode_schema.clone(), batch_size)
            .map_err(|e| file_error(&path, None, e.to_string()))?;
        Ok(NdjsonBatches {
            path,
            reader: BufReader::with_capacity(1 << 20, file),
            decoder,
            decode_schema,
            output_schema: columns.output_schema(),
            batch_size,
            line: 0,
            offset: 0,
            buf: Vec::new(),
            done: false,
        })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, OperatorError> {
        let first_line = self.line + 1;
        let start_offset = self.offset;
        while self.decoder.len() < self.batch_size {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| OperatorError::io(&self.path, e))?;
            if n == 0 {
                break;
            }
            self.line += 1;
            self.offset += n as u64;
            let line = self.buf.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let here = Some((self.line, self.line));
            let before = self.decoder.len();
            let consumed = self
                .decoder
                .decode(line)
                .map_err(|e| file_error(&self.path, here, e.to_string()))?;
            if self.decoder.has_partial_record() {
                return Err(file_error(
                    &self.path,
                    here,
                    "incomplete JSON value (each record must be one object on one line)",
                ));
            }
            if consumed < line.len() || self.decoder.len() != before + 1 {
                return Err(file_error(
                    &self.path,
                    here,
                    "more than one JSON value on the line",
                ));
            }
        }
        let lines = Some((first_line, self.line.max(first_line)));
        let batch = match self.decoder.flush() {
            Ok(Some(batch)) => batch,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.locate(start_offset, first_line, e)),
        };
        self.to_text(batch)
            .map(Some)
            .map_err(|e| file_error(&self.path, lines, e.to_string()))
    }

    /// A batch failed to convert (a value of the wrong shape, an unknown key): re-decode its
    /// lines one by one from the file to name the first failing line. Costs nothing unless a
    /// batch fails.
    fn locate(
        &self,
        start_offset: u64,
        first_line: u64,
        err: arrow::error::ArrowError,
    ) -> OperatorError {
        let last_line = self.line.max(first_line);
        let find = || -> Option<(u64, String)> {
            let mut file = File::open(&self.path).ok()?;
            file.seek(std::io::SeekFrom::Start(start_offset)).ok()?;
            let mut reader = BufReader::new(file);
            let mut buf = Vec::new();
            for line in first_line..=last_line {
                buf.clear();
                if reader.read_until(b'\n', &mut buf).ok()? == 0 {
                    break;
                }
                let text = buf.trim_ascii();
                if text.is_empty() {
                    continue;
                }
                let mut single = decoder(self.decode_schema.clone(), 1).ok()?;
                if let Err(e) = single.decode(text).and_then(|_| single.flush()) {
                    return Some((line, e.to_string()));
                }
            }
            None
        };
        match find() {
            Some((line, message)) => file_error(&self.path, Some((line, line)), message),
            None => file_error(&self.path, Some((first_line, last_line)), err.to_string()),
        }
    }

    /// Renders nested columns as JSON text; text columns pass through.
    fn to_text(&self, batch: RecordBatch) -> Result<RecordBatch, arrow::error::ArrowError> {
        let options = EncoderOptions::default();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            if field.data_type() == &DataType::Utf8 {
                columns.push(array.clone());
                continue;
            }
            let mut encoder = make_encoder(field, array.as_ref(), &options)?;
            let mut builder = StringBuilder::with_capacity(array.len(), array.len() * 16);
            let mut buf = Vec::new();
            for row in 0..array.len() {
                if array.is_null(row) {
                    builder.append_null();
                    continue;
                }
                buf.clear();
                encoder.encode(row, &mut buf);
                let text = std::str::from_utf8(&buf)
                    .map_err(|e| arrow::error::ArrowError::JsonError(e.to_string()))?;
                builder.append_value(text);
            }
            columns.push(Arc::new(builder.finish()));
        }
        RecordBatch::try_new(self.output_schema.clone(), columns)
    }
}

impl Iterator for NdjsonBatches {
    type Item = Result<RecordBatch, OperatorError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
