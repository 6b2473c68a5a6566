//! The `generate` source: determinism, batching, revision semantics and every generator.

use pulso_testkit as common;

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use common::{column, ctx, read_all, rows, total_rows, yaml_source};
use pulso_operators::source::{SourceSpec, changed_rows};

/// A trandeuda-like table: two-part key, money, dates, an incremental column and a mostly-null
/// rejection reason.
fn trandeuda(rows: u64, revision: u64, change_share: f64, grow: u64) -> SourceSpec {
    yaml_source(&format!(
        r#"
kind: generate
rows: {rows}
seed: 42
revision: {revision}
change_share: {change_share}
grow: {grow}
columns:
  cod_cuenta:    {{ from_id: "{{}}", offset: 5000000000, div: 2 }}
  nro_documento: {{ from_id: "F{{}}", offset: 100000000000 }}
  archivo:       {{ choice: ["TRAN_DEUDA_0106", "TRAN_DEUDA_0206", "TRAN_DEUDA_0306"] }}
  fecha_vencimiento: {{ date: ["2024-01-01", "2025-12-31"] }}
  monto_exigible: {{ decimal: ["1.00", "99999.99"] }}
  decil:         {{ int: [1, 10] }}
  activo:        {{ bool: 0.5 }}
  creado_el:     {{ incremental: {{ start: "2025-06-01T05:00:00Z", step: "1s", type: timestamp }} }}
  motivo_rechazo: {{ choice: ["X", "Y"], null_share: 0.99 }}
"#
    ))
}

fn generate_spec(spec: &SourceSpec) -> &pulso_operators::source::GenerateSpec {
    match spec {
        SourceSpec::Generate(g) => g,
        other => panic!("not a generate spec: {other:?}"),
    }
}

#[tokio::test]
async fn same_spec_gives_identical_data_whatever_the_batch_size() {
    let spec = trandeuda(10_000, 2, 0.1, 500);
    let a = read_all(&spec, 1000).await;
    let b = read_all(&spec, 1000).await;
    assert_eq!(a, b, "two runs differ");
    // Values depend on the row id, not on where batches are cut.
    let c = read_all(&spec, 777).await;
    assert_eq!(rows(&a), rows(&c));
    assert_eq!(total_rows(&a), 11_000);

    // A checksum over the text of every cell, so a silent change of the generator shows up here
    // first (the benchmarks' data sets would change with it).
    let checksum = rows(&a)
        .iter()
        .flatten()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, cell| {
            cell.bytes()
                .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
        });
    let again = rows(&c)
        .iter()
        .flatten()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, cell| {
            cell.bytes()
                .fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
        });
    assert_eq!(checksum, again);

    // A different seed gives different data.
    let mut other = generate_spec(&spec).clone();
    other.seed = 43;
    let d = read_all(&SourceSpec::Generate(other), 1000).await;
    assert_ne!(column(&a, "monto_exigible"), column(&d, "monto_exigible"));
    assert_eq!(
        column(&a, "cod_cuenta"),
        column(&d, "cod_cuenta"),
        "keys do not depend on the seed"
    );
}

#[tokio::test]
async fn batches_respect_batch_size_and_schema() {
    let spec = trandeuda(2_500, 0, 0.0, 0);
    let (schema, stream) = spec.open(&ctx(1000, &std::env::temp_dir())).await.unwrap();
    let batches = common::collect(stream).await.unwrap();
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
        vec![1000, 1000, 500]
    );
    assert!(batches.iter().all(|b| b.schema() == schema));
    assert_eq!(
        spec.schema(&ctx(1, &std::env::temp_dir())).await.unwrap(),
        schema
    );
    let types: Vec<(&str, DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("cod_cuenta", DataType::Utf8, false),
            ("nro_documento", DataType::Utf8, false),
            ("archivo", DataType::Utf8, false),
            ("fecha_vencimiento", DataType::Date32, false),
            ("monto_exigible", DataType::Decimal128(7, 2), false),
            ("decil", DataType::Int64, false),
            ("activo", DataType::Boolean, false),
            (
                "creado_el",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false
            ),
            ("motivo_rechazo", DataType::Utf8, true),
        ]
    );
    assert_eq!(spec.describe(), "generate 2500 rows (seed 42, revision 0)");
}

