//! `checks:` and `reconcile:` of tables and builds → [`Check`] and [`ReconcileSpec`].

use indexmap::IndexMap;
use pulso_sinks::checks::{Check, CheckKind, Severity};
use pulso_sinks::pgtype::PgType;
use pulso_sinks::reconcile::{OnMismatch, ReconcileSpec};
use pulso_sinks::sql::TableName;
use serde_saphyr::Spanned;

use super::Compiler;
use crate::spec::{CheckSpec, OnMismatchSpec, ReconcileYaml, SeveritySpec};

/// The declared columns of a table node (name → type), to check column names against.
pub(super) type Declared<'a> = Option<&'a IndexMap<String, Spanned<String>>>;

impl Compiler<'_> {
    /// Compile the checks of node `node`. `table` is the node's target (tables) or `None`
    /// (builds: each check names its table); `columns` are the declared columns of a table.
    pub(super) fn checks(
        &mut self,
        node: &str,
        specs: Vec<Spanned<CheckSpec>>,
        table: Option<(&TableName, &[String], Option<&str>)>,
        columns: Declared<'_>,
        default_schema: &str,
    ) -> Vec<Check> {
        let mut out: Vec<Check> = Vec::new();
        for spanned in specs {
            let c = &spanned.value;
            let mut kinds = Vec::new();
            let mut refs: Vec<&Spanned<String>> = Vec::new();
            if let Some(cols) = &c.not_null {
                refs.extend(cols.iter());
                kinds.push(CheckKind::NotNull {
                    columns: cols.iter().map(|s| s.value.clone()).collect(),
                });
            }
            if let Some(cols) = &c.unique {
                refs.extend(cols.iter());
                kinds.push(CheckKind::Unique {
                    columns: cols.iter().map(|s| s.value.clone()).collect(),
                });
            }
            if let Some(a) = &c.accepted_values {
                refs.push(&a.column);
                kinds.push(CheckKind::AcceptedValues {
                    column: a.column.value.clone(),
                    values: a.values.iter().map(|v| v.text()).collect(),
                });
            }
            if let Some(r) = &c.range {
                refs.push(&r.column);
                for bound in [&r.min, &r.max].into_iter().flatten() {
                    if bound.text().parse::<f64>().is_err() {
                        self.error(
                            &r.column,
                            format!(
                                "{node}: check range bound {:?} is not a number",
                                bound.text()
                            ),
                            None,
                        );
                    }
                }
                if r.min.is_none() && r.max.is_none() {
                    self.error(
                        &r.column,
                        format!("{node}: check range needs min or max"),
                        None,
                    );
                }
                kinds.push(CheckKind::Range {
                    column: r.column.value.clone(),
                    min: r.min.as_ref().map(|v| v.text()),
                    max: r.max.as_ref().map(|v| v.text()),
                });
            }
            if let Some(r) = &c.row_count {
                refs.push(&r.by);
                refs.extend(r.count.iter());
                if r.min_ratio.is_none() && r.max_ratio.is_none() {
                    self.error(
                        &r.by,
                        format!("{node}: check row_count needs min_ratio or max_ratio"),
                        Some("e.g. row_count: { by: fecha_proceso, min_ratio: 0.8 }".into()),
                    );
                }
                kinds.push(CheckKind::RowCount {
                    by: r.by.value.clone(),
                    count: r.count.as_ref().map(|s| s.value.clone()),
                    min_ratio: r.min_ratio,
                    max_ratio: r.max_ratio,
                });
            }
            if let Some(sql) = &c.sql {
                kinds.push(CheckKind::Sql { sql: sql.clone() });
            }
            let kind = match kinds.len() {
                1 => kinds.remove(0),
                n => {
                    self.error(
                        &spanned,
                        format!("{node}: a check needs exactly one of not_null, unique, accepted_values, range, row_count, sql ({n} given)"),
                        None,
                    );
                    continue;
                }
            };
            // Row checks of a table with a change date read the days its load wrote.
            let scope_day = match (&c.table, table, &kind) {
                (None, Some((_, _, Some(day))), CheckKind::NotNull { .. })
                | (None, Some((_, _, Some(day))), CheckKind::Unique { .. })
                | (None, Some((_, _, Some(day))), CheckKind::AcceptedValues { .. })
                | (None, Some((_, _, Some(day))), CheckKind::Range { .. }) => Some(day.to_string()),
                _ => None,
            };
            let (target, key) = match (&c.table, table) {
                (Some(t), _) => match t.value.split_once('.') {
                    Some((s, n)) if !s.is_empty() && !n.is_empty() => (
                        Some(TableName::new(s, n)),
                        c.key.clone().unwrap_or_default(),
                    ),
                    Some(_) => {
                        self.error(t, format!("{node}: bad check table {:?}", t.value), None);
                        continue;
                    }
                    None => (
                        Some(TableName::new(default_schema, &t.value)),
                        c.key.clone().unwrap_or_default(),
                    ),
                },
                (None, Some((target, pk, _))) => (
                    Some(target.clone()),
                    c.key.clone().unwrap_or_else(|| pk.to_vec()),
                ),
                (None, None) => {
                    if !matches!(kind, CheckKind::Sql { .. }) {
                        self.error(
                            &spanned,
                            format!("{node}: a build's {} check needs `table:`", kind.as_str()),
                            Some(
                                "name the table the build writes, e.g. table: mart.dashboard"
                                    .into(),
                            ),
                        );
                        continue;
                    }
                    (None, c.key.clone().unwrap_or_default())
                }
            };
            // Columns of the node's own target must be declared.
            if let (Some(cols), None) = (columns, &c.table) {
                for r in refs {
                    if !cols.contains_key(&r.value) {
                        self.error(
                            r,
                            format!(
                                "{node}: check column {:?} is not among its columns",
                                r.value
                            ),
                            None,
                        );
                    }
                }
            }
            let name = c.name.clone().unwrap_or_else(|| default_name(&kind));
            if out.iter().any(|o| o.name == name) {
                self.error(
                    &spanned,
                    format!("{node}: two checks are named {name:?}"),
                    Some("give each check its own `name:`".into()),
                );
                continue;
            }
            out.push(Check {
                name,
                kind,
                severity: match c.severity {
                    Some(SeveritySpec::Warn) => Severity::Warn,
                    _ => Severity::Error,
                },
                table: target,
                key,
                scope_day,
            });
        }
        out
    }

    /// Compile a table's `reconcile:`: `by` a declared date column, `sum` declared numeric columns.
    pub(super) fn reconcile(
        &mut self,
        node: &str,
        spec: &Spanned<ReconcileYaml>,
        columns: &IndexMap<String, Spanned<String>>,
    ) -> Option<ReconcileSpec> {
        let r = &spec.value;
        let before = self.errors.len();
        match columns.get(&r.by.value).map(|t| PgType::parse(&t.value)) {
            Some(Ok(PgType::Date)) | Some(Err(_)) => {}
            Some(Ok(other)) => self.error(
                &r.by,
                format!(
                    "{node}: reconcile by column {} is {}, not date",
                    r.by.value,
                    other.sql()
                ),
                Some("reconcile per day of a date column (derive one in transform.derive)".into()),
            ),
            None => self.error(
                &r.by,
                format!(
                    "{node}: reconcile by column {:?} is not among its columns",
                    r.by.value
                ),
                None,
            ),
        }
        for s in &r.sum {
            match columns.get(&s.value).map(|t| PgType::parse(&t.value)) {
                Some(Ok(
                    PgType::Int2
                    | PgType::Int4
                    | PgType::Int8
                    | PgType::Float4
                    | PgType::Float8
                    | PgType::Numeric { .. },
                ))
                | Some(Err(_)) => {}
                Some(Ok(other)) => self.error(
                    s,
                    format!(
                        "{node}: reconcile sum column {} is {}, not a number",
                        s.value,
                        other.sql()
                    ),
                    None,
                ),
                None => self.error(
                    s,
                    format!(
                        "{node}: reconcile sum column {:?} is not among its columns",
                        s.value
                    ),
                    None,
                ),
            }
        }
        if self.errors.len() > before {
            return None;
        }
        Some(ReconcileSpec {
            by: r.by.value.clone(),
            sum: r.sum.iter().map(|s| s.value.clone()).collect(),
            on_mismatch: match r.on_mismatch {
                Some(OnMismatchSpec::Warn) => OnMismatch::Warn,
                _ => OnMismatch::Fail,
            },
        })
    }
}

fn default_name(kind: &CheckKind) -> String {
    match kind {
        CheckKind::NotNull { columns } | CheckKind::Unique { columns } => {
            format!("{}_{}", kind.as_str(), columns.join("_"))
        }
        CheckKind::AcceptedValues { column, .. } | CheckKind::Range { column, .. } => {
            format!("{}_{column}", kind.as_str())
        }
        CheckKind::RowCount { by, .. } => format!("row_count_{by}"),
        CheckKind::Sql { .. } => "sql".into(),
    }
}
