//! `pulso-flow backfill` against a real PostgreSQL: SIGKILLs in different chunks then a rerun
//! (same table as one load, each chunk committed exactly once, watermark, never a partly visible
//! chunk), a failing chunk (earlier chunks kept, watermark at the contiguous prefix, resume),
//! the lock against normal runs, `backfill status` and `--dry-run`.

use pulso_testkit as common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestDb, checksum, cli, text, watermark, write};

const DEMO: &str = include_str!("../../examples/demo.yaml");

/// The demo's trandeuda alone, with `days` days of snapshots (35,000 generated rows a day).
fn trandeuda_pipeline(days: u32) -> String {
    let start = DEMO
        .find("  - name: trandeuda")
        .expect("trandeuda in the demo");
    let end = DEMO.find("  - name: pagos").expect("pagos in the demo");
    let block =
        DEMO[start..end].replacen("history: ${DEMO_DAYS:-30}", &format!("history: {days}"), 1);
    assert_ne!(
        block,
        DEMO[start..end],
        "the demo's trandeuda history length moved"
    );
    format!(
        "name: demo_trandeuda\ndefaults:\n  schema: raw\n  time_zone: America/Lima\n  \
         batch_size: 16384\n  create_target: false\n\ntables:\n{block}"
    )
}

fn backfill_args<'a>(file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "backfill",
        file,
        "--tables",
        "trandeuda",
        "--from",
        "2025-06-02",
        "--to",
        "2025-06-08",
        "--chunk",
        "1d",
        "--builds",
        "none",
    ];
    args.extend_from_slice(extra);
    args
}

/// A small pseudo-random generator (no dependency needed for jitter).
struct Jitter(u64);
impl Jitter {
    fn next_ms(&mut self, max: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % max
    }
}