/// Rows keyed by nro_documento (unique per id), as text.
fn by_key(batches: &[arrow::array::RecordBatch]) -> HashMap<String, Vec<String>> {
    let keys = column(batches, "nro_documento");
    keys.into_iter().zip(rows(batches)).collect()
}

#[tokio::test]
async fn revisions_change_the_counted_rows_and_raise_the_incremental_column() {
    let (base, share, grow) = (3_000u64, 0.05, 200u64);
    let mut previous = read_all(&trandeuda(base, 0, share, grow), 1024).await;
    let (changed0, new0) = changed_rows(generate_spec(&trandeuda(base, 0, share, grow)), 0);
    assert_eq!((changed0, new0), (0, base));
    for revision in 1..=4u64 {
        let spec = trandeuda(base, revision, share, grow);
        let current = read_all(&spec, 1024).await;
        assert_eq!(total_rows(&current) as u64, base + revision * grow);

        let before = by_key(&previous);
        let after = by_key(&current);
        let mut changed = 0u64;
        let mut new = 0u64;
        let mut changed_keys = HashSet::new();
        for (key, row) in &after {
            match before.get(key) {
                None => {
                    new += 1;
                    changed_keys.insert(key.clone());
                }
                Some(old) if old != row => {
                    changed += 1;
                    changed_keys.insert(key.clone());
                }
                Some(_) => {}
            }
        }
        let expected = changed_rows(generate_spec(&spec), revision);
        assert_eq!((changed, new), expected, "revision {revision}");
        assert_eq!(new, grow);
        // With a 5% share of 3000+ rows, some rows change at every revision.
        assert!(changed > 50, "revision {revision}: only {changed} changed");

        // Every changed or new row is above the previous revision's maximum (the watermark).
        let previous_max = column(&previous, "creado_el").into_iter().max().unwrap();
        let keys = column(&current, "nro_documento");
        let created = column(&current, "creado_el");
        for (key, ts) in keys.iter().zip(&created) {
            if changed_keys.contains(key) {
                assert!(
                    *ts > previous_max,
                    "revision {revision}: {key} at {ts} <= {previous_max}"
                );
            }
        }
        // ...and ids (keys) never move.
        let kept: Vec<_> = column(&current, "cod_cuenta")
            .into_iter()
            .take(base as usize)
            .collect();
        let kept_before: Vec<_> = column(&previous, "cod_cuenta")
            .into_iter()
            .take(base as usize)
            .collect();
        assert_eq!(kept, kept_before);
        previous = current;
    }
}

#[tokio::test]
async fn null_share_is_respected() {
    let spec = trandeuda(20_000, 0, 0.0, 0);
    let batches = read_all(&spec, 4096).await;
    let nulls: usize = batches
        .iter()
        .map(|b| b.column_by_name("motivo_rechazo").unwrap().null_count())
        .sum();
    let share = nulls as f64 / 20_000.0;
    assert!((0.98..=0.995).contains(&share), "null share {share}");
    for name in ["cod_cuenta", "monto_exigible", "creado_el"] {
        let n: usize = batches
            .iter()
            .map(|b| b.column_by_name(name).unwrap().null_count())
            .sum();
        assert_eq!(n, 0, "{name}");
    }
    let half = yaml_source(
        r#"
kind: generate
rows: 10000
columns:
  k: { from_id: "{}", null_share: 0.25 }
  d: { date: ["2024-01-01", "2024-01-31"], null_share: 0.5 }
  i: { int: [0, 5], null_share: 1.0 }
"#,
    );
    let batches = read_all(&half, 4096).await;
    let count = |name: &str| -> usize {
        batches
            .iter()
            .map(|b| b.column_by_name(name).unwrap().null_count())
            .sum()
    };
    assert!((2200..2800).contains(&count("k")), "{}", count("k"));
    assert!((4700..5300).contains(&count("d")), "{}", count("d"));
    assert_eq!(count("i"), 10_000);
}

