//! The `pulso-flow` binary for tests: run it against a database, read its output, its JSON
//! summary and the fixture files it reads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `pulso-flow` binary of this build. Cargo builds it for the root crate's integration tests
/// and benches, next to their `deps/` folder (`target/<profile>/pulso-flow`); `PULSO_FLOW_BIN`
/// overrides the guess.
pub fn bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PULSO_FLOW_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir.join(format!("pulso-flow{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} not found: run the tests through cargo from the root crate, or set PULSO_FLOW_BIN",
        path.display()
    );
    path
}

/// Run the CLI with `DATABASE_URL` set to `db_url` and extra environment.
pub fn cli(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("DATABASE_URL", db_url)
        .env("PULSO_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pulso-flow")
}

pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write fixture");
    path
}

pub fn summary_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}):\n{}", text(out)))
}

/// (inserted, updated, unchanged) of a node in a `--summary json` output.
pub fn counts(summary: &serde_json::Value, node: &str) -> (u64, u64, u64) {
    let n = summary["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == node))
        .unwrap_or_else(|| panic!("node {node} not in summary: {summary}"));
    let g = |k: &str| {
        n[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing for {node}: {n}"))
    };
    (g("inserted"), g("updated"), g("unchanged"))
}
