//! The DataFusion transform between a source and the sink: derived columns, a filter and the
//! incremental window, planned once and then run batch by batch over the source stream.
//!
//! ```yaml
//! transform:                 # all optional
//!   derive:                  # new or replaced column = SQL expression over the input columns
//!     fecha_proceso: "CAST(creado_el AS DATE)"
//!   filter: "monto_exigible > 0 AND (motivo_rechazo IS NULL OR motivo_rechazo = '')"
//! ```
//!
//! Semantics:
//! - every `derive` expression sees the *input* columns (not other derived columns); a derived
//!   column named like an input column replaces it in place, others are appended in order;
//! - `filter` and the window apply to the *output* columns (after `derive`), so the window is on
//!   the same column values the sink loads and takes its watermark from;
//! - identifiers are case-sensitive as written (DataFusion's lower-casing is turned off), because
//!   source columns such as calendario's are upper-case;
//! - the window predicate is built with DataFusion's expression API from typed literals, never as
//!   SQL text (invariant 9).
//!
//! Memory stays bounded: the input is a one-shot [`PartitionStream`] that DataFusion pulls from as
//! it produces output; nothing is collected. With no derive, no filter and no window the input
//! stream is returned as it is, without DataFusion.

use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::DFSchema;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, cast, ident, lit};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{SendableRecordBatchStream, displayable};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use indexmap::IndexMap;

use crate::error::ExprTarget;
use crate::source::RowLocator;
use crate::window::{Window, arrow_type, natural_type, scalar};
use crate::{BatchStream, OperatorError};
use pulso_types::IncType;

mod bad_row;

use bad_row::{BadRowFinder, RecentInput};

/// The `transform:` block of a table.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// Output column → SQL expression over the input columns.
    #[serde(default)]
    pub derive: IndexMap<String, String>,
    /// SQL boolean expression over the output columns; rows where it is not true are dropped.
    #[serde(default)]
    pub filter: Option<String>,
}

impl TransformSpec {
    /// True when the transform changes nothing.
    pub fn is_empty(&self) -> bool {
        self.derive.is_empty() && self.filter.is_none()
    }
}

/// Execution settings of the transform.
#[derive(Debug, Clone)]
pub struct TransformOptions {
    /// DataFusion's target batch size; set it to the source's batch size so that filtered
    /// batches are re-assembled to the size the sink expects and large ones are not re-cut.
    pub batch_size: usize,
    /// The target's primary-key columns: a row whose value fails a conversion is named by them.
    pub key_columns: Vec<String>,
    /// Where the input's rows come from ([`crate::source::SourceSpec::locator`]), so that such a
    /// row is also named by its file and line.
    pub rows: Option<RowLocator>,
}

impl Default for TransformOptions {
    fn default() -> Self {
        TransformOptions {
            batch_size: 8192,
            key_columns: Vec::new(),
            rows: None,
        }
    }
}

/// Plans once, then streams: input batches go through a DataFusion plan (input and derived
/// columns, filter, window predicate) and come out as a stream. Returns the output schema.
///
/// Uses [`TransformOptions::default`]; see [`apply_with`].
pub async fn apply(
    input_schema: SchemaRef,
    input: BatchStream,
    spec: &TransformSpec,
    window: Option<&Window>,
) -> Result<(SchemaRef, BatchStream), OperatorError> {
    apply_with(
        input_schema,
        input,
        spec,
        window,
        &TransformOptions::default(),
    )
    .await
}

