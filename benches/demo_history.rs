//! Steady state against history length (issue 15 item 4): the demo with 30 and with 120 days of
//! history (`DEMO_DAYS`), the same scheduled run on each.
//!
//! Per history, in a fresh database: the initial load (`run`, revision 0), then `BENCH_REPS`
//! scheduled runs, `DEMO_REVISION=1, 2, …` (each one new day of every source plus the late
//! corrections inside the lookbacks; revision 2 also corrects the source long before them, which
//! only `reconcile` sees), then a full rebuild (`run --full-refresh`). Reported: wall seconds,
//! the ratio of each scheduled run at 120 days to the same revision at 30 days (goal ≤ 1.2: a
//! scheduled run costs what changed, not the history), the same ratio for the full rebuild (it
//! grows with history), and the days `cuenta_estado_diario` rebuilt in each scheduled run
//! (bounded by the lookbacks, whatever the history).
//!
//! `cargo bench --bench demo_history` (env `BENCH_REPS`, default 3; `BENCH_DAYS`, default
//! `30,120`; `DATABASE_URL` server; database `pf_bench_history` is recreated per history).

use pulso_testkit as common;

struct Row {
    days: u64,
    scenario: String,
    seconds: f64,
    rss_kib: i64,
    rebuilt_days: Option<i64>,
}

fn demo() -> String {
    format!("{}/examples/demo.yaml", env!("CARGO_MANIFEST_DIR"))
}

/// How many days the build `cuenta_estado_diario` recomputed in its latest run (`None` when it
/// did not run or ran in full).
async fn rebuilt_days(client: &tokio_postgres::Client) -> Option<i64> {
    client
        .query_opt(
            "SELECT (details->>'changed_day_count')::bigint FROM pulso_flow.node_runs \
             WHERE node = 'cuenta_estado_diario' AND status = 'ok' \
               AND coalesce((details->>'ran')::boolean, false) \
               AND NOT coalesce((details->>'full')::boolean, false) \
             ORDER BY started_at DESC LIMIT 1",
            &[],
        )
        .await
        .ok()
        .flatten()
        .and_then(|r| r.get(0))
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let reps: u64 = common::bench::env_number("BENCH_REPS", 3);
    let histories: Vec<u64> = std::env::var("BENCH_DAYS")
        .unwrap_or_else(|_| "30,120".into())
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let file = demo();
    let bin = env!("CARGO_BIN_EXE_pulso-flow");
    let mut rows: Vec<Row> = Vec::new();
    println!("\nthe demo at {histories:?} days of history, {reps} scheduled runs each");
    println!(
        "{:>5} {:<14} {:>9} {:>9} {:>13}",
        "days", "scenario", "seconds", "rss_MiB", "rebuilt_days"
    );
    for &days in &histories {
        let (db_url, client) = common::bench::fresh_bench_database("pf_bench_history").await;
        let days_text = days.to_string();
        let run = |scenario: String, args: &[&str], revision: u64| {
            let revision = revision.to_string();
            let env = [
                ("DEMO_DAYS", days_text.as_str()),
                ("DEMO_REVISION", revision.as_str()),
            ];
            let timed = common::bench::timed_run(bin, &db_url, args, &env);
            (scenario, timed)
        };
        let record = |rows: &mut Vec<Row>,
                      scenario: String,
                      t: common::bench::TimedRun,
                      rebuilt: Option<i64>| {
            println!(
                "{:>5} {:<14} {:>9.2} {:>9.1} {:>13}",
                days,
                scenario,
                t.seconds,
                t.rss_kib as f64 / 1024.0,
                rebuilt.map_or_else(|| "-".to_string(), |d| d.to_string())
            );
            rows.push(Row {
                days,
                scenario,
                seconds: t.seconds,
                rss_kib: t.rss_kib,
                rebuilt_days: rebuilt,
            });
        };
        let (s, t) = run("initial".into(), &["run", &file], 0);
        record(&mut rows, s, t, None);
        for revision in 1..=reps {
            let (s, t) = run(format!("revision {revision}"), &["run", &file], revision);
            let rebuilt = rebuilt_days(&client).await;
            record(&mut rows, s, t, rebuilt);
        }
        let (s, t) = run(
            "full rebuild".into(),
            &["run", &file, "--full-refresh"],
            reps,
        );
        record(&mut rows, s, t, None);
    }
    let (Some(&short), Some(&long)) = (histories.first(), histories.last()) else {
        return;
    };
    if short == long {
        return;
    }
    let seconds = |days: u64, scenario: &str| {
        rows.iter()
            .find(|r| r.days == days && r.scenario == scenario)
            .map(|r| r.seconds)
    };
    let mut scheduled = Vec::new();
    for revision in 1..=reps {
        let name = format!("revision {revision}");
        if let (Some(a), Some(b)) = (seconds(short, &name), seconds(long, &name)) {
            println!("{name}: {long} days / {short} days = {:.2}", b / a);
            scheduled.push(b / a);
        }
    }
    scheduled.sort_by(f64::total_cmp);
    if let Some(median) = scheduled.get(scheduled.len() / 2) {
        println!("median scheduled run, {long} / {short} days: {median:.2} (goal <= 1.20)");
    }
    for name in ["initial", "full rebuild"] {
        if let (Some(a), Some(b)) = (seconds(short, name), seconds(long, name)) {
            println!(
                "{name}: {long} days / {short} days = {:.2} (grows with history)",
                b / a
            );
        }
    }
    let peak = rows.iter().map(|r| r.rss_kib).max().unwrap_or(0);
    let bounded = rows
        .iter()
        .filter_map(|r| r.rebuilt_days)
        .max()
        .unwrap_or(0);
    println!(
        "peak RSS {:.1} MiB; cuenta_estado_diario rebuilt at most {bounded} days in a scheduled run",
        peak as f64 / 1024.0
    );
}
