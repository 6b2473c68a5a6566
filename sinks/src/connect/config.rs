//! [`PgConnectConfig`]: a connection string plus the libpq environment, resolved as libpq does.
//!
//! Precedence, per parameter: the connection string (URI or keyword/value) → its `PG*`
//! environment variable → libpq's default. The password, when none is given, comes from the
//! password file. TLS follows libpq's `sslmode`, `sslrootcert`, `sslcert`, `sslkey` and `sslsni`
//! (see [`super::tls`] for what each mode checks).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::ConnectError;
use super::params::{self, Params};
use super::pgpass;
use super::tls::{RootCert, TlsSettings, Verify};

/// libpq's `sslmode`, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl FromStr for SslMode {
    type Err = ConnectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(ConnectError::invalid(
                    "sslmode",
                    format!(
                        "{other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                    ),
                ));
            }
        })
    }
}

/// libpq environment variables and the keyword each one fills.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGDATABASE", "dbname"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGPASSFILE", "passfile"),
    ("PGOPTIONS", "options"),
    ("PGAPPNAME", "application_name"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLSNI", "sslsni"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
    ("PGGSSENCMODE", "gssencmode"),
];

/// Keywords handed to tokio-postgres as they are (it validates their values).
const PASSED_THROUGH: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "options",
    "application_name",
    "sslnegotiation",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// Keywords resolved here.
const HANDLED_HERE: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslsni",
    "passfile",
    "fallback_application_name",
    "gssencmode",
    "sslcompression",
];

/// Whether the environment names a database by itself (`PGHOST`, `PGHOSTADDR`, `PGPORT`,
/// `PGDATABASE` or `PGUSER`): then no `DATABASE_URL` is needed, as with psql.
pub fn env_names_a_database(env: impl Fn(&str) -> Option<String>) -> bool {
    ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER"]
        .iter()
        .any(|v| env(v).is_some_and(|s| !s.is_empty()))
}

/// A resolved connection: tokio-postgres' settings (hosts, user, password, …) and the TLS ones.
#[derive(Clone)]
pub struct PgConnectConfig {
    pg: tokio_postgres::Config,
    ssl_mode: SslMode,
    tls: TlsSettings,
    all_unix_sockets: bool,
}

impl std::fmt::Debug for PgConnectConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password: only what `describe` shows.
        f.debug_struct("PgConnectConfig")
            .field("target", &self.describe())
            .finish()
    }
}

impl PgConnectConfig {
    /// Resolve `conninfo` (a URI, a keyword/value string, or empty) with the process environment.
    pub fn from_env(conninfo: &str) -> Result<Self, ConnectError> {
        Self::from_lookup(conninfo, |k| std::env::var(k).ok())
    }

