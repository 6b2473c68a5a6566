//! The deployment files (Dockerfile, compose.yaml, deploy/k8s/*.yaml, deploy/systemd/*) only use
//! commands and flags the binary accepts, name pipeline files that exist, set only documented
//! variables, and the Kubernetes pipeline ConfigMap is the repository's pipelines.yaml.
//!
//! Commands are parsed out of the files (container `args`, compose `command`, the scheduler's
//! script, `ExecStart=`), then `pulso-flow ARGS… --help` must succeed: clap checks every
//! subcommand, flag and enum value before it prints the help.

use pulso_testkit as common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(rel: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&read(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn k8s_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("deploy/k8s"))
        .expect("deploy/k8s")
        .flatten()
        .map(|e| format!("deploy/k8s/{}", e.file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".yaml") && !f.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    files
}

fn systemd_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("deploy/systemd"))
        .expect("deploy/systemd")
        .flatten()
        .map(|e| format!("deploy/systemd/{}", e.file_name().to_string_lossy()))
        .collect();
    files.sort();
    files
}

/// `${NAME:-default}` → `default`, `${NAME}`/`$$NAME` → `vars[NAME]` (compose and shell syntax).
fn resolve(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.replace("$$", "$").replace('"', "");
    while let Some(start) = out.find('$') {
        let rest = &out[start + 1..];
        let (name, default, len) = if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').expect("closing brace");
            let body = &inner[..end];
            match body.split_once(":-") {
                Some((n, d)) => (n.to_string(), Some(d.to_string()), end + 2),
                None => (body.to_string(), None, end + 2),
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (rest[..end].to_string(), None, end)
        };
        let value = vars
            .get(&name)
            .map(|v| resolve(v, vars))
            .or(default)
            .unwrap_or_default();
        out.replace_range(start..start + 1 + len, &value);
    }
    out
}