/// [`apply`] with explicit execution settings.
pub async fn apply_with(
    input_schema: SchemaRef,
    input: BatchStream,
    spec: &TransformSpec,
    window: Option<&Window>,
    options: &TransformOptions,
) -> Result<(SchemaRef, BatchStream), OperatorError> {
    if spec.is_empty() && window.is_none() {
        // Nothing to do: no DataFusion, no copies.
        return Ok((input_schema, input));
    }
    let recent = Arc::new(RecentInput::default());
    let partition = Arc::new(OneShotPartition::new(input_schema.clone(), input).recording(&recent));
    let df = plan(&input_schema, partition, spec, window, options).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let stream = df
        .execute_stream()
        .await
        .map_err(OperatorError::from_datafusion)?;
    tracing::debug!(columns = schema.fields().len(), "transform planned");
    // A failing conversion (Arrow's "Parser error: …") says nothing of the row: find it.
    let finder = Arc::new(BadRowFinder {
        input_schema,
        spec: spec.clone(),
        window: window.cloned(),
        options: options.clone(),
        recent,
    });
    let stream = stream.then(move |item| {
        let finder = finder.clone();
        async move {
            match item {
                Ok(batch) => Ok(batch),
                Err(e) => Err(finder.explain(e).await),
            }
        }
    });
    Ok((schema, stream.boxed()))
}

/// The output schema of the transform, from the input schema only (no data).
pub async fn output_schema(
    input_schema: SchemaRef,
    spec: &TransformSpec,
    window: Option<&Window>,
) -> Result<SchemaRef, OperatorError> {
    if spec.is_empty() && window.is_none() {
        return Ok(input_schema);
    }
    let partition = Arc::new(OneShotPartition::empty(input_schema.clone()));
    let df = plan(
        &input_schema,
        partition,
        spec,
        window,
        &TransformOptions::default(),
    )
    .await?;
    Ok(Arc::new(df.schema().as_arrow().clone()))
}

/// The DataFusion logical and physical plan text for `explain`, built from the schema only.
pub async fn explain(
    input_schema: SchemaRef,
    spec: &TransformSpec,
    window: Option<&Window>,
) -> Result<String, OperatorError> {
    if spec.is_empty() && window.is_none() {
        return Ok("pass-through (no derive, filter or window)".to_string());
    }
    let partition = Arc::new(OneShotPartition::empty(input_schema.clone()));
    let df = plan(
        &input_schema,
        partition,
        spec,
        window,
        &TransformOptions::default(),
    )
    .await?;
    let logical = df
        .clone()
        .into_optimized_plan()
        .map_err(OperatorError::from_datafusion)?;
    let physical = df
        .create_physical_plan()
        .await
        .map_err(OperatorError::from_datafusion)?;
    Ok(format!(
        "logical plan:\n{}\nphysical plan:\n{}",
        logical.display_indent(),
        displayable(physical.as_ref()).indent(false)
    ))
}

/// The name of the input inside the transform's DataFusion session.
const INPUT_TABLE: &str = "source";

fn session(options: &TransformOptions) -> SessionContext {
    let mut config = SessionConfig::new()
        // One partition: the input is one ordered stream and repartitioning would only buffer.
        .with_target_partitions(1)
        .with_batch_size(options.batch_size.max(1));
    // Column names are matched as written (calendario's columns are upper-case).
    config.options_mut().sql_parser.enable_ident_normalization = false;
    SessionContext::new_with_config(config)
}

