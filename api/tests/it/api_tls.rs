//! The API's PostgreSQL pool and LISTEN connection under every sslmode, and Redis over TLS with
//! an ACL user and client certificates, against private servers made by the test
//! (testkit/src/tls.rs at the workspace root): a cluster with `ssl=on` and a
//! certificate from the test's CA, one with `ssl=off`, and `redis-server --tls-port`.

use pulso_testkit as common;
use pulso_testkit::tls as tls_servers;

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use common::{TestServer, config, get_json};
use pulso_api::Api;
use pulso_api::cache::RedisCache;
use pulso_api::config::RedisTlsFiles;
use tls_servers::{PASSWORD, PgCluster, Pki, RedisTls};

struct Servers {
    pki: Pki,
    tls: PgCluster,
    plain: PgCluster,
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let dir = tls_servers::scratch_dir("tls-api");
        let pki = Pki::new(&dir.join("pki"));
        Servers {
            tls: PgCluster::start("pg-tls", Some(&pki)),
            plain: PgCluster::start("pg-plain", None),
            pki,
        }
    })
}

fn q(p: &Path) -> String {
    p.display().to_string()
}

/// What the pool and the listener did with `url` (a database of its own per case, so the
/// server's session list shows only this API).
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Both connected; whether their sessions are TLS (`pg_stat_ssl`).
    Up { pool_tls: bool, listener_tls: bool },
    /// Neither could connect; `/ready` says why.
    Down(String),
}

async fn probe(cluster: &PgCluster, db: &str, url: &str) -> Outcome {
    let mut cfg = config(url);
    cfg.pool_size = 2;
    // /ready shows the connection error's text only to a monitoring token.
    cfg.monitor_token = Some(MONITOR_TOKEN.into());
    let api = Api::build(cfg).await.expect("api builds");
    let state = api.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api.serve(listener, async {
        let _ = rx.await;
    }));
    let mut outcome = Outcome::Down("never asked".into());
    for _ in 0..100 {
        let ready: serde_json::Value = common::http()
            .get(format!("{base}/ready"))
            .bearer_auth(MONITOR_TOKEN)
            .send()
            .await
            .expect("GET /ready")
            .json()
            .await
            .expect("/ready is JSON");
        let pg = &ready["checks"]["postgres"];
        if pg["status"] == "down" {
            // Give the listener the same chance; it must not get in either.
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(
                !state.version.is_live(),
                "the listener connected where the pool could not"
            );
            outcome = Outcome::Down(pg["error"].as_str().unwrap_or_default().to_string());
            break;
        }
        if pg["status"] == "up" && state.version.is_live() {
            let ssl = |app: &str| {
                cluster.query_value(
                    db,
                    &format!(
                        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                         WHERE a.datname = '{db}' AND a.application_name = '{app}'"
                    ),
                ) == "t"
            };
            outcome = Outcome::Up {
                pool_tls: ssl("pulso-flow-api"),
                listener_tls: ssl("pulso-flow-api-listener"),
            };
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = tx.send(());
    let _ = server.await;
    outcome
}

const MONITOR_TOKEN: &str = "monitor-token-0123456789";

const TLS: Outcome = Outcome::Up {
    pool_tls: true,
    listener_tls: true,
};
const PLAIN: Outcome = Outcome::Up {
    pool_tls: false,
    listener_tls: false,
};

#[track_caller]
fn assert_down(outcome: Outcome, reason: &str, case: &str) {
    match outcome {
        Outcome::Down(why) => {
            assert!(
                why.contains(reason),
                "{case}: expected {reason:?} in {why:?}"
            );
            assert!(!why.contains(PASSWORD), "{case}: password in {why:?}");
        }
        up => panic!("{case}: connected ({up:?})"),
    }
}

/// A fresh database with pulso-flow's migrations (the listener reads `pulso_flow.watermarks`).
fn migrated(cluster: &PgCluster, name: &str) -> String {
    let db = cluster.create_database(name);
    let url = cluster.url("postgres", "127.0.0.1", &db);
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(pulso_sinks::migrate::migrate_url(&url))
            .expect("migrate")
    })
    .join()
    .unwrap();
    db
}