/// (where, arguments after the program name) of every pulso-flow invocation.
fn invocations() -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    // Dockerfile: the default command.
    let dockerfile = read("Dockerfile");
    let entrypoint = dockerfile
        .lines()
        .find(|l| l.starts_with("ENTRYPOINT"))
        .expect("ENTRYPOINT");
    assert!(
        entrypoint.contains("/usr/local/bin/pulso-flow"),
        "{entrypoint}"
    );
    let cmd = dockerfile
        .lines()
        .find(|l| l.starts_with("CMD"))
        .expect("CMD");
    let cmd: Vec<String> =
        serde_json::from_str(cmd.trim_start_matches("CMD").trim()).expect("CMD []");
    found.push(("Dockerfile CMD".to_string(), cmd));

    // compose.yaml: services built from the image.
    let compose = &yaml_docs("compose.yaml")[0];
    for (name, service) in compose["services"].as_object().expect("services") {
        if service.get("build").is_none() {
            continue;
        }
        let env: BTreeMap<String, String> = service["environment"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let command: Vec<String> = service["command"]
            .as_array()
            .expect("command list")
            .iter()
            .map(|v| v.as_str().expect("string").to_string())
            .collect();
        if service.get("entrypoint").is_some() {
            // A shell script: every line that calls the binary.
            for line in command.iter().flat_map(|c| c.lines()) {
                if let Some(i) = line.find("/usr/local/bin/pulso-flow ") {
                    let call = line[i + "/usr/local/bin/pulso-flow ".len()..]
                        .split(['&', ';'])
                        .next()
                        .unwrap_or_default();
                    let args = resolve(call, &env)
                        .split_whitespace()
                        .map(str::to_string)
                        .collect();
                    found.push((format!("compose {name}"), args));
                }
            }
        } else {
            found.push((format!("compose {name}"), command));
        }
    }

    // Kubernetes: every container's args (the image's entrypoint is the binary).
    for file in k8s_files() {
        for doc in yaml_docs(&file) {
            let spec = match doc["kind"].as_str() {
                Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                Some("Job") | Some("Deployment") => &doc["spec"]["template"]["spec"],
                _ => continue,
            };
            for c in spec["containers"].as_array().expect("containers") {
                assert!(
                    c.get("command").is_none(),
                    "{file}: keep the image's entrypoint"
                );
                let args = c["args"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{file}: args"))
                    .iter()
                    .map(|a| a.as_str().expect("string arg").to_string())
                    .collect();
                found.push((format!("{file} {}", c["name"]), args));
            }
        }
    }

    // systemd: ExecStart= and ExecStartPre= lines.
    for file in systemd_files() {
        for line in read(&file).lines() {
            let Some(cmd) = line
                .strip_prefix("ExecStart=")
                .or_else(|| line.strip_prefix("ExecStartPre="))
            else {
                continue;
            };
            let mut words = cmd.split_whitespace();
            assert_eq!(
                words.next(),
                Some("/usr/local/bin/pulso-flow"),
                "{file}: {line}"
            );
            found.push((file.clone(), words.map(str::to_string).collect()));
        }
    }
    found
}

/// A pipeline path as the image (`/app/…`) or the systemd unit (relative to /opt/pulso-flow) sees
/// it, mapped into the repository.
fn in_repo(path: &str) -> PathBuf {
    repo().join(
        path.trim_start_matches("/app/")
            .trim_start_matches("/opt/pulso-flow/"),
    )
}

#[test]
fn every_command_and_flag_of_the_deployment_files_is_accepted() {
    let found = invocations();
    let sources: BTreeSet<&str> = found
        .iter()
        .map(|(w, _)| w.split(' ').next().unwrap_or_default())
        .collect();
    for expected in [
        "Dockerfile",
        "compose",
        "deploy/k8s/cronjob-run.yaml",
        "deploy/k8s/job-migrate.yaml",
        "deploy/k8s/deployment-api.yaml",
        "deploy/systemd/pulso-flow-run.service",
        "deploy/systemd/pulso-flow-api.service",
    ] {
        assert!(
            sources.contains(expected),
            "no pulso-flow command found in {expected}: {found:?}"
        );
    }
    let subcommands: BTreeSet<&str> = found
        .iter()
        .filter_map(|(_, a)| a.first().map(String::as_str))
        .collect();
    for expected in ["run", "migrate", "serve"] {
        assert!(subcommands.contains(expected), "{subcommands:?}");
    }
    let mut pipelines = BTreeSet::new();
    for (place, args) in &found {
        let out = Command::new(common::bin())
            .args(args)
            .arg("--help")
            .env_remove("DATABASE_URL")
            .output()
            .expect("run pulso-flow");
        assert!(
            out.status.success(),
            "{place}: pulso-flow {} is refused:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        if args.first().map(String::as_str) == Some("run")
            && let Some(file) = args.get(1).filter(|a| !a.starts_with('-'))
        {
            let path = in_repo(file);
            assert!(
                path.is_file(),
                "{place}: {file} is not in the image ({})",
                path.display()
            );
            pipelines.insert(path);
        }
    }
    // The pipelines they run are valid with the settings the Kubernetes ConfigMap provides.
    let settings = configmap_data("deploy/k8s/configmap.yaml", "pulso-flow-env");
    for path in pipelines {
        let out = Command::new(common::bin())
            .arg("validate")
            .arg(&path)
            .envs(&settings)
            .output()
            .expect("validate");
        assert!(
            out.status.success(),
            "{}: {}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn configmap_data(file: &str, name: &str) -> BTreeMap<String, String> {
    let doc = yaml_docs(file)
        .into_iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{file}: no ConfigMap {name}"));
    doc["data"]
        .as_object()
        .expect("data")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_string()))
        .collect()
}

#[test]
fn the_pipeline_configmap_is_the_repositorys_pipeline() {
    let data = configmap_data("deploy/k8s/pipeline-configmap.yaml", "pulso-flow-pipeline");
    assert!(
        data.get("pipelines.yaml").map(String::as_str) == Some(read("pipelines.yaml").as_str()),
        "deploy/k8s/pipeline-configmap.yaml differs from pipelines.yaml: run `bash deploy/k8s/sync-pipeline.sh`"
    );
}

/// Every variable the deployment files set is one the project documents (.env.example), or a
/// libpq variable.
#[test]
fn the_deployment_files_set_only_documented_variables() {
    let documented = read(".env.example");
    let is_documented = |name: &str| {
        name.starts_with("PG")
            || documented
                .lines()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{name}=")))
    };
    let mut names: Vec<(String, String)> = Vec::new();
    for (k, _) in configmap_data("deploy/k8s/configmap.yaml", "pulso-flow-env") {
        names.push(("configmap.yaml".into(), k));
    }
    for file in k8s_files() {
        for doc in yaml_docs(&file) {
            let spec = match doc["kind"].as_str() {
                Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                Some("Job") | Some("Deployment") => &doc["spec"]["template"]["spec"],
                _ => continue,
            };
            for c in spec["containers"].as_array().into_iter().flatten() {
                for e in c["env"].as_array().into_iter().flatten() {
                    names.push((file.clone(), e["name"].as_str().unwrap_or_default().into()));
                }
            }
        }
    }
    let compose = &yaml_docs("compose.yaml")[0];
    for (name, service) in compose["services"].as_object().expect("services") {
        if service.get("build").is_none() {
            continue;
        }
        for k in service["environment"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if k != "PIPELINE" {
                names.push((format!("compose {name}"), k.clone()));
            }
        }
    }
    for file in systemd_files() {
        for line in read(&file).lines() {
            if let Some(assign) = line.strip_prefix("Environment=") {
                let name = assign.split('=').next().unwrap_or_default();
                names.push((file.clone(), name.into()));
            }
        }
    }
    assert!(names.len() > 10, "{names:?}");
    for (place, name) in names {
        assert!(
            is_documented(&name),
            "{place}: {name} is not in .env.example"
        );
    }
}

#[test]
fn the_image_holds_what_the_binary_reads_from_disk() {
    let dockerfile = read("Dockerfile");
    // The pipelines read their SQL and CSV files relative to themselves; migrations are
    // embedded but shipped for reference.
    for dir in ["pipelines.yaml", "sql/", "examples/", "migrations/"] {
        assert!(
            dockerfile
                .lines()
                .any(|l| l.starts_with("COPY ") && l.contains(dir)),
            "Dockerfile does not copy {dir}"
        );
    }
    assert!(Path::new(&repo().join(".dockerignore")).is_file());
    let ignore = read(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == ".env"),
        ".env must stay out of the image"
    );
}