/// Builds the DataFrame (input → derive → filter → window) and checks that it plans.
async fn plan(
    input_schema: &SchemaRef,
    partition: Arc<OneShotPartition>,
    spec: &TransformSpec,
    window: Option<&Window>,
    options: &TransformOptions,
) -> Result<DataFrame, OperatorError> {
    let ctx = session(options);
    let table = StreamingTable::try_new(input_schema.clone(), vec![partition])
        .map_err(OperatorError::from_datafusion)?;
    // Named so that DataFusion's messages read "source.monto" rather than "?table?.monto".
    ctx.register_table(INPUT_TABLE, Arc::new(table))
        .map_err(OperatorError::from_datafusion)?;
    let input = ctx
        .table(INPUT_TABLE)
        .await
        .map_err(OperatorError::from_datafusion)?;

    let mut df = input.clone();
    if !spec.derive.is_empty() {
        let mut derived: IndexMap<&str, Expr> = IndexMap::new();
        for (name, sql) in &spec.derive {
            let expr = input
                .parse_sql_expr(sql)
                .map_err(|e| expr_error(ExprTarget::Derive(name.clone()), e))?;
            derived.insert(name.as_str(), expr.alias(name));
        }
        let mut select = Vec::with_capacity(input_schema.fields().len() + derived.len());
        for field in input_schema.fields() {
            match derived.shift_remove(field.name().as_str()) {
                Some(expr) => select.push(expr),
                None => select.push(ident(field.name())),
            }
        }
        select.extend(derived.into_values());
        df = df.select(select).map_err(|e| {
            blame_derive(&input, spec).unwrap_or_else(|| OperatorError::from_datafusion(e))
        })?;
    }
    if let Some(sql) = &spec.filter {
        let predicate = df
            .parse_sql_expr(sql)
            .map_err(|e| expr_error(ExprTarget::Filter, e))?;
        df = df
            .filter(predicate)
            .map_err(|e| expr_error(ExprTarget::Filter, e))?;
    }
    if let Some(window) = window
        && let Some(predicate) = window_predicate(window, df.schema())?
    {
        df = df.filter(predicate).map_err(|e| OperatorError::Window {
            column: window.column.clone(),
            message: e.to_string(),
        })?;
    }

    // Type errors (e.g. `'a' - 1`) only surface when DataFusion analyses the plan: find the
    // expression at fault so that the message names it.
    if let Err(e) = df.clone().create_physical_plan().await {
        if let Some(blamed) = blame_derive(&input, spec) {
            return Err(blamed);
        }
        if let (Some(sql), Some(derived)) = (&spec.filter, derive_only(&input, spec)) {
            let alone = derived.parse_sql_expr(sql).and_then(|p| derived.filter(p));
            if let Err(e) = plans(alone).await {
                return Err(expr_error(ExprTarget::Filter, e));
            }
        }
        return Err(OperatorError::from_datafusion(e));
    }
    Ok(df)
}

/// Plans one DataFrame to a physical plan, returning the error if it does not plan.
async fn plans(df: Result<DataFrame, DataFusionError>) -> Result<(), DataFusionError> {
    df?.create_physical_plan().await.map(|_| ())
}

/// The input with the derived columns, or None if some derived column does not plan.
fn derive_only(input: &DataFrame, spec: &TransformSpec) -> Option<DataFrame> {
    if spec.derive.is_empty() {
        return Some(input.clone());
    }
    let mut exprs: Vec<Expr> = input
        .schema()
        .fields()
        .iter()
        .filter(|f| !spec.derive.contains_key(f.name()))
        .map(|f| ident(f.name()))
        .collect();
    for (name, sql) in &spec.derive {
        exprs.push(input.parse_sql_expr(sql).ok()?.alias(name));
    }
    input.clone().select(exprs).ok()
}

/// Finds the first derived column whose expression does not plan on its own.
fn blame_derive(input: &DataFrame, spec: &TransformSpec) -> Option<OperatorError> {
    for (name, sql) in &spec.derive {
        let attempt = input
            .parse_sql_expr(sql)
            .and_then(|expr| input.clone().select(vec![expr.alias(name)]))
            .and_then(|df| {
                // Analysing (type coercion) is what rejects mistyped expressions.
                df.into_optimized_plan()
            });
        if let Err(e) = attempt {
            return Some(expr_error(ExprTarget::Derive(name.clone()), e));
        }
    }
    None
}

fn expr_error(target: ExprTarget, e: DataFusionError) -> OperatorError {
    OperatorError::Expression {
        target,
        message: e.strip_backtrace(),
    }
}