/// What one sslmode case must do.
enum Expect {
    Up(Outcome),
    /// Neither connects, and `/ready` names this reason.
    Down(&'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_and_listener_follow_every_sslmode() {
    let s = servers();
    let ca = q(&s.pki.ca);
    let other = q(&s.pki.other_ca);
    let client_cert = format!(
        "sslcert={}&sslkey={}",
        q(&s.pki.client_cert),
        q(&s.pki.client_key)
    );
    let url = |cluster: &PgCluster, user: &str, host: &str, db: &str, params: &str| {
        format!("{}?{params}", cluster.url(user, host, db))
    };
    // (case, server, user, host, parameters, expected): libpq's documented behaviour per mode.
    #[rustfmt::skip]
    let cases: Vec<(&str, &PgCluster, &str, &str, String, Expect)> = vec![
        ("disable", &s.tls, "plainonly", "127.0.0.1", "sslmode=disable".into(), Expect::Up(PLAIN)),
        ("disable/tlsonly", &s.tls, "tlsonly", "127.0.0.1", "sslmode=disable".into(), Expect::Down("no encryption")),
        ("allow", &s.tls, "tlsonly", "127.0.0.1", "sslmode=allow".into(), Expect::Up(TLS)),
        ("prefer", &s.tls, "tlsonly", "127.0.0.1", "sslmode=prefer".into(), Expect::Up(TLS)),
        ("prefer/ssl=off", &s.plain, "postgres", "127.0.0.1", "sslmode=prefer".into(), Expect::Up(PLAIN)),
        ("require", &s.tls, "tlsonly", "127.0.0.1", "sslmode=require".into(), Expect::Up(TLS)),
        ("require/ssl=off", &s.plain, "postgres", "127.0.0.1", "sslmode=require".into(), Expect::Down("server does not support TLS")),
        ("require/other CA", &s.tls, "tlsonly", "127.0.0.1", format!("sslmode=require&sslrootcert={other}"), Expect::Down("UnknownIssuer")),
        ("verify-ca/wrong host", &s.tls, "tlsonly", "wrong.example", format!("hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={ca}"), Expect::Up(TLS)),
        ("verify-ca/other CA", &s.tls, "tlsonly", "127.0.0.1", format!("sslmode=verify-ca&sslrootcert={other}"), Expect::Down("UnknownIssuer")),
        ("verify-full/localhost", &s.tls, "tlsonly", "localhost", format!("hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"), Expect::Up(TLS)),
        ("verify-full/wrong host", &s.tls, "tlsonly", "wrong.example", format!("hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"), Expect::Down("not valid for name")),
        ("client certificate", &s.tls, "certuser", "localhost", format!("sslmode=verify-full&sslrootcert={ca}&{client_cert}"), Expect::Up(TLS)),
    ];
    for (n, (case, cluster, user, host, params, expect)) in cases.into_iter().enumerate() {
        let db = migrated(cluster, &format!("api_tls_{n}"));
        let outcome = probe(cluster, &db, &url(cluster, user, host, &db, &params)).await;
        match expect {
            Expect::Up(up) => assert_eq!(outcome, up, "{case}"),
            Expect::Down(reason) => assert_down(outcome, reason, case),
        }
    }
    // verify-full without a root certificate: refused before connecting, at startup.
    let err = Api::build(config(&url(
        &s.tls,
        "tlsonly",
        "127.0.0.1",
        "x",
        "sslmode=verify-full",
    )))
    .await
    .err()
    .expect("verify-full without sslrootcert must not start")
    .to_string();
    assert!(
        err.contains("sslrootcert") && !err.contains(PASSWORD),
        "{err}"
    );
}

async fn redis_ping(url: &str, tls: &RedisTlsFiles) -> Result<Duration, String> {
    let cache = RedisCache::new(
        url,
        tls,
        Duration::from_secs(60),
        Duration::from_secs(3),
        pulso_api::metrics::Metrics::new(),
    )?;
    cache.ping().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_with_an_acl_user_and_client_certificates() {
    let s = servers();
    let redis = RedisTls::start(&s.pki, false);
    let ca_only = RedisTlsFiles {
        ca: Some(s.pki.ca.clone()),
        ..Default::default()
    };
    let user = format!("pulso:{PASSWORD}");
    redis_ping(&redis.url(&user), &ca_only)
        .await
        .expect("rediss:// with the CA and the ACL user");
    // AUTH with a wrong password is refused, and the error does not repeat it.
    let e = redis_ping(&redis.url("pulso:Wrong-redis-pw"), &ca_only)
        .await
        .unwrap_err();
    assert!(
        e.to_lowercase().contains("authentication failed") && !e.contains("Wrong-redis-pw"),
        "{e}"
    );
    // The default user is off: no anonymous access.
    let anonymous = format!("rediss://localhost:{}", redis.port);
    assert!(redis_ping(&anonymous, &ca_only).await.is_err());
    // Without the CA, the system's roots do not know the test's certificate.
    let e = redis_ping(&redis.url(&user), &RedisTlsFiles::default())
        .await
        .unwrap_err();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    // Plain text to the TLS port goes nowhere.
    let plain = format!("redis://{user}@localhost:{}", redis.port);
    assert!(redis_ping(&plain, &RedisTlsFiles::default()).await.is_err());
    // TLS files with a redis:// URL are a configuration error.
    assert!(
        RedisCache::new(
            &plain,
            &ca_only,
            Duration::from_secs(1),
            Duration::from_secs(1),
            pulso_api::metrics::Metrics::new()
        )
        .is_err()
    );

    // A Redis that requires client certificates.
    let mtls = RedisTls::start(&s.pki, true);
    let with_cert = RedisTlsFiles {
        ca: Some(s.pki.ca.clone()),
        cert: Some(s.pki.client_cert.clone()),
        key: Some(s.pki.client_key.clone()),
    };
    redis_ping(&mtls.url(&user), &with_cert)
        .await
        .expect("client certificate accepted");
    assert!(redis_ping(&mtls.url(&user), &ca_only).await.is_err());
}

/// The whole API with Redis over TLS from the environment's variables (as `serve` reads them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_caches_in_redis_over_tls() {
    let s = servers();
    let redis = RedisTls::start(&s.pki, false);
    let d = migrated(&s.tls, "api_tls_redis");
    let env = [
        (
            "DATABASE_URL",
            format!(
                "{}?sslmode=verify-full&sslrootcert={}",
                s.tls.url("tlsonly", "localhost", &d),
                q(&s.pki.ca)
            ),
        ),
        ("REDIS_URL", redis.url(&format!("pulso:{PASSWORD}"))),
        ("REDIS_TLS_CA_FILE", q(&s.pki.ca)),
    ];
    let mut cfg = pulso_api::ApiConfig::from_lookup(|k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .expect("config");
    let base = config("unused");
    cfg.redis_prefix = base.redis_prefix;
    cfg.access_log = false;
    cfg.pipeline_file = base.pipeline_file;
    let server = TestServer::start(cfg).await;
    common::eventually(10, "redis up", || async {
        let (_, r) = get_json(&server.url("/ready")).await;
        r["checks"]["redis"]["status"] == "up" && r["checks"]["postgres"]["status"] == "up"
    })
    .await;
    server.stop().await;
}
