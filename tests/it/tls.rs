//! Loads over TLS, libpq's conventions and secrets, through the CLI against private clusters
//! (testkit/src/tls.rs): one with `ssl=on` and a certificate made by the test, one with
//! `ssl=off`. Every sslmode behaves as libpq documents; `PG*` variables and the password file
//! work without `DATABASE_URL`; `DATABASE_URL_FILE` works; no output ever holds the password.

use pulso_testkit as common;
use pulso_testkit::tls as tls_servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{summary_json, text, write};
use tls_servers::{PASSWORD, PgCluster, Pki, RedisTls};

const PIPELINE: &str = "\
defaults: { schema: t }
tables:
  - name: cuentas
    source:
      kind: generate
      rows: 500
      seed: 3
      columns:
        cuenta: { from_id: \"C{}\" }
        saldo: { decimal: [\"1.00\", \"999.99\"] }
        creado_el: { incremental: { start: \"2025-06-01T05:00:00Z\", step: \"1s\", type: timestamp } }
    columns: { cuenta: text, saldo: \"numeric(12,2)\", creado_el: timestamptz }
    primary_key: [cuenta]
    incremental: { column: creado_el, type: timestamp, lookback: 1h }
";

struct Servers {
    pki: Pki,
    tls: PgCluster,
    plain: PgCluster,
    dir: PathBuf,
    pipeline: PathBuf,
}

/// Both clusters, started once for this test binary.
fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let dir = tls_servers::scratch_dir("tls-cli");
        let pki = Pki::new(&dir.join("pki"));
        let tls = PgCluster::start("pg-tls", Some(&pki));
        let plain = PgCluster::start("pg-plain", None);
        let pipeline = write(&dir, "p.yaml", PIPELINE);
        Servers {
            pki,
            tls,
            plain,
            dir,
            pipeline,
        }
    })
}

/// The CLI with a clean environment: no inherited `DATABASE_URL` or `PG*` variable, `HOME` in
/// a scratch directory (no `~/.pgpass`, no `~/.postgresql/`), and `env` on top.
fn pulso(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(common::bin());
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_URL_FILE")
        .env("HOME", servers().dir.join("home"))
        .env("PULSO_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pulso-flow")
}

fn run(url: &str, env: &[(&str, &str)]) -> Output {
    let file = servers().pipeline.display().to_string();
    let mut all = vec![("DATABASE_URL", url)];
    all.extend_from_slice(env);
    pulso(&["run", &file, "--summary", "json"], &all)
}

#[track_caller]
fn assert_loaded(out: &Output, case: &str) {
    assert_eq!(out.status.code(), Some(0), "{case}: {}", text(out));
    let summary = summary_json(out);
    assert_eq!(summary["nodes"][0]["status"], "ok", "{case}: {summary}");
    assert_no_password(out, case);
}

#[track_caller]
fn assert_refused(out: &Output, case: &str, reason: &str) {
    assert_ne!(
        out.status.code(),
        Some(0),
        "{case} connected: {}",
        text(out)
    );
    let all = text(out);
    assert!(
        all.contains(reason),
        "{case}: expected {reason:?} in\n{all}"
    );
    assert_no_password(out, case);
}

#[track_caller]
fn assert_no_password(out: &Output, case: &str) {
    let all = text(out);
    assert!(
        !all.contains(PASSWORD),
        "{case}: the password is in the output:\n{all}"
    );
}

fn db(cluster: &PgCluster, name: &str) -> String {
    cluster.create_database(name)
}

fn q(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn every_sslmode_behaves_as_libpq_documents_for_loads() {
    let s = servers();
    let d = db(&s.tls, "modes");
    let pd = db(&s.plain, "modes");
    let ca = q(&s.pki.ca);
    let other = q(&s.pki.other_ca);
    // `tlsonly` may log in over TLS only, `plainonly` without TLS only (pg_hba.conf): a load
    // that succeeds as `tlsonly` went over TLS.
    let tls_user = s.tls.url("tlsonly", "127.0.0.1", &d);
    let plain_user = s.tls.url("plainonly", "127.0.0.1", &d);
    let no_tls_server = s.plain.url("postgres", "127.0.0.1", &pd);

    // disable: never TLS.
    assert_refused(
        &run(&format!("{tls_user}?sslmode=disable"), &[]),
        "disable/tlsonly",
        "no encryption",
    );
    assert_loaded(
        &run(&format!("{plain_user}?sslmode=disable"), &[]),
        "disable/plainonly",
    );
    // allow: plain text first, TLS when the server refuses plain text.
    assert_loaded(&run(&tls_user, &[("PGSSLMODE", "allow")]), "allow/tlsonly");
    assert_loaded(
        &run(&plain_user, &[("PGSSLMODE", "allow")]),
        "allow/plainonly",
    );
    // prefer (the default): TLS when offered, plain text otherwise.
    assert_loaded(&run(&tls_user, &[]), "prefer/tlsonly");
    assert_loaded(&run(&plain_user, &[]), "prefer/plainonly");
    assert_loaded(&run(&no_tls_server, &[]), "prefer/ssl=off server");
    // require: TLS or nothing; no verification without a root certificate, verify-ca with one.
    assert_loaded(
        &run(&format!("{tls_user}?sslmode=require"), &[]),
        "require/tlsonly",
    );
    assert_refused(
        &run(&format!("{no_tls_server}?sslmode=require"), &[]),
        "require/ssl=off server",
        "server does not support TLS",
    );
    assert_refused(
        &run(&format!("{plain_user}?sslmode=require"), &[]),
        "require/plainonly",
        "SSL encryption",
    );
    assert_loaded(
        &run(
            &tls_user,
            &[("PGSSLMODE", "require"), ("PGSSLROOTCERT", &ca)],
        ),
        "require+right CA",
    );
    assert_refused(
        &run(
            &tls_user,
            &[("PGSSLMODE", "require"), ("PGSSLROOTCERT", &other)],
        ),
        "require+other CA",
        "UnknownIssuer",
    );
    // verify-ca: the chain, not the host name.
    let wrong_host = format!(
        "postgres://tlsonly:{PASSWORD}@wrong.example:{}/{d}?hostaddr=127.0.0.1",
        s.tls.port
    );
    assert_loaded(
        &run(
            &format!("{wrong_host}&sslmode=verify-ca&sslrootcert={ca}"),
            &[],
        ),
        "verify-ca/wrong host name",
    );
    assert_refused(
        &run(
            &format!("{tls_user}?sslmode=verify-ca&sslrootcert={other}"),
            &[],
        ),
        "verify-ca/other CA",
        "UnknownIssuer",
    );
    let out = run(&format!("{tls_user}?sslmode=verify-ca"), &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "verify-ca without a root: {}",
        text(&out)
    );
    assert!(text(&out).contains("sslrootcert"), "{}", text(&out));
    // verify-full: the chain and the host name (DNS or IP subject alternative name).
    let localhost = format!(
        "postgres://tlsonly:{PASSWORD}@localhost:{}/{d}?hostaddr=127.0.0.1",
        s.tls.port
    );
    assert_loaded(
        &run(
            &format!("{localhost}&sslmode=verify-full&sslrootcert={ca}"),
            &[],
        ),
        "verify-full/localhost",
    );
    assert_loaded(
        &run(
            &tls_user,
            &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &ca)],
        ),
        "verify-full/127.0.0.1",
    );
    assert_refused(
        &run(
            &format!("{wrong_host}&sslmode=verify-full&sslrootcert={ca}"),
            &[],
        ),
        "verify-full/wrong host name",
        "not valid for name \"wrong.example\"",
    );
    assert_refused(
        &run(
            &format!("{no_tls_server}?sslmode=verify-full&sslrootcert={ca}"),
            &[],
        ),
        "verify-full/ssl=off server",
        "server does not support TLS",
    );
    // sslrootcert=system: the test CA is not among the platform's roots.
    assert_refused(
        &run(&format!("{tls_user}?sslrootcert=system"), &[]),
        "verify-full/system roots",
        "UnknownIssuer",
    );
}

#[test]
fn client_certificates_log_in_with_clientcert_verify_full() {
    let s = servers();
    let d = db(&s.tls, "certs");
    let url = s.tls.url("certuser", "localhost", &d);
    let (cert, key) = (q(&s.pki.client_cert), q(&s.pki.client_key));
    let ca = q(&s.pki.ca);
    assert_loaded(
        &run(
            &format!("{url}?sslmode=verify-full&sslrootcert={ca}&sslcert={cert}&sslkey={key}"),
            &[],
        ),
        "client certificate in the URL",
    );
    assert_loaded(
        &run(
            &url,
            &[
                ("PGSSLMODE", "verify-full"),
                ("PGSSLROOTCERT", &ca),
                ("PGSSLCERT", &cert),
                ("PGSSLKEY", &key),
            ],
        ),
        "client certificate from PGSSLCERT/PGSSLKEY",
    );
    assert_refused(
        &run(&format!("{url}?sslmode=verify-full&sslrootcert={ca}"), &[]),
        "no client certificate",
        "certificate",
    );
    // libpq's rule: a private key others can read is refused.
    let loose = s.dir.join("loose.key");
    std::fs::copy(&s.pki.client_key, &loose).unwrap();
    tls_servers::set_mode(&loose, 0o644);
    assert_refused(
        &run(
            &format!("{url}?sslmode=require&sslcert={cert}&sslkey={}", q(&loose)),
            &[],
        ),
        "world-readable key",
        "group or world access",
    );
}

#[test]
fn pg_variables_and_the_password_file_work_without_database_url() {
    let s = servers();
    let d = db(&s.tls, "pgenv");
    let file = s.pipeline.display().to_string();
    let port = s.tls.port.to_string();
    let base = [
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", port.as_str()),
        ("PGUSER", "tlsonly"),
        ("PGDATABASE", d.as_str()),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut env = base.to_vec();
        env.extend_from_slice(extra);
        pulso(&["run", &file, "--summary", "json"], &env)
    };
    // PGPASSWORD.
    assert_loaded(&with(&[("PGPASSWORD", PASSWORD)]), "PGPASSWORD");
    // PGPASSFILE, private.
    let passfile = s.dir.join("pgpass");
    std::fs::write(
        &passfile,
        format!("# test\n127.0.0.1:{port}:*:tlsonly:{PASSWORD}\n"),
    )
    .unwrap();
    tls_servers::set_mode(&passfile, 0o600);
    assert_loaded(&with(&[("PGPASSFILE", &q(&passfile))]), "PGPASSFILE");
    // ~/.pgpass (HOME).
    let home = s.dir.join("pgpass-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::copy(&passfile, home.join(".pgpass")).unwrap();
    tls_servers::set_mode(&home.join(".pgpass"), 0o600);
    assert_loaded(&with(&[("HOME", &q(&home))]), "~/.pgpass");
    // A password file others can read is ignored, as libpq ignores it.
    tls_servers::set_mode(&passfile, 0o644);
    assert_refused(
        &with(&[("PGPASSFILE", &q(&passfile))]),
        "group-readable PGPASSFILE",
        "password",
    );
    // PGSSLMODE and PGSSLROOTCERT through the environment too.
    assert_loaded(
        &with(&[
            ("PGPASSWORD", PASSWORD),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", &q(&s.pki.ca)),
            ("PGAPPNAME", "pulso-env-test"),
        ]),
        "PGSSLMODE=verify-full",
    );
    // migrate and watermarks use the same resolution.
    let out = pulso(
        &["watermarks", "show"],
        &[base.as_slice(), &[("PGPASSWORD", PASSWORD)]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cuentas"),
        "{}",
        text(&out)
    );
    // Nothing at all: the usage error names the ways to configure it.
    let out = pulso(&["run", &file], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("DATABASE_URL_FILE") && text(&out).contains("PGHOST"),
        "{}",
        text(&out)
    );
}

#[test]
fn database_url_file_is_read_and_misuse_is_a_usage_error() {
    let s = servers();
    let d = db(&s.tls, "secretfile");
    let file = s.pipeline.display().to_string();
    let url = s.tls.url("tlsonly", "127.0.0.1", &d);
    let secret = s.dir.join("database-url");
    // As `kubectl create secret --from-file` or `echo` write it: one trailing newline.
    std::fs::write(
        &secret,
        format!("{url}?sslmode=verify-full&sslrootcert={}\n", q(&s.pki.ca)),
    )
    .unwrap();
    let secret = q(&secret);
    assert_loaded(
        &pulso(
            &["run", &file, "--summary", "json"],
            &[("DATABASE_URL_FILE", &secret)],
        ),
        "DATABASE_URL_FILE",
    );
    let out = pulso(
        &["run", &file],
        &[("DATABASE_URL_FILE", &secret), ("DATABASE_URL", &url)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("both DATABASE_URL and DATABASE_URL_FILE"),
        "{}",
        text(&out)
    );
    assert_no_password(&out, "both set");
    let out = pulso(
        &["migrate"],
        &[("DATABASE_URL_FILE", "/nonexistent/database-url")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("/nonexistent/database-url"),
        "{}",
        text(&out)
    );
}

/// Every command, in success and in failure, with debug logs: the password never shows.
#[test]
fn no_output_of_the_cli_holds_the_password() {
    let s = servers();
    let d = db(&s.tls, "nopw");
    let file = s.pipeline.display().to_string();
    let good = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        s.tls.url("tlsonly", "localhost", &d),
        q(&s.pki.ca)
    );
    let debug = [("PULSO_LOG", "debug")];
    let mut outputs = vec![
        ("migrate", pulso(&["migrate"], &[("DATABASE_URL", &good)])),
        ("run json", run(&good, &debug)),
        (
            "run table",
            pulso(
                &["run", &file],
                &[("DATABASE_URL", &good), ("PULSO_LOG", "debug")],
            ),
        ),
        (
            "explain",
            pulso(&["explain", &file], &[("DATABASE_URL", &good)]),
        ),
        (
            "explain json",
            pulso(
                &["explain", &file, "--format", "json"],
                &[("DATABASE_URL", &good)],
            ),
        ),
        ("list", pulso(&["list", &file], &[("DATABASE_URL", &good)])),
        (
            "validate",
            pulso(&["validate", &file], &[("DATABASE_URL", &good)]),
        ),
        (
            "watermarks",
            pulso(&["watermarks", "show"], &[("DATABASE_URL", &good)]),
        ),
        (
            "--database-url flag",
            pulso(&["--database-url", &good, "watermarks", "show"], &[]),
        ),
        (
            "help",
            pulso(&["run", "--help"], &[("DATABASE_URL", &good)]),
        ),
    ];
    // Failures: wrong password (that one must not show either), a refused TLS session, nobody
    // listening, a bad parameter, a bad sslmode.
    let wrong_pw = "Wrong-pw-8d1e-s3cr3t";
    let wrong = good.replace(PASSWORD, wrong_pw);
    outputs.push(("wrong password", run(&wrong, &debug)));
    outputs.push((
        "wrong CA",
        run(&good.replace(&q(&s.pki.ca), &q(&s.pki.other_ca)), &debug),
    ));
    outputs.push((
        "nobody listening",
        run(
            &format!("postgres://tlsonly:{PASSWORD}@127.0.0.1:1/{d}"),
            &debug,
        ),
    ));
    outputs.push((
        "unknown parameter",
        run(&format!("{good}&sslcrl={PASSWORD}"), &debug),
    ));
    outputs.push(("bad sslmode", run(&format!("{good}&sslmode=maybe"), &debug)));
    outputs.push((
        "keyword string",
        run(
            &format!("host=127.0.0.1 port={} dbname={d} user=tlsonly password='{PASSWORD}' sslmode=require", s.tls.port),
            &debug,
        ),
    ));
    for (case, out) in &outputs {
        assert_no_password(out, case);
        assert!(
            !text(out).contains(wrong_pw),
            "{case}: the wrong password is in the output:\n{}",
            text(out)
        );
    }
    // The successes succeeded and the failures failed (so the grep looked at real output).
    for (case, out) in &outputs[..10] {
        assert_eq!(out.status.code(), Some(0), "{case}: {}", text(out));
    }
    for (case, out) in &outputs[10..15] {
        assert_ne!(out.status.code(), Some(0), "{case}: {}", text(out));
    }
    assert!(text(&outputs[10].1).contains("password authentication failed"));
    assert_eq!(
        outputs[15].1.status.code(),
        Some(0),
        "{}",
        text(&outputs[15].1)
    );
}

/// `serve` with passwords in `DATABASE_URL` and `REDIS_URL` and a refresh token from a file:
/// none of them appears in its logs or in any answer, healthy or not; SIGTERM stops it.
#[test]
fn no_output_of_serve_holds_a_secret() {
    let s = servers();
    let d = db(&s.tls, "nopwapi");
    let redis = RedisTls::start(&s.pki, false);
    let token = "Tok-41c9-refresh-s3cr3t-token";
    let token_file = write(&s.dir, "refresh-token", &format!("{token}\n"));
    let monitor = "Mon-77ab-monitor-s3cr3t-token";
    let monitor_file = write(&s.dir, "monitor-token", &format!("{monitor}\n"));
    let url_file = write(
        &s.dir,
        "api-database-url",
        &format!(
            "{}?sslmode=verify-full&sslrootcert={}\n",
            s.tls.url("tlsonly", "localhost", &d),
            q(&s.pki.ca)
        ),
    );
    let migrate = pulso(&["migrate"], &[("DATABASE_URL_FILE", &q(&url_file))]);
    assert_eq!(migrate.status.code(), Some(0), "{}", text(&migrate));

    for (case, redis_password, db_file) in [
        ("healthy", PASSWORD, url_file.clone()),
        (
            "wrong passwords",
            "Wrong-redis-pw",
            write(
                &s.dir,
                "bad-url",
                &format!(
                    "postgres://tlsonly:Wrong-pw@localhost:{}/{d}?sslmode=require\n",
                    s.tls.port
                ),
            ),
        ),
    ] {
        let port = tls_servers::free_port();
        let bind = format!("127.0.0.1:{port}");
        let redis_url = redis.url(&format!("pulso:{redis_password}"));
        let mut child = Command::new(common::bin())
            .args(["serve", "--bind", &bind])
            .env_remove("DATABASE_URL")
            .env("DATABASE_URL_FILE", &db_file)
            .env("REDIS_URL", &redis_url)
            .env("REDIS_TLS_CA_FILE", &s.pki.ca)
            .env("PULSO_API_REFRESH_TOKEN_FILE", &token_file)
            .env("PULSO_API_MONITOR_TOKEN_FILE", &monitor_file)
            .env("PULSO_API_PIPELINE", &s.pipeline)
            .env("PULSO_LOG", "debug")
            .env("HOME", s.dir.join("home"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve");
        // Drain both pipes while it runs: debug logs would fill a pipe and block the server.
        let drain = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).to_string()
            })
        };
        // A failing assertion must not leave the server running.
        struct KillOnDrop(Option<u32>);
        impl Drop for KillOnDrop {
            fn drop(&mut self) {
                if let Some(pid) = self.0 {
                    // SAFETY: signalling our own child, not reaped yet.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                }
            }
        }
        let mut guard = KillOnDrop(Some(child.id()));
        let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
        let logs = move |child_status: Option<i32>| {
            format!(
                "status: {child_status:?}\nstdout:\n{}\nstderr:\n{}",
                stdout.join().unwrap_or_default(),
                stderr.join().unwrap_or_default()
            )
        };
        let mut bodies = String::new();
        let t0 = Instant::now();
        let ready = loop {
            // With the monitoring token: /ready then shows the connection errors' text too.
            let out = curl(&[
                "-H",
                &format!("Authorization: Bearer {monitor}"),
                &format!("http://{bind}/ready"),
            ]);
            if case == "wrong passwords" && out.contains(r#""postgres":{"status":"down""#) {
                break out;
            }
            if all_up(&out) || t0.elapsed() > Duration::from_secs(30) {
                break out;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if case == "healthy" && !all_up(&ready) {
            let _ = child.kill();
            let status = child.wait().ok().and_then(|s| s.code());
            guard.0 = None;
            panic!("serve never got ready: {ready}\n{}", logs(status));
        } else if case != "healthy" {
            assert!(ready.contains("down"), "{ready}");
        }
        bodies.push_str(&ready);
        for path in [
            "/health",
            "/api/v1/etl/status",
            "/metrics",
            "/api/v1/dashboard",
            "/docs",
        ] {
            bodies.push_str(&curl(&[&format!("http://{bind}{path}")]));
        }
        // A refresh with the wrong token, and one with the right one (its run shows in status).
        bodies.push_str(&curl(&[
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer not-the-token-0000",
            &format!("http://{bind}/api/v1/refresh"),
        ]));
        bodies.push_str(&curl(&[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("http://{bind}/api/v1/refresh"),
        ]));
        std::thread::sleep(Duration::from_millis(500));
        bodies.push_str(&curl(&[&format!("http://{bind}/api/v1/etl/status")]));
        // SIGTERM: a graceful stop with exit 0.
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "serve ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = child.wait().unwrap().code();
        guard.0 = None;
        let output = logs(status);
        assert_eq!(status, Some(0), "{case}: {output}");
        let all = format!("{output}\n{bodies}");
        for secret in [PASSWORD, token, monitor, redis_password, "Wrong-pw"] {
            assert!(!all.contains(secret), "{case}: {secret:?} leaked:\n{all}");
        }
    }
}

/// PostgreSQL, Redis and the LISTEN connection all up in a `/ready` answer (the table has not
/// been loaded yet, so the status itself is "degraded").
fn all_up(ready: &str) -> bool {
    ready.contains(r#""postgres":{"status":"up""#)
        && ready.contains(r#""redis":{"status":"up""#)
        && ready.contains(r#""listener":{"status":"up"}"#)
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-m", "10"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}
