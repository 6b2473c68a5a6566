//! Pipeline file → validated [`Pipeline`].
//!
//! Every problem is collected (not only the first) and located at `file:line:col` with a hint.

mod files;
mod gates;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use pulso_operators::source::{BigQueryConnection, BigQueryConnections, SourceSpec};
use pulso_sinks::nulls::NullPolicy;
use pulso_sinks::pgtype::{PgColumn, PgType};
use pulso_sinks::sql::{LoadShape, TableName};
use pulso_sinks::state::RunMode;
use pulso_types::{IncType, IncValue};
use serde_saphyr::Spanned;

use crate::dag::Dag;
use crate::duration::parse_duration;
use crate::error::{EngineError, SpecError, SpecErrors};
use crate::interpolate::interpolate;
use crate::pipeline::{BuildNode, Incremental, Node, NodeKind, Pipeline, TableNode};
use crate::spec::{BuildSpec, ConnectionSpec, ModeSpec, PipelineSpec, TableSpec};

pub const DEFAULT_BATCH_SIZE: usize = 16_384;
pub const DEFAULT_TIME_ZONE: chrono_tz::Tz = chrono_tz::America::Lima;

/// Read, interpolate from the process environment, parse and validate a pipeline file.
pub fn load_pipeline(path: &Path) -> Result<Pipeline, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let env = |name: &str| std::env::var(name).ok();
    Ok(compile_text(
        &path.display().to_string(),
        &base_dir,
        &text,
        &env,
    )?)
}

/// Compile a pipeline from its text; `file` names it in messages.
pub fn compile_text(
    file: &str,
    base_dir: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Pipeline, SpecErrors> {
    let text = interpolate(file, text, env).map_err(SpecErrors)?;
    let spec: PipelineSpec = serde_saphyr::from_str(&text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = yaml_message(&e);
        // The classic flow-mapping trap: `{ m: numeric(15,2) }` splits at the comma.
        let hint = if message.contains("null") {
            "inside { … } a comma separates entries: quote values that contain one, e.g. \"numeric(15,2)\""
        } else {
            "see docs/pipeline.md for the keys each section accepts"
        };
        SpecErrors(vec![SpecError::new(file, line, column, message).with_hint(hint)])
    })?;
    Compiler {
        file,
        base_dir,
        source_paths: files::source_path_spans(&text),
        errors: Vec::new(),
    }
    .compile(spec)
}

/// serde-saphyr's message without its rendered source snippet (we print file:line:col ourselves).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let full = e.without_snippet().to_string();
    let first = full.lines().next().unwrap_or("invalid YAML").trim();
    // Drop a trailing " at line X, column Y" that duplicates our location prefix.
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

struct Compiler<'a> {
    file: &'a str,
    base_dir: &'a Path,
    /// Where each table's `source.path` is written (see `files`).
    source_paths: Vec<Option<Spanned<String>>>,
    errors: Vec<SpecError>,
}

fn loc<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

