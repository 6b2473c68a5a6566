//! Private TLS servers for the connection tests: a certificate authority made by the test
//! (rcgen), PostgreSQL clusters (`initdb`/`pg_ctl` as the `postgres` user, on a free port) with
//! `ssl=on` or `ssl=off`, and Redis with `--tls-port` and an ACL user.
//!
//! Each server lives as long as the test process: a watchdog shell stops it and removes its
//! directory once the process is gone, so a shared `OnceLock` server needs no teardown code and
//! a panicking test leaves nothing running.
//!
//! Roles and `pg_hba.conf` of the clusters (first match wins):
//!
//! | user | from | how |
//! |---|---|---|
//! | `postgres` | Unix socket | trust (setup only) |
//! | `certuser` | TLS | a client certificate whose CN is the user (`cert`, i.e. `clientcert=verify-full`) |
//! | `tlsonly` | TLS only (plain text is rejected) | password |
//! | `plainonly` | plain text only (TLS is rejected) | password |
//! | everyone else | either | password (`scram-sha-256`) |

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The password of every role of the test clusters (and of the Redis ACL user): the
/// no-password-in-output tests grep for it.
pub const PASSWORD: &str = "Pw-9f3c2e7a-s3cr3t";

/// A test certificate authority and what it signed, as PEM files in `dir`.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    /// A second, unrelated CA: nothing the servers present chains to it.
    pub other_ca: PathBuf,
    /// Server certificate for `localhost` and `127.0.0.1`, and its key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Client certificate with CN `certuser`, and its key (mode 0600).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        std::fs::create_dir_all(dir).expect("pki dir");
        let ca = |name: &str| {
            let key = KeyPair::generate().expect("ca key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.self_signed(&key).expect("ca cert");
            (cert.pem(), Issuer::new(params, key))
        };
        let (ca_pem, issuer) = ca("pulso-flow test CA");
        let (other_pem, _) = ca("unrelated CA");
        let leaf = |sans: Vec<String>, cn: &str| {
            let key = KeyPair::generate().expect("leaf key");
            let mut params = CertificateParams::new(sans).expect("leaf params");
            params.distinguished_name.push(DnType::CommonName, cn);
            let cert = params.signed_by(&key, &issuer).expect("leaf cert");
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key) =
            leaf(vec!["localhost".into(), "127.0.0.1".into()], "localhost");
        let (client_pem, client_key) = leaf(Vec::new(), "certuser");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write pem");
            set_mode(&path, 0o600);
            path
        };
        Pki {
            dir: dir.to_path_buf(),
            ca: write("ca.pem", &ca_pem),
            other_ca: write("other-ca.pem", &other_pem),
            server_cert: write("server.pem", &server_pem),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_pem),
            client_key: write("client.key", &client_key),
        }
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A directory under /tmp that the `postgres` user can enter, removed when the process ends.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = new_dir(tag);
    watchdog(":", &dir);
    dir
}

/// A directory under /tmp that the `postgres` user can enter (the caller removes it).
fn new_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pulso-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    set_mode(&dir, 0o755);
    dir
}

/// Stop `stop_command` and remove `dir` when this process has ended.
// Never waited for on purpose: the watchdog outlives this process (init reaps it).
#[allow(clippy::zombie_processes)]
fn watchdog(stop_command: &str, dir: &Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop_command} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watchdog");
}

/// `initdb` and `pg_ctl`: on PATH, or in Debian's versioned directory.
fn pg_bin(name: &str) -> PathBuf {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin").join(name))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .filter(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found (apt-get install postgresql)"))
}

fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(program);
    c
}