async fn chunk_statuses(c: &tokio_postgres::Client) -> Vec<(i32, String)> {
    c.query(
        "SELECT seq, status FROM pulso_flow.backfill_chunks WHERE node = 'trandeuda' ORDER BY seq",
        &[],
    )
    .await
    .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkills_in_different_chunks_then_a_rerun_equal_one_load() {
    let db = TestDb::new("backfill_kill").await;
    let reference = TestDb::new("backfill_kill_ref").await;
    let dir = tempfile::tempdir().unwrap();
    // Six days, 2025-06-02 .. 06-07 (Monday to Saturday): six chunks of one day.
    let file = write(dir.path(), "trandeuda.yaml", &trandeuda_pipeline(6));
    let file = file.display().to_string();

    // The reference: one `run`, one transaction, of the same rows.
    let out = cli(&reference.url, &["run", &file], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let c = db.client().await;
    // Watch the table while the backfill runs: every observed per-day count must be 0 or the
    // day's final count (a chunk is one day here, so a partly visible chunk would show).
    let seen: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (url, seen, stop) = (db.url.clone(), seen.clone(), stop.clone());
        tokio::spawn(async move {
            let w = common::connect(&url).await;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(rows) = w
                    .query(
                        "SELECT fecha_proceso::text, count(*) FROM raw.trandeuda GROUP BY 1",
                        &[],
                    )
                    .await
                    && let Ok(mut s) = seen.lock()
                {
                    s.extend(rows.iter().map(|r| (r.get(0), r.get(1))));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    let mut jitter = Jitter(seed);
    let mut killed_in: BTreeSet<i32> = BTreeSet::new();
    let mut checked_lock = false;
    let args = backfill_args(&file, &[]);
    for attempt in 0..15 {
        if killed_in.len() >= 3 {
            break;
        }
        let mut child = Command::new(common::bin())
            .args(&args)
            .env("DATABASE_URL", &db.url)
            .env("PULSO_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for a chunk this test has not killed yet to be loading.
        let t0 = Instant::now();
        let mut target = None;
        while target.is_none() {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let running: Vec<i32> = chunk_statuses(&c)
                .await
                .into_iter()
                .filter(|(_, s)| s == "running")
                .map(|(seq, _)| seq)
                .collect();
            target = running.into_iter().find(|s| !killed_in.contains(s));
            assert!(t0.elapsed() < Duration::from_secs(180), "no chunk started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if target.is_none() {
            break; // finished on its own
        }
        if !checked_lock {
            // A normal run of the table while its backfill is in progress: exit 3 with --no-wait.
            let out = cli(&db.url, &["run", &file, "--no-wait"], &[]);
            assert_eq!(out.status.code(), Some(3), "{}", text(&out));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("backfill is in progress"),
                "{}",
                text(&out)
            );
            checked_lock = true;
        }
        tokio::time::sleep(Duration::from_millis(jitter.next_ms(1500))).await;
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        // The chunk(s) in flight when the process died stay `running` in the ledger.
        let statuses = chunk_statuses(&c).await;
        for (seq, s) in &statuses {
            if s == "running" {
                killed_in.insert(*seq);
            }
        }
        eprintln!("kill {attempt}: ledger {statuses:?}");
    }
    assert!(
        killed_in.len() >= 3,
        "only {} chunks were killed in flight: {killed_in:?}",
        killed_in.len()
    );

    // The rerun resumes and finishes.
    let out = cli(&db.url, &backfill_args(&file, &["--summary", "json"]), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let chunks = summary["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 6, "{summary}");
    assert!(
        chunks.iter().any(|c| c["status"] == "skipped"),
        "the rerun reloaded everything: {summary}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.await.unwrap();

    // Same table as the single load; same watermark, the greatest value loaded.
    let r = reference.client().await;
    assert_eq!(
        checksum(&c, "raw.trandeuda").await,
        checksum(&r, "raw.trandeuda").await
    );
    let wm = watermark(&c, "trandeuda").await;
    assert_eq!(wm, watermark(&r, "trandeuda").await);
    let greatest: String = c
        .query_one(
            "SELECT to_char(max(creado_el) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
             FROM raw.trandeuda",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(wm.as_deref(), Some(greatest.as_str()));

    // The ledger holds each chunk once, committed; and each chunk's load committed once.
    let statuses = chunk_statuses(&c).await;
    assert_eq!(statuses.len(), 6, "{statuses:?}");
    assert!(
        statuses.iter().all(|(_, s)| s == "committed"),
        "{statuses:?}"
    );
    let ok_loads: i64 = c
        .query_one(
            "SELECT count(*) FROM pulso_flow.node_runs WHERE node = 'trandeuda' AND status = 'ok' \
             AND NOT details ? 'bulk_finish'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ok_loads, 6);
    // The target was empty: the chunks appended with its indexes dropped, built once at the end.
    assert_eq!(summary["index_builds"][0]["ok"], true, "{summary}");
    assert_eq!(primary_key(&c, "raw.trandeuda").await, 1);
    assert!(!in_bulk_mode(&c, "raw.trandeuda").await);
    let attempts: i64 = c
        .query_one(
            "SELECT sum(attempts) FROM pulso_flow.backfill_chunks WHERE node = 'trandeuda'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        attempts >= 6 + 3,
        "{attempts} attempts for 6 chunks and 3 kills"
    );

    // Never a partly visible chunk.
    let finals: BTreeMap<String, i64> = c
        .query(
            "SELECT fecha_proceso::text, count(*) FROM raw.trandeuda GROUP BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(finals.len(), 6, "{finals:?}");
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    for (day, n) in seen.iter() {
        assert_eq!(Some(n), finals.get(day), "day {day} was seen with {n} rows");
    }
}

const MOVS: &str = "\
defaults: { schema: t }
tables:
  - name: movs
    source: { kind: csv, path: movs.csv }
    columns: { id: integer, fecha: date, monto: \"numeric(15,2)\" }
    primary_key: [id]
    incremental: { column: fecha, type: date, lookback: 1d }
";

/// Three rows a day, 2025-01-01 .. 01-10; `bad` puts an overflowing amount on id 19 (01-07).
fn movs_csv(bad: bool) -> String {
    let mut csv = String::from("id,fecha,monto\n");
    for day in 1..=10u32 {
        for k in 0..3u32 {
            let id = (day - 1) * 3 + k + 1;
            let monto = if bad && id == 19 {
                "12345678901234.56".to_string()
            } else {
                format!("{id}.50")
            };
            csv.push_str(&format!("{id},2025-01-{day:02},{monto}\n"));
        }
    }
    csv
}

fn movs_args(file: &Path) -> Vec<String> {
    backfill_range(file, "2025-01-01", "2025-01-11", &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_chunk_keeps_the_prefix_and_the_rerun_resumes_there() {
    let db = TestDb::new("backfill_bad").await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "movs.csv", &movs_csv(true));
    let file = write(dir.path(), "p.yaml", MOVS);
    let args = movs_args(&file);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // --dry-run: the chunks, nothing loaded, no database needed.
    let mut dry = args.clone();
    dry.push("--dry-run");
    let out = cli("postgres://nobody@127.0.0.1:1/none", &dry, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("movs chunk 0: [2025-01-01, 2025-01-04)")
            && stdout.contains("movs chunk 3: [2025-01-10, 2025-01-11)")
            && stdout.contains("4 chunks"),
        "{stdout}"
    );

    // Chunks [01, 04) and [04, 07) commit; [07, 10) holds the bad row and fails; [10, 11) does
    // not start.
    let out = cli(&db.url, &args, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status: Vec<&str> = summary["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        status,
        ["committed", "committed", "failed", "not started"],
        "{summary}"
    );
    let error = summary["chunks"][2]["error"].as_str().unwrap();
    assert!(
        error.contains("movs")
            && error.contains("chunk 2 [2025-01-07, 2025-01-10)")
            && error.contains("column monto")
            && error.contains("id=19"),
        "{error}"
    );
    let c = db.client().await;
    let (rows, _) = checksum(&c, "t.movs").await;
    assert_eq!(rows, 18);
    // The watermark is the end of the contiguous prefix: the greatest value chunk 1 loaded.
    assert_eq!(watermark(&c, "movs").await.as_deref(), Some("2025-01-06"));

    // Each chunk that started is a run of its own in the ledger, the failed one included.
    let runs: Vec<(String, String)> = c
        .query(
            "SELECT r.status, n.status FROM pulso_flow.runs r \
             JOIN pulso_flow.node_runs n USING (run_id) \
             WHERE r.args ? 'backfill' ORDER BY (r.args->>'chunk')::int",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        runs,
        [pair("ok", "ok"), pair("ok", "ok"), pair("failed", "failed")]
    );

    // `backfill status` reports it.
    let out = cli(&db.url, &["backfill", "status", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &st[0];
    assert_eq!(t["table"], "movs", "{st}");
    assert_eq!(
        (
            t["chunks"].as_u64(),
            t["committed"].as_u64(),
            t["failed"].as_u64(),
            t["pending"].as_u64()
        ),
        (Some(4), Some(2), Some(1), Some(1)),
        "{st}"
    );
    assert_eq!(t["rows"], 18, "{st}");
    let out = cli(&db.url, &["backfill", "status"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("movs") && stdout.contains("failed movs chunk 2"),
        "{stdout}"
    );

    // Fix the row and rerun: the committed chunks are skipped, the rest loads.
    write(dir.path(), "movs.csv", &movs_csv(false));
    let out = cli(&db.url, &args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status: Vec<&str> = summary["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        status,
        ["skipped", "skipped", "committed", "committed"],
        "{summary}"
    );
    assert_eq!(summary["chunks"][2]["attempt"], 2, "{summary}");
    let (rows, _) = checksum(&c, "t.movs").await;
    assert_eq!(rows, 30);
    assert_eq!(watermark(&c, "movs").await.as_deref(), Some("2025-01-10"));
}

/// How many primary keys `table` has (0 while a bulk backfill has its indexes dropped).
async fn primary_key(c: &tokio_postgres::Client, table: &str) -> i64 {
    c.query_one(
        "SELECT count(*) FROM pg_constraint WHERE conrelid = $1::text::regclass AND contype = 'p'",
        &[&table],
    )
    .await
    .unwrap()
    .get(0)
}

async fn in_bulk_mode(c: &tokio_postgres::Client, target: &str) -> bool {
    c.query_opt(
        "SELECT 1 FROM pulso_flow.backfill_bulk WHERE target = $1",
        &[&target],
    )
    .await
    .unwrap()
    .is_some()
}

async fn monto_of(c: &tokio_postgres::Client, id: i32) -> Vec<String> {
    c.query("SELECT monto::text FROM t.movs WHERE id = $1", &[&id])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `movs_csv(false)` plus id 5 delivered again on 2025-01-08 with another amount: the later
/// delivery, in a later chunk, is the one a load of everything keeps.
fn movs_redelivered_csv() -> String {
    let mut csv = movs_csv(false);
    csv.push_str("5,2025-01-08,99.00\n");
    csv
}

fn backfill_range(file: &Path, from: &str, to: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "backfill",
        &file.display().to_string(),
        "--tables",
        "movs",
        "--from",
        from,
        "--to",
        to,
        "--chunk",
        "3d",
        "--summary",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_json(db: &TestDb, args: &[String]) -> serde_json::Value {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cli(&db.url, &args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_into_an_empty_table_builds_its_indexes_once_and_keeps_the_later_delivery() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "movs.csv", &movs_redelivered_csv());
    let file = write(dir.path(), "p.yaml", MOVS);

    // Empty target, chunks in parallel: appended, then one index build that drops the earlier
    // delivery of id 5.
    let db = TestDb::new("backfill_bulk").await;
    let summary = run_json(
        &db,
        &backfill_range(&file, "2025-01-01", "2025-01-11", &["--parallel", "2"]),
    );
    let build = &summary["index_builds"][0];
    assert_eq!(
        (
            build["table"].as_str(),
            build["ok"].as_bool(),
            build["indexes"].as_u64(),
            build["duplicates"].as_u64()
        ),
        (Some("movs"), Some(true), Some(1), Some(1)),
        "{summary}"
    );
    let c = db.client().await;
    assert_eq!(checksum(&c, "t.movs").await.0, 30);
    assert_eq!(monto_of(&c, 5).await, ["99.00"]);
    assert_eq!(primary_key(&c, "t.movs").await, 1);
    assert!(!in_bulk_mode(&c, "t.movs").await);
    assert_eq!(watermark(&c, "movs").await.as_deref(), Some("2025-01-10"));
    // The index build is a run of its own in the ledger, after the chunks.
    let details: serde_json::Value = c
        .query_one(
            "SELECT details FROM pulso_flow.node_runs WHERE node = 'movs' AND details ? 'bulk_finish'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(details["bulk_finish"]["duplicates"], 1, "{details}");

    // Merging chunks out of order: the later days first (an empty target, bulk), then the
    // earlier ones into the now indexed table, whose chunk 0 brings the older id 5.
    let db = TestDb::new("backfill_order").await;
    run_json(&db, &backfill_range(&file, "2025-01-07", "2025-01-11", &[]));
    let summary = run_json(&db, &backfill_range(&file, "2025-01-01", "2025-01-07", &[]));
    assert_eq!(
        summary["index_builds"].as_array().map(Vec::len),
        Some(0),
        "{summary}"
    );
    assert_eq!(summary["chunks"][0]["updated"], 0, "{summary}");
    let c = db.client().await;
    assert_eq!(monto_of(&c, 5).await, ["99.00"]);
    assert_eq!(checksum(&c, "t.movs").await.0, 30);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_after_an_interrupted_bulk_backfill_builds_the_indexes_first() {
    let db = TestDb::new("backfill_bulk_run").await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "movs.csv", &movs_csv(true));
    let file = write(dir.path(), "p.yaml", MOVS);
    // Chunk 2 fails: the two chunks before it are committed, appended to the bare table.
    let args = movs_args(&file);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cli(&db.url, &args, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["index_builds"].as_array().map(Vec::len),
        Some(0),
        "{summary}"
    );
    let c = db.client().await;
    assert_eq!(primary_key(&c, "t.movs").await, 0);
    assert!(in_bulk_mode(&c, "t.movs").await);
    assert_eq!(checksum(&c, "t.movs").await.0, 18);

    // A normal run, not the backfill, comes next: it builds the indexes, then merges.
    write(dir.path(), "movs.csv", &movs_csv(false));
    let out = cli(&db.url, &["run", &file.display().to_string()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("an interrupted backfill had left t.movs without its indexes"),
        "{}",
        text(&out)
    );
    assert_eq!(primary_key(&c, "t.movs").await, 1);
    assert!(!in_bulk_mode(&c, "t.movs").await);
    assert_eq!(checksum(&c, "t.movs").await.0, 30);
}

/// `movs` with its change day, and a build of daily totals downstream of it.
const MOVS_WITH_BUILD: &str = "\
defaults: { schema: t }
tables:
  - name: movs
    source: { kind: csv, path: movs.csv }
    columns: { id: integer, fecha: date, monto: \"numeric(15,2)\" }
    primary_key: [id]
    incremental: { column: fecha, type: date, lookback: 1d }
    change_date: fecha
builds:
  - name: diario
    depends_on: [movs]
    sql: |
      CREATE TABLE IF NOT EXISTS t.diario (fecha date PRIMARY KEY, n bigint NOT NULL, monto numeric NOT NULL);
      DELETE FROM t.diario
       WHERE pg_temp.full_refresh()
          OR fecha = ANY (pg_temp.changed_days());
      INSERT INTO t.diario
      SELECT fecha, count(*), sum(monto) FROM t.movs
       WHERE pg_temp.full_refresh()
          OR fecha = ANY (pg_temp.changed_days())
       GROUP BY fecha;
";

#[tokio::test(flavor = "multi_thread")]
async fn dependent_builds_run_once_after_the_backfill_or_after_every_chunk() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "movs.csv", &movs_csv(false));
    let file = write(dir.path(), "p.yaml", MOVS_WITH_BUILD);
    let args = movs_args(&file);
    let mut results = Vec::new();
    for (mode, runs) in [("after", 1i64), ("per-chunk", 4)] {
        let db = TestDb::new("backfill_builds").await;
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend(["--builds", mode]);
        let out = cli(&db.url, &a, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            summary["builds"].as_array().map(Vec::len),
            Some(runs as usize),
            "{summary}"
        );
        let c = db.client().await;
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pulso_flow.node_runs WHERE node = 'diario' AND status = 'ok'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, runs, "--builds {mode}");
        results.push(checksum(&c, "t.diario").await);
    }
    assert_eq!(results[0].0, 10);
    assert_eq!(results[0], results[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_rolls_back_the_chunk_in_flight_and_exits_130() {
    let db = TestDb::new("backfill_sigint").await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "trandeuda.yaml", &trandeuda_pipeline(3));
    let file = file.display().to_string();
    let c = db.client().await;
    let child = Command::new(common::bin())
        .args(backfill_args(&file, &[]))
        .env("DATABASE_URL", &db.url)
        .env("PULSO_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !chunk_statuses(&c).await.iter().any(|(_, s)| s == "running") {
        assert!(t0.elapsed() < Duration::from_secs(120), "no chunk started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted by SIGINT") && stderr.contains("cancelled"),
        "{stderr}"
    );
    // Nothing is left `running`: the chunk in flight is recorded as cancelled, its rows are not
    // there, and the watermark covers only committed chunks.
    let statuses = chunk_statuses(&c).await;
    assert!(statuses.iter().all(|(_, s)| s != "running"), "{statuses:?}");
    let committed: Vec<i32> = statuses
        .iter()
        .filter(|(_, s)| s == "committed")
        .map(|(seq, _)| *seq)
        .collect();
    let days: i64 = c
        .query_one(
            "SELECT count(DISTINCT fecha_proceso) FROM raw.trandeuda",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Chunks are the days 06-02 .. 06-07; only the first three have rows.
    let with_rows = committed.iter().filter(|&&s| s < 3).count() as i64;
    assert_eq!(days, with_rows, "{statuses:?}");
    let error: Option<String> = c
        .query_one(
            "SELECT max(error) FROM pulso_flow.backfill_chunks WHERE status = 'failed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(error.as_deref(), Some("cancelled: rolled back"));
}