    /// Resolve `conninfo` with `env` standing for the environment.
    pub fn from_lookup(
        conninfo: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConnectError> {
        let mut p = params::parse(conninfo)?;
        for (var, key) in ENV_VARS {
            if !p.contains_key(*key)
                && let Some(v) = env(var).filter(|v| !v.is_empty())
            {
                p.insert((*key).to_string(), v);
            }
        }
        for key in p.keys() {
            if !PASSED_THROUGH.contains(&key.as_str()) && !HANDLED_HERE.contains(&key.as_str()) {
                return Err(ConnectError::invalid(
                    key,
                    "unknown or unsupported connection parameter",
                ));
            }
        }
        if let Some(mode) = p.get("gssencmode")
            && mode == "require"
        {
            return Err(ConnectError::invalid(
                "gssencmode",
                "GSSAPI encryption is not supported; use sslmode",
            ));
        }
        let home = env("HOME").map(PathBuf::from);
        apply_defaults(&mut p, &env)?;
        if !p.contains_key("password")
            && let Some(pw) = password_from_file(&p, home.as_deref())
        {
            p.insert("password".into(), pw);
        }
        let (ssl_mode, tls) = tls_settings(&p, home.as_deref())?;

        let mut text = String::new();
        for (k, v) in p
            .iter()
            .filter(|(k, _)| PASSED_THROUGH.contains(&k.as_str()))
        {
            text.push_str(k);
            text.push('=');
            text.push_str(&params::quote(v));
            text.push(' ');
        }
        // tokio-postgres checks the values; its errors name the option, never the value.
        let pg = tokio_postgres::Config::from_str(&text).map_err(|e| {
            let reason =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
            ConnectError::invalid("connection string", reason)
        })?;
        let all_unix_sockets = !pg.get_hosts().is_empty()
            && pg.get_hostaddrs().is_empty()
            && pg
                .get_hosts()
                .iter()
                .all(|h| !matches!(h, tokio_postgres::config::Host::Tcp(_)));
        Ok(PgConnectConfig {
            pg,
            ssl_mode,
            tls,
            all_unix_sockets,
        })
    }

    /// tokio-postgres' part (hosts, ports, user, password, database, options, timeouts). Its TLS
    /// mode is set per connection by [`super::connect_with`].
    pub fn tokio_config(&self) -> &tokio_postgres::Config {
        &self.pg
    }

    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    pub fn tls_settings(&self) -> &TlsSettings {
        &self.tls
    }

    /// Unix sockets only: libpq never uses TLS on them, whatever `sslmode` says.
    pub fn is_unix_socket_only(&self) -> bool {
        self.all_unix_sockets
    }

    /// Set `application_name` unless the connection string or `PGAPPNAME` chose one (libpq's
    /// `fallback_application_name`).
    pub fn fallback_application_name(&mut self, name: &str) -> &mut Self {
        if self.pg.get_application_name().is_none() {
            self.pg.application_name(name);
        }
        self
    }

    /// `host=… [hostaddr=…] port=… dbname=… user=… sslmode=…`: what to show people (never the
    /// password).
    pub fn describe(&self) -> String {
        let join = |items: Vec<String>| items.join(",");
        let hosts = join(
            self.pg
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(s) => s.clone(),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect(),
        );
        let addrs = join(
            self.pg
                .get_hostaddrs()
                .iter()
                .map(|a| a.to_string())
                .collect(),
        );
        let ports = match join(self.pg.get_ports().iter().map(u16::to_string).collect()) {
            p if p.is_empty() => "5432".to_string(),
            p => p,
        };
        let mut text = format!("host={hosts} ");
        if !addrs.is_empty() && addrs != hosts {
            text.push_str(&format!("hostaddr={addrs} "));
        }
        text.push_str(&format!(
            "port={ports} dbname={} user={} sslmode={}",
            self.pg.get_dbname().unwrap_or("-"),
            self.pg.get_user().unwrap_or("-"),
            self.ssl_mode.as_str()
        ));
        text
    }

    /// Host, port and database: what identifies the database (not who connects to it).
    pub fn identity(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}",
            self.pg.get_hosts(),
            self.pg.get_ports(),
            self.pg.get_dbname()
        )
    }
}

/// libpq's defaults for what neither the string nor the environment gave: the Unix socket
/// directory, the operating-system user, a database named like the user.
fn apply_defaults(
    p: &mut Params,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConnectError> {
    match (p.get("host"), p.get("hostaddr").cloned()) {
        (Some(_), _) => {}
        // The address doubles as the name the certificate is checked against (and the TLS
        // handshake needs a name).
        (None, Some(addr)) => {
            p.insert("host".into(), addr);
        }
        (None, None) => {
            p.insert("host".into(), default_socket_dir(p.get("port")));
        }
    }
    if !p.contains_key("user") {
        let user = env("USER")
            .or_else(|| env("LOGNAME"))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                ConnectError::invalid("user", "no user name: put it in DATABASE_URL or set PGUSER")
            })?;
        p.insert("user".into(), user);
    }
    if !p.contains_key("dbname")
        && let Some(user) = p.get("user").cloned()
    {
        p.insert("dbname".into(), user);
    }
    if !p.contains_key("application_name")
        && let Some(name) = p.get("fallback_application_name").cloned()
    {
        p.insert("application_name".into(), name);
    }
    Ok(())
}

/// The directory holding the server's socket (`.s.PGSQL.PORT`): Debian's, then the upstream
/// default `/tmp`.
fn default_socket_dir(port: Option<&String>) -> String {
    let port = port
        .and_then(|p| p.split(',').next())
        .filter(|p| !p.is_empty())
        .unwrap_or("5432");
    let dirs = ["/run/postgresql", "/var/run/postgresql", "/tmp"];
    dirs.iter()
        .find(|d| Path::new(d).join(format!(".s.PGSQL.{port}")).exists())
        .or_else(|| dirs.iter().find(|d| Path::new(d).is_dir()))
        .unwrap_or(&"/tmp")
        .to_string()
}

fn password_from_file(p: &Params, home: Option<&Path>) -> Option<String> {
    let path = match p.get("passfile") {
        Some(f) => PathBuf::from(f),
        None => home?.join(".pgpass"),
    };
    let first = |key: &str| {
        p.get(key)
            .and_then(|v| v.split(',').next().map(str::to_string))
            .unwrap_or_default()
    };
    let host = match first("host") {
        h if h.is_empty() => first("hostaddr"),
        h => h,
    };
    let port = match first("port") {
        p if p.is_empty() => "5432".to_string(),
        p => p,
    };
    pgpass::lookup(
        &path,
        &pgpass::Lookup {
            host: &host,
            port: &port,
            dbname: p.get("dbname").map(String::as_str).unwrap_or_default(),
            user: p.get("user").map(String::as_str).unwrap_or_default(),
        },
    )
}