fn check(out: std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private PostgreSQL cluster on 127.0.0.1.
pub struct PgCluster {
    pub port: u16,
    pub dir: PathBuf,
    pub ssl: bool,
}

impl PgCluster {
    /// `ssl = on` with `pki`'s server certificate (and its CA for client certificates), or
    /// `ssl = off` when `pki` is `None`.
    pub fn start(tag: &str, pki: Option<&Pki>) -> PgCluster {
        let dir = new_dir(tag);
        let data = dir.join("data");
        let port = free_port();
        check(
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .output()
                .expect("chown"),
            "chown",
        );
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("pwfile");
        check(
            Command::new("chown")
                .arg("postgres")
                .arg(&pwfile)
                .output()
                .expect("chown"),
            "chown",
        );
        check(
            as_postgres(&pg_bin("initdb"))
                .args([
                    "-A",
                    "scram-sha-256",
                    "--auth-local=trust",
                    "-U",
                    "postgres",
                ])
                .arg(format!("--pwfile={}", pwfile.display()))
                .arg("-D")
                .arg(&data)
                .output()
                .expect("initdb"),
            "initdb",
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             fsync = off\nshared_buffers = 16MB\nmax_connections = 60\n",
            dir.display()
        );
        if let Some(pki) = pki {
            // The server key must belong to postgres and be private.
            for (src, name) in [
                (&pki.server_cert, "server.crt"),
                (&pki.server_key, "server.key"),
                (&pki.ca, "ca.crt"),
            ] {
                let dst = data.join(name);
                std::fs::copy(src, &dst).expect("copy pem");
                set_mode(&dst, 0o600);
                check(
                    Command::new("chown")
                        .arg("postgres")
                        .arg(&dst)
                        .output()
                        .expect("chown"),
                    "chown",
                );
            }
            conf.push_str(
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\n",
            );
        } else {
            conf.push_str("ssl = off\n");
        }
        std::fs::write(data.join("postgresql.auto.conf"), conf).expect("conf");
        let hba = "local all postgres trust\n\
                   hostssl all certuser 127.0.0.1/32 cert\n\
                   hostssl all tlsonly 127.0.0.1/32 scram-sha-256\n\
                   host all tlsonly 127.0.0.1/32 reject\n\
                   hostnossl all plainonly 127.0.0.1/32 scram-sha-256\n\
                   host all plainonly 127.0.0.1/32 reject\n\
                   host all all 127.0.0.1/32 scram-sha-256\n";
        std::fs::write(data.join("pg_hba.conf"), hba).expect("hba");
        check(
            as_postgres(&pg_bin("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .args(["-w", "-t", "60", "start"])
                .output()
                .expect("pg_ctl start"),
            "pg_ctl start",
        );
        watchdog(
            &format!(
                "runuser -u postgres -- '{}' -D '{}' stop -m immediate",
                pg_bin("pg_ctl").display(),
                data.display()
            ),
            &dir,
        );
        let cluster = PgCluster {
            port,
            dir,
            ssl: pki.is_some(),
        };
        cluster.psql(&format!(
            "CREATE ROLE certuser LOGIN SUPERUSER; \
             CREATE ROLE tlsonly LOGIN SUPERUSER PASSWORD '{PASSWORD}'; \
             CREATE ROLE plainonly LOGIN SUPERUSER PASSWORD '{PASSWORD}';"
        ));
        cluster
    }

    /// Run SQL as the superuser over the Unix socket.
    pub fn psql(&self, sql: &str) {
        check(
            Command::new("runuser")
                .args([
                    "-u",
                    "postgres",
                    "--",
                    "psql",
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                ])
                .args([
                    "-h",
                    &self.dir.display().to_string(),
                    "-p",
                    &self.port.to_string(),
                ])
                .args(["-d", "postgres", "-c", sql])
                .output()
                .expect("psql"),
            "psql",
        );
    }

    /// A fresh database for one test.
    pub fn create_database(&self, name: &str) -> String {
        self.psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        self.psql(&format!("CREATE DATABASE {name}"));
        name.to_string()
    }

    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (the password only where the role has one).
    pub fn url(&self, user: &str, host: &str, db: &str) -> String {
        let auth = if user == "certuser" {
            user.to_string()
        } else {
            format!("{user}:{PASSWORD}")
        };
        format!("postgres://{auth}@{host}:{}/{db}", self.port)
    }

    /// One value (first column of the first row) as text, via psql.
    pub fn query_value(&self, db: &str, sql: &str) -> String {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--", "psql", "-X", "-At"])
            .args([
                "-h",
                &self.dir.display().to_string(),
                "-p",
                &self.port.to_string(),
            ])
            .args(["-d", db, "-c", sql])
            .output()
            .expect("psql");
        check(out.clone(), "psql query");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A private Redis with only a TLS port and an ACL user `pulso` (password [`PASSWORD`]); the
/// default user is off. With `client_certs`, clients must present a certificate of the CA.
pub struct RedisTls {
    pub port: u16,
    pub dir: PathBuf,
}

impl RedisTls {
    // The server runs until the watchdog stops it after this process has ended; nobody here
    // waits for it.
    #[allow(clippy::zombie_processes)]
    pub fn start(pki: &Pki, client_certs: bool) -> RedisTls {
        let dir = new_dir("redis");
        let port = free_port();
        let acl = dir.join("users.acl");
        std::fs::write(
            &acl,
            format!("user default off\nuser pulso on >{PASSWORD} ~* &* +@all\n"),
        )
        .expect("acl file");
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .arg("--tls-cert-file")
            .arg(&pki.server_cert)
            .arg("--tls-key-file")
            .arg(&pki.server_key)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca)
            .args([
                "--tls-auth-clients",
                if client_certs { "yes" } else { "no" },
            ])
            .arg("--aclfile")
            .arg(&acl)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        watchdog(&format!("kill {}", child.id()), &dir);
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("redis-server exited: {status}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisTls { port, dir }
    }

    pub fn url(&self, user_and_password: &str) -> String {
        format!("rediss://{user_and_password}@localhost:{}", self.port)
    }
}
