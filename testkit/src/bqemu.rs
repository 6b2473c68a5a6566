//! The BigQuery emulator of `../shared/bqemu` for the integration tests (REST calls to create
//! datasets and tables and to insert rows), and `pulso-flow run` with a JSON summary.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::cli::cli;

pub struct Emulator {
    pub rest: String,
    pub grpc: String,
    pub project: String,
    http: reqwest::Client,
}

/// The emulator, or `None` (with the reason printed) when it is down and not required.
pub async fn emulator() -> Option<Emulator> {
    let rest = std::env::var("BQEMU_REST").unwrap_or_else(|_| "http://127.0.0.1:9050".into());
    let grpc = std::env::var("BQEMU_GRPC").unwrap_or_else(|_| "http://127.0.0.1:9060".into());
    let project = std::env::var("BQEMU_PROJECT").unwrap_or_else(|_| "test-proj".into());
    let http = reqwest::Client::new();
    let up = http
        .get(format!("{rest}/bigquery/v2/projects/{project}/datasets"))
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .is_ok();
    if up {
        return Some(Emulator {
            rest,
            grpc,
            project,
            http,
        });
    }
    let why = format!(
        "the BigQuery emulator is not reachable at {rest}; start it with `bash ../shared/bqemu/setup.sh`"
    );
    if std::env::var("BQEMU_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("BQEMU_REQUIRED=1 but {why}");
    }
    eprintln!("SKIPPED: {why} (set BQEMU_REQUIRED=1 to make this a failure)");
    None
}

impl Emulator {
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/bigquery/v2/projects/{}{path}", self.rest, self.project);
        let resp = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .expect("emulator request");
        let status = resp.status();
        let v: Value = resp.json().await.expect("emulator JSON");
        assert!(status.is_success(), "{url}: {status}: {v}");
        v
    }

    /// A new dataset, named from `prefix`, the process id and a counter (tests share the
    /// emulator).
    pub async fn create_dataset(&self, prefix: &str) -> String {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dataset = format!("{prefix}_{}_{n}", std::process::id());
        self.post(
            "/datasets",
            json!({"datasetReference": {"projectId": self.project, "datasetId": dataset}, "location": "US"}),
        )
        .await;
        dataset
    }

    /// A table with these (name, BigQuery type) columns.
    pub async fn create_table(&self, dataset: &str, table: &str, fields: &[(&str, &str)]) {
        let fields: Vec<Value> = fields
            .iter()
            .map(|(name, ty)| json!({"name": name, "type": ty}))
            .collect();
        self.post(
            &format!("/datasets/{dataset}/tables"),
            json!({"tableReference": {"projectId": self.project, "datasetId": dataset, "tableId": table},
                   "schema": {"fields": fields}}),
        )
        .await;
    }

    pub async fn insert_rows(&self, dataset: &str, table: &str, rows: impl Iterator<Item = Value>) {
        let rows: Vec<Value> = rows.map(|r| json!({ "json": r })).collect();
        for chunk in rows.chunks(10_000) {
            let v = self
                .post(
                    &format!("/datasets/{dataset}/tables/{table}/insertAll"),
                    json!({ "rows": chunk }),
                )
                .await;
            assert!(
                v["insertErrors"].as_array().is_none_or(|e| e.is_empty()),
                "insertAll: {v}"
            );
        }
    }
}

/// `pulso-flow run FILE --summary json EXTRA…` against `db_url`, off the async runtime.
pub async fn run_cli(
    db_url: String,
    file: &Path,
    env: Vec<(String, String)>,
    extra: &[&str],
) -> Output {
    let mut args: Vec<String> = vec![
        "run".into(),
        file.display().to_string(),
        "--summary".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        cli(&db_url, &args, &env)
    })
    .await
    .expect("cli task")
}