/// `sslmode` and what the handshake checks, by libpq's rules.
fn tls_settings(p: &Params, home: Option<&Path>) -> Result<(SslMode, TlsSettings), ConnectError> {
    let explicit_mode: Option<SslMode> = p.get("sslmode").map(|m| m.parse()).transpose()?;
    let dot_pg = home.map(|h| h.join(".postgresql"));
    let root_cert = match p.get("sslrootcert").map(String::as_str) {
        Some("system") => Some(RootCert::System),
        Some(path) => {
            let path = PathBuf::from(path);
            if path.exists() {
                Some(RootCert::File(path))
            } else {
                match explicit_mode {
                    Some(SslMode::VerifyCa | SslMode::VerifyFull) => {
                        return Err(ConnectError::invalid(
                            "sslrootcert",
                            format!("root certificate file {} does not exist", path.display()),
                        ));
                    }
                    _ => {
                        tracing::warn!(file = %path.display(),
                            "sslrootcert does not exist: the server certificate is not verified");
                        None
                    }
                }
            }
        }
        None => dot_pg
            .as_ref()
            .map(|d| d.join("root.crt"))
            .filter(|f| f.exists())
            .map(RootCert::File),
    };
    let mode = match (explicit_mode, &root_cert) {
        (Some(m), Some(RootCert::System)) if m < SslMode::VerifyFull => {
            return Err(ConnectError::invalid(
                "sslmode",
                format!(
                    "weak sslmode {:?} may not be used with sslrootcert=system (use \"verify-full\")",
                    m.as_str()
                ),
            ));
        }
        (Some(m), _) => m,
        (None, Some(RootCert::System)) => SslMode::VerifyFull,
        (None, _) => SslMode::Prefer,
    };
    let verify = match mode {
        SslMode::VerifyFull => Verify::ChainAndHost,
        SslMode::VerifyCa => Verify::Chain,
        _ if root_cert.is_some() => Verify::Chain,
        _ => Verify::Nothing,
    };
    if verify != Verify::Nothing && root_cert.is_none() {
        return Err(ConnectError::invalid(
            "sslrootcert",
            format!(
                "sslmode={} needs the CA certificate that signed the server's: set sslrootcert (or \
                 PGSSLROOTCERT) to its file, or to \"system\" for the platform's trusted roots",
                mode.as_str()
            ),
        ));
    }
    let cert = p
        .get("sslcert")
        .map(PathBuf::from)
        .or_else(|| dot_pg.as_ref().map(|d| d.join("postgresql.crt")));
    let key = p
        .get("sslkey")
        .map(PathBuf::from)
        .or_else(|| dot_pg.as_ref().map(|d| d.join("postgresql.key")));
    // libpq: no certificate file, no client certificate; a certificate without its key is an
    // error.
    let client_cert = match (cert.filter(|c| c.exists()), key) {
        (Some(cert), Some(key)) if key.exists() => Some((cert, key)),
        (Some(cert), _) => {
            return Err(ConnectError::invalid(
                "sslkey",
                format!(
                    "certificate {} present, but not its private key file",
                    cert.display()
                ),
            ));
        }
        (None, _) => None,
    };
    let sni = match p.get("sslsni").map(String::as_str) {
        None | Some("1") => true,
        Some("0") => false,
        Some(_) => return Err(ConnectError::invalid("sslsni", "must be 0 or 1")),
    };
    Ok((
        mode,
        TlsSettings {
            verify,
            root_cert,
            client_cert,
            sni,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn resolve(conninfo: &str, env: &[(&str, &str)]) -> Result<PgConnectConfig, ConnectError> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PgConnectConfig::from_lookup(conninfo, |k| env.get(k).cloned())
    }

    #[test]
    fn the_string_wins_over_the_environment_which_fills_the_rest() {
        let c = resolve(
            "postgres://ana@db.example.com/pulso",
            &[
                ("PGHOST", "other"),
                ("PGPORT", "6543"),
                ("PGUSER", "bob"),
                ("PGSSLMODE", "require"),
                ("PGAPPNAME", "nightly"),
                ("PGPASSWORD", "from-env"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.describe(),
            "host=db.example.com port=6543 dbname=pulso user=ana sslmode=require"
        );
        assert_eq!(c.tokio_config().get_password(), Some(&b"from-env"[..]));
        assert_eq!(c.tokio_config().get_application_name(), Some("nightly"));
    }

    #[test]
    fn environment_alone_is_enough() {
        let c = resolve(
            "",
            &[
                ("PGHOST", "10.0.0.5"),
                ("PGUSER", "etl"),
                ("PGDATABASE", "pulso"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.describe(),
            "host=10.0.0.5 port=5432 dbname=pulso user=etl sslmode=prefer"
        );
        // The user's name is the default database.
        let c = resolve("host=h", &[("USER", "maria")]).unwrap();
        assert_eq!(c.tokio_config().get_dbname(), Some("maria"));
        assert!(resolve("host=h", &[]).is_err());
    }

    #[test]
    fn fallback_application_name_yields_to_the_users_choice() {
        let mut c = resolve("host=h user=u", &[]).unwrap();
        c.fallback_application_name("pulso-flow");
        assert_eq!(c.tokio_config().get_application_name(), Some("pulso-flow"));
        let mut c = resolve("host=h user=u application_name=mine", &[]).unwrap();
        c.fallback_application_name("pulso-flow");
        assert_eq!(c.tokio_config().get_application_name(), Some("mine"));
    }

    #[test]
    fn sslmodes_and_root_certificates_follow_libpq() {
        let dir = std::env::temp_dir().join(format!("pf-connect-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "not read until connecting").unwrap();
        let ca = ca.display().to_string();
        let verify =
            |s: &str| resolve(s, &[("USER", "u")]).map(|c| (c.ssl_mode(), c.tls_settings().verify));
        assert_eq!(
            verify("host=h").unwrap(),
            (SslMode::Prefer, Verify::Nothing)
        );
        assert_eq!(
            verify("host=h sslmode=require").unwrap(),
            (SslMode::Require, Verify::Nothing)
        );
        // require with a root certificate behaves as verify-ca.
        assert_eq!(
            verify(&format!("host=h sslmode=require sslrootcert={ca}")).unwrap(),
            (SslMode::Require, Verify::Chain)
        );
        assert_eq!(
            verify(&format!("host=h sslmode=verify-ca sslrootcert={ca}")).unwrap(),
            (SslMode::VerifyCa, Verify::Chain)
        );
        assert_eq!(
            verify(&format!("host=h sslmode=verify-full sslrootcert={ca}")).unwrap(),
            (SslMode::VerifyFull, Verify::ChainAndHost)
        );
        // verify-* without a root certificate is refused before connecting.
        assert!(verify("host=h sslmode=verify-full").is_err());
        assert!(verify("host=h sslmode=verify-ca sslrootcert=/nonexistent/ca.pem").is_err());
        // sslrootcert=system: verify-full by default, weaker modes refused.
        assert_eq!(
            verify("host=h sslrootcert=system").unwrap(),
            (SslMode::VerifyFull, Verify::ChainAndHost)
        );
        assert!(verify("host=h sslrootcert=system sslmode=require").is_err());
        assert!(verify("host=h sslmode=bogus").is_err());
        // ~/.postgresql/root.crt counts as a root certificate when it exists.
        std::fs::create_dir_all(dir.join(".postgresql")).unwrap();
        std::fs::write(dir.join(".postgresql/root.crt"), "x").unwrap();
        let home = dir.display().to_string();
        let c = resolve("host=h sslmode=require", &[("USER", "u"), ("HOME", &home)]).unwrap();
        assert_eq!(c.tls_settings().verify, Verify::Chain);
        // A client certificate without its key is an error, as in libpq.
        std::fs::write(dir.join(".postgresql/postgresql.crt"), "x").unwrap();
        assert!(resolve("host=h", &[("USER", "u"), ("HOME", &home)]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_parameters_are_refused_by_name_only() {
        let e = resolve("host=h user=u sslcrl=s3cret", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslcrl") && !e.contains("s3cret"), "{e}");
        let e = resolve("host=h user=u port=s3cret", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("port") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn unix_sockets_are_recognised() {
        let c = resolve("host=/var/run/postgresql user=u", &[]).unwrap();
        assert!(c.is_unix_socket_only());
        let c = resolve("host=localhost user=u", &[]).unwrap();
        assert!(!c.is_unix_socket_only());
    }

    #[test]
    fn env_names_a_database_only_with_target_variables() {
        assert!(env_names_a_database(|k| (k == "PGHOST").then(|| "h".into())));
        assert!(!env_names_a_database(
            |k| (k == "PGSSLMODE").then(|| "require".into())
        ));
    }
}