impl Compiler<'_> {
    fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>, hint: Option<String>) {
        let (line, column) = loc(at);
        let mut e = SpecError::new(self.file, line, column, message);
        e.hint = hint;
        self.errors.push(e);
    }

    fn compile(mut self, spec: PipelineSpec) -> Result<Pipeline, SpecErrors> {
        let time_zone = match &spec.defaults.time_zone {
            None => DEFAULT_TIME_ZONE,
            Some(tz) => tz.value.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
                self.error(
                    tz,
                    format!("unknown time zone {:?}", tz.value),
                    Some("use an IANA name such as America/Lima or UTC".into()),
                );
                DEFAULT_TIME_ZONE
            }),
        };
        let target_url = self.target_url(&spec);
        let bigquery = self.bigquery_connections(&spec);
        let default_lookback = spec.defaults.lookback.as_ref().and_then(|l| {
            parse_duration(&l.value)
                .map_err(|m| self.error(l, m, None))
                .ok()
        });

        let mut nodes = Vec::new();
        let mut deps_spanned: Vec<Vec<Spanned<String>>> = Vec::new();
        let mut name_spans: Vec<Spanned<String>> = Vec::new();
        for (i, t) in spec.tables.into_iter().enumerate() {
            let path_at = self.source_paths.get_mut(i).and_then(Option::take);
            self.check_source_file(&t, path_at.as_ref());
            let deps = t.depends_on.clone();
            let name = t.name.clone();
            if let Some(node) = self.table(t, &spec.defaults, default_lookback, &spec.connections) {
                nodes.push(node);
                deps_spanned.push(deps);
                name_spans.push(name);
            }
        }
        for b in spec.builds {
            let deps = b.depends_on.clone();
            let name = b.name.clone();
            if let Some(node) = self.build(b, spec.defaults.schema.as_deref().unwrap_or("public")) {
                nodes.push(node);
                deps_spanned.push(deps);
                name_spans.push(name);
            }
        }

        // Names are unique across tables and builds.
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, n) in name_spans.iter().enumerate() {
            if let Some(&first) = index.get(&n.value) {
                let (l, c) = loc(&name_spans[first]);
                self.error(
                    n,
                    format!("duplicate node name {:?}", n.value),
                    Some(format!("first defined at {}:{l}:{c}; names must be unique across tables and builds", self.file)),
                );
            } else {
                index.insert(n.value.clone(), i);
            }
        }
        // Dependencies exist.
        let mut deps: Vec<Vec<usize>> = Vec::with_capacity(nodes.len());
        for ds in &deps_spanned {
            let mut resolved = Vec::new();
            for d in ds {
                match index.get(&d.value) {
                    Some(&i) => resolved.push(i),
                    None => {
                        let known: Vec<&str> =
                            name_spans.iter().map(|n| n.value.as_str()).collect();
                        self.error(
                            d,
                            format!("unknown dependency {:?}", d.value),
                            Some(format!(
                                "depends_on names a table or build of this file: {}",
                                known.join(", ")
                            )),
                        );
                    }
                }
            }
            deps.push(resolved);
        }
        if !self.errors.is_empty() {
            return Err(SpecErrors(self.errors));
        }
        let dag = match Dag::new(&deps) {
            Ok(d) => d,
            Err(cycle) => {
                let path: Vec<&str> = cycle.0.iter().map(|&i| nodes[i].name.as_str()).collect();
                // Point at the depends_on entry that closes the cycle.
                let from = cycle.0[cycle.0.len() - 2];
                let to_name = &nodes[cycle.0[cycle.0.len() - 1]].name;
                let at = deps_spanned[from]
                    .iter()
                    .find(|d| &d.value == to_name)
                    .unwrap_or(&name_spans[from]);
                self.error(
                    at,
                    format!("dependency cycle: {}", path.join(" -> ")),
                    Some("remove one of these depends_on entries".into()),
                );
                return Err(SpecErrors(self.errors));
            }
        };
        let name = spec.name.unwrap_or_else(|| {
            Path::new(self.file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipeline".into())
        });
        Ok(Pipeline {
            name,
            file: self.file.to_string(),
            base_dir: self.base_dir.to_path_buf(),
            target_url,
            time_zone,
            bigquery,
            nodes,
            dag,
        })
    }

    /// The `kind: bigquery` connections, checked offline (a project is required).
    fn bigquery_connections(&mut self, spec: &PipelineSpec) -> BigQueryConnections {
        let mut map: IndexMap<String, BigQueryConnection> = IndexMap::new();
        for (name, c) in &spec.connections {
            if let ConnectionSpec::Bigquery(bq) = &c.value {
                if bq.project.trim().is_empty() {
                    self.error(
                        c,
                        format!("connection {name}: `project` is empty"),
                        Some("set the GCP project that holds the data, e.g. project: \"${BQ_PROJECT}\"".into()),
                    );
                }
                map.insert(name.clone(), (**bq).clone());
            }
        }
        BigQueryConnections::new(map)
    }

    /// Offline checks of a BigQuery source: its spec, its connection, and that the window
    /// column it pushes down is the source's own column (not one derived by `transform`).
    fn check_bigquery_source(
        &mut self,
        t: &TableSpec,
        connections: &IndexMap<String, Spanned<ConnectionSpec>>,
    ) {
        let SourceSpec::Bigquery(bq) = &t.source.value else {
            return;
        };
        let name = &t.name.value;
        if let Err(e) = t.source.value.validate() {
            self.error(
                &t.source,
                format!("table {name}: {e}"),
                Some("see \"BigQuery\" in docs/pipeline.md".into()),
            );
        }
        match connections.get(&bq.connection).map(|c| &c.value) {
            Some(ConnectionSpec::Bigquery(conn)) => {
                if bq.query.is_some()
                    && bq.read_api(Some(conn))
                        == pulso_operators::source::bigquery::ReadApi::Storage
                {
                    self.error(
                        &t.source,
                        format!(
                            "table {name}: connection {:?} reads with read_api: storage, which reads plain tables, but this source has a query",
                            bq.connection
                        ),
                        Some("add `read_api: rest` to this source, or use `table:` and `columns:`".into()),
                    );
                }
            }
            Some(_) => self.error(
                &t.source,
                format!(
                    "table {name}: connection {:?} is not a bigquery connection",
                    bq.connection
                ),
                None,
            ),
            None => {
                let known: Vec<&String> = connections.keys().collect();
                self.error(
                    &t.source,
                    format!("table {name}: unknown connection {:?}", bq.connection),
                    Some(format!(
                        "defined connections: {known:?}; add one with `kind: bigquery`"
                    )),
                );
            }
        }
        if let (Some(inc), Some(tr)) = (&t.incremental, &t.transform)
            && tr.derive.contains_key(&inc.value.column.value)
        {
            self.error(
                &inc.value.column,
                format!(
                    "table {name}: the incremental column {:?} is derived by `transform`, but a bigquery source filters its own column {:?} at the source",
                    inc.value.column.value, inc.value.column.value
                ),
                Some("compute the column in the BigQuery query instead".into()),
            );
        }
    }

    fn target_url(&mut self, spec: &PipelineSpec) -> Option<String> {
        let target = spec.defaults.target.as_ref()?;
        match spec.connections.get(&target.value) {
            Some(c) => {
                match &c.value {
                    ConnectionSpec::Postgres { url } => Some(url.clone()),
                    ConnectionSpec::Bigquery(_) => {
                        self.error(
                        target,
                        format!("connection {:?} is a bigquery connection; the target must be postgres", target.value),
                        None,
                    );
                        None
                    }
                }
            }
            None => {
                let known: Vec<&String> = spec.connections.keys().collect();
                self.error(
                    target,
                    format!("unknown connection {:?}", target.value),
                    Some(format!("defined connections: {known:?}")),
                );
                None
            }
        }
    }

    fn table(
        &mut self,
        t: TableSpec,
        defaults: &crate::spec::DefaultsSpec,
        default_lookback: Option<chrono::Duration>,
        connections: &IndexMap<String, Spanned<ConnectionSpec>>,
    ) -> Option<Node> {
        let errors_before = self.errors.len();
        let name = t.name.value.clone();
        let line = t.name.referenced.line();
        self.check_bigquery_source(&t, connections);

        // Columns and their types.
        let mut columns = Vec::new();
        for (col, ty) in &t.columns.value {
            match PgType::parse(&ty.value) {
                Ok(parsed) => columns.push(PgColumn {
                    name: col.clone(),
                    ty: parsed,
                    nullable: true,
                }),
                Err(e) => self.error(
                    ty,
                    format!("table {name}, column {col}: {e}"),
                    Some("types are PostgreSQL's: text, varchar(n), smallint, integer, bigint, real, double precision, numeric(p,s), boolean, date, time, timestamp, timestamptz, json, jsonb, bytea, uuid".into()),
                ),
            }
        }
        if t.columns.value.is_empty() {
            self.error(
                &t.columns,
                format!("table {name} declares no columns"),
                None,
            );
        }

        // Primary key.
        let mut primary_key = Vec::new();
        match &t.primary_key {
            None => self.error(
                &t.name,
                format!("table {name} has no primary_key"),
                Some("add `primary_key: [col, …]`: loads are upserts by key, so every table needs one".into()),
            ),
            Some(pk) if pk.value.is_empty() => self.error(
                pk,
                format!("table {name} has an empty primary_key"),
                Some("list the key columns, e.g. primary_key: [id]".into()),
            ),
            Some(pk) => {
                for k in &pk.value {
                    if !t.columns.value.contains_key(&k.value) {
                        self.error(
                            k,
                            format!("table {name}: primary-key column {:?} is not among its columns", k.value),
                            Some("declare it under `columns:`".into()),
                        );
                    }
                    primary_key.push(k.value.clone());
                }
                for c in &mut columns {
                    if primary_key.contains(&c.name) {
                        c.nullable = false;
                    }
                }
            }
        }

        // Incremental column.
        let incremental = t.incremental.as_ref().and_then(|inc| {
            let i = &inc.value;
            let ty = match IncType::from_name(&i.ty.value) {
                Some(ty) => Some(ty),
                None => {
                    let other = &i.ty.value;
                    self.error(
                        &i.ty,
                        format!("table {name}: unknown incremental type {other:?}"),
                        Some("use date, datetime (zone-less) or timestamp (an instant)".into()),
                    );
                    None
                }
            };
            match t.columns.value.get(&i.column.value) {
                None => self.error(
                    &i.column,
                    format!("table {name}: incremental column {:?} is not among its columns", i.column.value),
                    None,
                ),
                Some(col_ty) => {
                    let expected = match ty {
                        Some(IncType::Date) => Some(PgType::Date),
                        Some(IncType::Datetime) => Some(PgType::Timestamp),
                        Some(IncType::Timestamp) => Some(PgType::Timestamptz),
                        None => None,
                    };
                    if let (Some(expected), Ok(actual)) = (expected, PgType::parse(&col_ty.value))
                        && expected != actual
                    {
                        self.error(
                            &i.ty,
                            format!(
                                "table {name}: incremental type {} needs column {} to be {}, not {}",
                                i.ty.value,
                                i.column.value,
                                expected.sql(),
                                actual.sql()
                            ),
                            None,
                        );
                    }
                }
            }
            let lookback = match &i.lookback {
                Some(l) => parse_duration(&l.value).map_err(|m| self.error(l, m, None)).ok(),
                None => Some(default_lookback.unwrap_or_else(chrono::Duration::zero)),
            };
            let initial = match (&i.initial, ty) {
                (Some(init), Some(ty)) => match IncValue::parse(ty, &init.value) {
                    Ok(v) => Some(Some(v)),
                    Err(e) => {
                        self.error(init, format!("table {name}: bad initial value: {e}"), None);
                        None
                    }
                },
                _ => Some(None),
            };
            let nulls = match &i.nulls {
                None => Some(NullPolicy::default()),
                Some(n) => match NullPolicy::from_name(&n.value) {
                    Some(p) => Some(p),
                    None => {
                        self.error(
                            n,
                            format!("table {name}: unknown incremental.nulls {:?}", n.value),
                            Some("use load (the default), warn or fail".into()),
                        );
                        None
                    }
                },
            };
            Some(Incremental {
                column: i.column.value.clone(),
                ty: ty?,
                lookback: lookback?,
                initial: initial?,
                nulls: nulls?,
            })
        });

        if let Some(cd) = &t.change_date {
            match t
                .columns
                .value
                .get(&cd.value)
                .map(|ty| PgType::parse(&ty.value))
            {
                Some(Ok(PgType::Date)) => {}
                Some(Ok(other)) => self.error(
                    cd,
                    format!(
                        "table {name}: change_date column {} is {}, not date",
                        cd.value,
                        other.sql()
                    ),
                    Some("derive a date column (e.g. in transform.derive) and name it here".into()),
                ),
                Some(Err(_)) => {} // already reported with the column
                None => self.error(
                    cd,
                    format!(
                        "table {name}: change_date column {:?} is not among its columns",
                        cd.value
                    ),
                    None,
                ),
            }
        }
        let target = match &t.target {
            Some(s) => match s.value.split_once('.') {
                Some((schema, table)) if !schema.is_empty() && !table.is_empty() => {
                    TableName::new(schema, table)
                }
                Some(_) => {
                    self.error(
                        s,
                        format!("table {name}: bad target {:?}", s.value),
                        Some("write schema.table or table".into()),
                    );
                    TableName::new("public", &name)
                }
                None => TableName::new(defaults.schema.as_deref().unwrap_or("public"), &s.value),
            },
            None => TableName::new(defaults.schema.as_deref().unwrap_or("public"), &name),
        };
        let mode = match t.mode.as_ref().map(|m| m.value) {
            Some(ModeSpec::FullRefresh) => RunMode::FullRefresh,
            _ => RunMode::Incremental,
        };
        let batch_size = t
            .batch_size
            .or(defaults.batch_size)
            .unwrap_or(DEFAULT_BATCH_SIZE);
        if batch_size == 0 {
            self.error(
                &t.name,
                format!("table {name}: batch_size must be positive"),
                None,
            );
        }
        let checks = self.checks(
            &name,
            t.checks,
            Some((
                &target,
                &primary_key,
                t.change_date.as_ref().map(|c| c.value.as_str()),
            )),
            Some(&t.columns.value),
            defaults.schema.as_deref().unwrap_or("public"),
        );
        let reconcile = t
            .reconcile
            .as_ref()
            .and_then(|r| self.reconcile(&name, r, &t.columns.value));
        if self.errors.len() > errors_before {
            return None;
        }
        let inc_column = incremental.as_ref().map(|i| i.column.clone());
        Some(Node {
            name: name.clone(),
            depends_on: t.depends_on.iter().map(|d| d.value.clone()).collect(),
            line,
            kind: NodeKind::Table(Box::new(TableNode {
                source: t.source.value,
                transform: t.transform.unwrap_or_default(),
                shape: LoadShape {
                    target,
                    columns,
                    primary_key,
                    incremental: inc_column,
                    change_day: t.change_date.as_ref().map(|c| c.value.clone()),
                    null_incremental: incremental
                        .as_ref()
                        .map_or_else(Default::default, |i| i.nulls),
                    lookback: incremental.as_ref().map(|i| i.lookback),
                    keep_newer: false,
                },
                incremental,
                mode,
                batch_size,
                create_target: t.create_target.or(defaults.create_target).unwrap_or(true),
                checks,
                reconcile,
            })),
        })
    }

    fn build(&mut self, b: BuildSpec, default_schema: &str) -> Option<Node> {
        let name = b.name.value.clone();
        let errors_before = self.errors.len();
        let checks = self.checks(&name, b.checks, None, None, default_schema);
        if self.errors.len() > errors_before {
            return None;
        }
        let (sql, origin) = match (&b.sql, &b.file) {
            (Some(sql), None) => (sql.clone(), "inline".to_string()),
            (None, Some(file)) => {
                let path = files::resolve(self.base_dir, Path::new(&file.value));
                match std::fs::read_to_string(&path) {
                    Ok(sql) => (sql, file.value.clone()),
                    Err(e) => {
                        self.error(
                            file,
                            format!("build {name}: cannot read {}: {e}", path.display()),
                            Some(files::hint(self.base_dir)),
                        );
                        return None;
                    }
                }
            }
            _ => {
                self.error(
                    &b.name,
                    format!("build {name} needs exactly one of `sql:` or `file:`"),
                    None,
                );
                return None;
            }
        };
        Some(Node {
            name,
            depends_on: b.depends_on.iter().map(|d| d.value.clone()).collect(),
            line: b.name.referenced.line(),
            kind: NodeKind::Build(BuildNode {
                sql,
                origin,
                checks,
            }),
        })
    }
}