#[tokio::test]
async fn every_generator_produces_its_type_and_range() {
    let spec = yaml_source(
        r#"
kind: generate
rows: 5000
seed: 7
columns:
  id:     { from_id: "C-{}-x", offset: 100, div: 3 }
  pick:   { choice: ["a", "b", "c"] }
  day:    { date: ["2024-02-27", "2024-03-02"] }
  amount: { decimal: ["-10.5", "10.25"] }
  small:  { int: [-2, 2] }
  flag:   { bool: 0.25 }
  d_inc:  { incremental: { start: "2025-01-01", step: "1d", type: date, rows_per_step: 1000 } }
  dt_inc: { incremental: { start: "2025-01-01T00:00:00", step: "500ms", type: datetime } }
  ts_inc: { incremental: { start: "2025-01-01T00:00:00-05:00", step: "1m", type: timestamp } }
"#,
    );
    let batches = read_all(&spec, 2048).await;
    assert_eq!(total_rows(&batches), 5000);

    let ids = column(&batches, "id");
    assert_eq!(&ids[..4], &["C-100-x", "C-100-x", "C-100-x", "C-101-x"]);
    assert_eq!(ids[4999], format!("C-{}-x", 4999 / 3 + 100));

    let picks: HashSet<String> = column(&batches, "pick").into_iter().collect();
    assert_eq!(
        picks,
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    );

    let days: HashSet<String> = column(&batches, "day").into_iter().collect();
    let expected_days: HashSet<String> = [
        "2024-02-27",
        "2024-02-28",
        "2024-02-29",
        "2024-03-01",
        "2024-03-02",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(days, expected_days, "bounds inclusive, leap day included");

    for batch in &batches {
        let amount = batch.column_by_name("amount").unwrap();
        assert_eq!(amount.data_type(), &DataType::Decimal128(4, 2));
        let values = amount.as_primitive::<arrow::datatypes::Decimal128Type>();
        assert!(values.iter().flatten().all(|v| (-1050..=1025).contains(&v)));
        let small = batch
            .column_by_name("small")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert!(small.iter().flatten().all(|v| (-2..=2).contains(&v)));
    }
    let amounts: HashSet<String> = column(&batches, "amount").into_iter().collect();
    assert!(amounts.contains("-10.50") || amounts.contains("10.25") || amounts.len() > 1500);
    let smalls: HashSet<String> = column(&batches, "small").into_iter().collect();
    assert_eq!(smalls.len(), 5);

    let trues = column(&batches, "flag")
        .iter()
        .filter(|v| *v == "true")
        .count();
    assert!((1100..1400).contains(&trues), "{trues}");

    // Incremental columns: types, start and step.
    let first = &batches[0];
    let d_inc = first
        .column_by_name("d_inc")
        .unwrap()
        .as_primitive::<Date32Type>();
    assert_eq!(d_inc.data_type(), &DataType::Date32);
    assert_eq!(d_inc.value_as_date(0).unwrap().to_string(), "2025-01-01");
    assert_eq!(d_inc.value_as_date(999).unwrap().to_string(), "2025-01-01");
    assert_eq!(d_inc.value_as_date(1000).unwrap().to_string(), "2025-01-02");
    let dt = first.column_by_name("dt_inc").unwrap();
    assert_eq!(
        dt.data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, None)
    );
    assert_eq!(column(&batches, "dt_inc")[3], "2025-01-01T00:00:01.500");
    let ts = first
        .column_by_name("ts_inc")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.timezone(), Some("UTC"));
    assert_eq!(column(&batches, "ts_inc")[2], "2025-01-01T05:02:00Z");
}