/// `column IS NULL OR (lower <= column AND column < upper)`, comparing in the window's type.
///
/// The column is cast to the window's Arrow type when that is unambiguous: text is parsed,
/// dates widen to midnight, zone-less timestamps narrow to their date, any zoned timestamp is the
/// same instant in UTC. A wall-clock column against an instant window (or the reverse) needs a
/// time zone and is rejected rather than guessed (weaknesses W-09, W-36).
pub fn window_predicate(window: &Window, schema: &DFSchema) -> Result<Option<Expr>, OperatorError> {
    window.validate()?;
    let fail = |message: String| OperatorError::Window {
        column: window.column.clone(),
        message,
    };
    let field = schema
        .field_with_unqualified_name(&window.column)
        .map_err(|_| fail("no such column in the transform's output".to_string()))?;
    let target = arrow_type(window.ty);
    let column = ident(&window.column);
    let operand = match (field.data_type(), window.ty) {
        (actual, _) if actual == &target => column,
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, _)
        | (DataType::Date32 | DataType::Date64, IncType::Date | IncType::Datetime)
        | (DataType::Timestamp(_, None), IncType::Date | IncType::Datetime)
        | (DataType::Timestamp(_, Some(_)), IncType::Timestamp) => cast(column, target),
        (actual, ty) => {
            let hint = match natural_type(actual) {
                Some(natural) => format!("declare the window type as {natural} or "),
                None => String::new(),
            };
            return Err(fail(format!(
                "a {actual} column cannot be compared with a {ty} window without assuming a time \
                 zone; {hint}convert the column in transform.derive (e.g. with AT TIME ZONE)"
            )));
        }
    };
    let lower = window
        .lower
        .as_ref()
        .map(|v| operand.clone().gt_eq(lit(scalar(v))));
    let upper = window
        .upper
        .as_ref()
        .map(|v| operand.clone().lt(lit(scalar(v))));
    let bounds = match (lower, upper) {
        (Some(l), Some(u)) => Some(l.and(u)),
        (l, u) => l.or(u),
    };
    // A NULL value has not been seen by any window: every window includes it (the sink counts
    // such rows and applies `incremental.nulls`).
    Ok(bounds.map(|b| operand.is_null().or(b)))
}

/// A [`PartitionStream`] that hands DataFusion the source stream once.
///
/// DataFusion pulls batches from it as the plan produces output, which keeps the transform
/// bounded; a second `execute` (never done by a single-partition plan) gets an error.
struct OneShotPartition {
    schema: SchemaRef,
    input: Mutex<Option<BatchStream>>,
    /// Keeps the last input batches, to find a failing row in them.
    recent: Option<Arc<RecentInput>>,
}

impl OneShotPartition {
    fn new(schema: SchemaRef, input: BatchStream) -> Self {
        OneShotPartition {
            schema,
            input: Mutex::new(Some(input)),
            recent: None,
        }
    }

    fn recording(mut self, recent: &Arc<RecentInput>) -> Self {
        self.recent = Some(recent.clone());
        self
    }

    /// A partition with no rows, for planning and `explain`.
    fn empty(schema: SchemaRef) -> Self {
        OneShotPartition::new(schema, futures::stream::empty().boxed())
    }
}

impl std::fmt::Debug for OneShotPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneShotPartition").finish_non_exhaustive()
    }
}

impl PartitionStream for OneShotPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let taken = self.input.lock().ok().and_then(|mut slot| slot.take());
        let stream: futures::stream::BoxStream<'static, Result<RecordBatch, DataFusionError>> =
            match taken {
                Some(input) => {
                    let expected = schema.clone();
                    let recent = self.recent.clone();
                    input
                        .map(move |item| match item {
                            Ok(batch) => {
                                if let Some(recent) = &recent {
                                    recent.push(&batch);
                                }
                                conform(batch, &expected)
                            }
                            // Carried through DataFusion and unwrapped again on the way out.
                            Err(e) => Err(DataFusionError::External(Box::new(e))),
                        })
                        .boxed()
                }
                None => futures::stream::once(async {
                    Err(DataFusionError::Internal(
                        "transform input stream was already consumed".to_string(),
                    ))
                })
                .boxed(),
            };
        Box::pin(RecordBatchStreamAdapter::new(schema, stream))
    }
}

/// Gives a batch the declared input schema (sources may differ in field metadata or
/// nullability); a real mismatch is an error rather than a wrong result.
fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, DataFusionError> {
    if batch.schema_ref() == schema {
        return Ok(batch);
    }
    let columns = batch.columns().to_vec();
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| {
        DataFusionError::External(Box::new(OperatorError::spec(
            "transform input",
            format!("a batch does not match the declared source schema: {e}"),
        )))
    })
}