#[tokio::test]
async fn invalid_specs_fail_with_clear_messages() {
    let cases = [
        ("a: { int: [5, 1] }", "int bounds are reversed"),
        ("a: { bool: 1.5 }", "bool 1.5 is not in [0, 1]"),
        ("a: { choice: [] }", "choice needs at least one value"),
        ("a: { from_id: \"no placeholder\" }", "exactly once"),
        ("a: { int: [1, 2], choice: [\"x\"] }", "exactly one of"),
        ("a: { decimal: [1.00, 2.50] }", "must be a quoted string"),
        (
            "a: { date: [\"2024-01-01\", \"2024-02-30\"] }",
            "date \"2024-02-30\"",
        ),
        ("a: { int: [1, 2], offset: 3 }", "only apply to from_id"),
        (
            "a: { incremental: { start: \"2025-01-01\", step: \"1h\", type: date } }",
            "whole days",
        ),
        (
            "a: { incremental: { start: \"2025-01-01T00:00:00\", step: \"1s\", type: timestamp } }",
            "needs `Z`",
        ),
        ("a: { int: [1, 2], colour: red }", "colour"),
    ];
    for (column_yaml, expected) in cases {
        let yaml = format!("kind: generate\nrows: 10\ncolumns:\n  {column_yaml}\n");
        let err = serde_saphyr::from_str::<SourceSpec>(&yaml)
            .expect_err(column_yaml)
            .to_string();
        assert!(err.contains(expected), "{column_yaml}: {err}");
    }

    // Interpolated numbers arrive as text.
    let text = yaml_source(
        "kind: generate\nrows: \"10\"\nrevision: \"3\"\ncolumns:\n  a: { int: [1, 2] }\n",
    );
    assert_eq!(text.describe(), "generate 10 rows (seed 0, revision 3)");
    let err = serde_saphyr::from_str::<SourceSpec>(
        "kind: generate\nrows: -1\ncolumns:\n  a: { int: [1, 2] }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("-1 is negative"), "{err}");

    let spec =
        yaml_source("kind: generate\nrows: 10\nchange_share: 2\ncolumns:\n  a: { int: [1, 2] }\n");
    let err = spec
        .schema(&ctx(10, &std::env::temp_dir()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("change_share 2 is not in [0, 1]"), "{err}");

    // Overflow of the incremental range is caught before generating anything.
    let spec = yaml_source(
        "kind: generate\nrows: 100000000\ncolumns:\n  d: { incremental: { start: \"2025-01-01\", step: \"100d\", type: date } }\n",
    );
    let err = spec.validate().unwrap_err().to_string();
    assert!(err.contains("generated column \"d\""), "{err}");
}

#[tokio::test]
async fn growing_without_changes_only_appends() {
    let r0 = read_all(&trandeuda(1000, 0, 0.0, 100), 300).await;
    let r2 = read_all(&trandeuda(1000, 2, 0.0, 100), 300).await;
    assert_eq!(total_rows(&r2), 1200);
    assert_eq!(
        rows(&r0),
        rows(&r2)[..1000].to_vec(),
        "unchanged rows are byte-identical"
    );
    assert_eq!(
        changed_rows(generate_spec(&trandeuda(1000, 2, 0.0, 100)), 2),
        (0, 100)
    );
}

#[tokio::test]
async fn dropping_the_stream_stops_the_generator() {
    let spec = trandeuda(50_000_000, 0, 0.0, 0);
    let (_, mut stream) = spec
        .open(&ctx(10_000, &std::env::temp_dir()))
        .await
        .unwrap();
    use futures::StreamExt;
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 10_000);
    drop(stream);
    // Nothing to assert beyond not hanging: the blocking producer exits at its next send.
}

/// A window is pushed down at revision 0: only the ids whose incremental value can be inside it
/// are generated, and they are exactly the rows of the full generation that are inside it. At a
/// later revision (values no longer grow with the id) every row is still generated.
#[tokio::test]
async fn a_window_is_pushed_down_exactly_when_no_revision_changes_rows() {
    use pulso_operators::window::Window;
    use pulso_types::{IncType, IncValue};
    let window = |lower: &str, upper: &str| Window {
        column: "creado_el".into(),
        ty: IncType::Timestamp,
        lower: Some(IncValue::parse(IncType::Timestamp, lower).expect("lower")),
        upper: Some(IncValue::parse(IncType::Timestamp, upper).expect("upper")),
    };
    let read = |spec: SourceSpec, w: Option<Window>| async move {
        let dir = std::env::temp_dir();
        let mut c = ctx(100, &dir);
        c.window = w;
        let (_, stream) = spec.open(&c).await.expect("open");
        rows(&common::collect(stream).await.expect("read"))
    };
    let inside = |all: &[Vec<String>], lo: &str, hi: &str| -> Vec<Vec<String>> {
        let ts = 7; // creado_el, as text "2025-06-01T05:00:00Z"-like
        all.iter()
            .filter(|r| r[ts].as_str() >= lo && r[ts].as_str() < hi)
            .cloned()
            .collect()
    };
    let all = read(trandeuda(1_000, 0, 0.0, 0), None).await;
    assert_eq!(all.len(), 1_000);
    // 1 s per row from 05:00:00: [05:01:40, 05:03:20) is ids 100..200.
    let w = window("2025-06-01T05:01:40Z", "2025-06-01T05:03:20Z");
    let pushed = read(trandeuda(1_000, 0, 0.0, 0), Some(w.clone())).await;
    let expected = inside(&all, "2025-06-01T05:01:40", "2025-06-01T05:03:20");
    assert_eq!(expected.len(), 100);
    assert_eq!(pushed, expected);
    // A bound between two values, and bounds outside the data.
    let pushed = read(
        trandeuda(1_000, 0, 0.0, 0),
        Some(window("2025-06-01T05:01:40.5Z", "2025-06-01T05:01:42.5Z")),
    )
    .await;
    assert_eq!(pushed.len(), 2, "{pushed:?}");
    let pushed = read(
        trandeuda(1_000, 0, 0.0, 0),
        Some(window("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z")),
    )
    .await;
    assert_eq!(pushed, all);
    let pushed = read(
        trandeuda(1_000, 0, 0.0, 0),
        Some(window("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")),
    )
    .await;
    assert!(pushed.is_empty());
    // Revision 2 without changes to existing rows (change_share 0): still pushed down exactly,
    // over the rows of revision 0 and over those born at revision 1 (their values start at
    // offset 1000 + id seconds: ids 1000..1049 are 05:33:20 .. 05:34:09).
    let all = read(trandeuda(1_000, 2, 0.0, 50), None).await;
    assert_eq!(all.len(), 1_100);
    for (lo, hi, n) in [
        ("2025-06-01T05:01:40", "2025-06-01T05:03:20", 100),
        ("2025-06-01T05:33:20", "2025-06-01T05:34:00", 40),
        ("2025-06-01T05:00:00", "2025-06-02T05:00:00", 1_100),
    ] {
        let pushed = read(
            trandeuda(1_000, 2, 0.0, 50),
            Some(window(&format!("{lo}Z"), &format!("{hi}Z"))),
        )
        .await;
        assert_eq!(pushed, inside(&all, lo, hi), "[{lo}, {hi})");
        assert_eq!(pushed.len(), n, "[{lo}, {hi})");
    }
    // Revision 2 changing rows: no pushdown, every row comes out (the transform applies the
    // window).
    let pushed = read(trandeuda(1_000, 2, 0.1, 50), Some(w)).await;
    assert_eq!(pushed.len(), 1_100);
}

#[tokio::test]
async fn history_is_growth_already_there_at_revision_zero() {
    // `rows: 0, grow: 500, history: 4` is the same table as `rows: 2000`: 4 "days" of 500 rows,
    // all born at revision 0, and a revision adds one more.
    let spec = |rows: u64, history: u64, revision: u64| {
        yaml_source(&format!(
            r#"
kind: generate
rows: {rows}
history: {history}
seed: 42
revision: {revision}
change_share: 0.1
grow: 500
columns:
  id: {{ from_id: "{{}}" }}
  v:  {{ int: [1, 1000000] }}
"#
        ))
    };
    let with_history = |revision| spec(0, 4, revision);
    let plain = |revision| spec(2000, 0, revision);
    let four_days = with_history(0);
    assert_eq!(generate_spec(&four_days).rows, 2000);
    assert_eq!(generate_spec(&four_days).history, 4);
    for revision in [0, 1] {
        let a = read_all(&with_history(revision), 300).await;
        let b = read_all(&plain(revision), 300).await;
        assert_eq!(rows(&a), rows(&b), "revision {revision}");
    }
    assert_eq!(total_rows(&read_all(&with_history(1), 300).await), 2500);
}

/// `late:` makes the tail of each step a later delivery: its values are `by` later, they still
/// never decrease with the id, and a window is still pushed down exactly (the demo's trandeuda:
/// the correction file of each day is loaded three hours after the day's file).
#[tokio::test]
async fn a_late_tail_of_each_step_is_later_and_still_pushed_down() {
    use pulso_operators::window::Window;
    use pulso_types::{IncType, IncValue};
    let spec = |revision: u64| {
        yaml_source(&format!(
            r#"
kind: generate
rows: 0
history: 3
grow: 10
seed: 1
revision: {revision}
columns:
  id: {{ from_id: "{{}}" }}
  t:  {{ incremental: {{ start: "2025-06-02T12:00:00Z", step: "1d", rows_per_step: 10, type: timestamp, late: {{ from: 8, by: "3h" }} }} }}
"#
        ))
    };
    let all = rows(&read_all(&spec(1), 7).await);
    assert_eq!(all.len(), 40);
    let t = |id: usize| all[id][1].clone();
    assert!(t(0).starts_with("2025-06-02T12:00:00"), "{}", t(0));
    assert!(t(7).starts_with("2025-06-02T12:00:00"), "{}", t(7));
    assert!(t(8).starts_with("2025-06-02T15:00:00"), "{}", t(8));
    assert!(t(9).starts_with("2025-06-02T15:00:00"), "{}", t(9));
    assert!(t(10).starts_with("2025-06-03T12:00:00"), "{}", t(10));
    assert!(
        all.windows(2).all(|w| w[0][1] <= w[1][1]),
        "values grow with the id"
    );

    // [2025-06-03T13:00, 2025-06-04T15:00): day 2's late rows, day 3's on-time rows.
    let window = Window {
        column: "t".into(),
        ty: IncType::Timestamp,
        lower: Some(IncValue::parse(IncType::Timestamp, "2025-06-03T13:00:00Z").expect("lower")),
        upper: Some(IncValue::parse(IncType::Timestamp, "2025-06-04T15:00:00Z").expect("upper")),
    };
    let dir = std::env::temp_dir();
    let mut c = ctx(100, &dir);
    c.window = Some(window);
    let (_, stream) = spec(1).open(&c).await.expect("open");
    let pushed = rows(&common::collect(stream).await.expect("read"));
    let ids: Vec<&str> = pushed.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        ids,
        ["18", "19", "20", "21", "22", "23", "24", "25", "26", "27"]
    );

    // `by` must stay below `step`, `from` inside a step.
    for (late, message) in [
        (r#"{ from: 8, by: "1d" }"#, "below step"),
        (r#"{ from: 10, by: "1h" }"#, "within a step"),
        (r#"{ from: 0, by: "1h" }"#, "within a step"),
    ] {
        let err = serde_saphyr::from_str::<SourceSpec>(&format!(
            r#"
kind: generate
rows: 20
seed: 1
columns:
  t: {{ incremental: {{ start: "2025-06-02T12:00:00Z", step: "1d", rows_per_step: 10, type: timestamp, late: {late} }} }}
"#
        ))
        .err()
        .unwrap_or_else(|| panic!("late {late} was accepted"))
        .to_string();
        assert!(err.contains(message), "{late}: {err}");
    }
}
