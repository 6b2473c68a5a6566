//! rustls client configurations for libpq's sslmodes.
//!
//! | what the server certificate gets | when (libpq's rules) |
//! |---|---|
//! | nothing checked (encryption only) | `prefer`, `require`, `allow` without a root certificate |
//! | chain checked, not the host name | `verify-ca`; `prefer`/`require`/`allow` with a root certificate |
//! | chain and host name checked | `verify-full` |
//!
//! Handshake signatures are always verified, so "nothing checked" still means the server holds
//! the private key of the certificate it sent. The crypto provider is ring (the workspace's).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::ConnectError;

/// Where trusted roots come from (`sslrootcert`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file with one or more CA certificates.
    File(PathBuf),
    /// The platform's trusted roots (`sslrootcert=system`).
    System,
}

/// How much of the server certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    Nothing,
    Chain,
    ChainAndHost,
}

/// Everything the TLS side of a connection needs.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub verify: Verify,
    /// The trusted roots; present whenever `verify` is not `Nothing`.
    pub root_cert: Option<RootCert>,
    /// Client certificate chain and its private key (PEM files).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Send the host name in the handshake (`sslsni`, default on).
    pub sni: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `settings`; reads the certificate and key files.
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig, ConnectError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Tls(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match settings.verify {
        Verify::Nothing => Arc::new(PartialVerifier {
            roots: None,
            provider: provider.clone(),
        }),
        Verify::Chain | Verify::ChainAndHost => {
            let roots = Arc::new(load_roots(settings.root_cert.as_ref().ok_or_else(
                || ConnectError::Tls("certificate verification needs a root certificate".into()),
            )?)?);
            if settings.verify == Verify::Chain {
                Arc::new(PartialVerifier {
                    roots: Some(roots),
                    provider: provider.clone(),
                })
            } else {
                WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| ConnectError::Tls(e.to_string()))?
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &settings.client_cert {
        Some((cert, key)) => {
            let chain = load_certs(cert, "sslcert")?;
            let key = load_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ConnectError::Tls(format!("client certificate: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = settings.sni;
    Ok(config)
}

fn load_roots(root: &RootCert) -> Result<RootCertStore, ConnectError> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::File(path) => {
            for cert in load_certs(path, "sslrootcert")? {
                store.add(cert).map_err(|e| {
                    ConnectError::Tls(format!(
                        "sslrootcert {}: unusable certificate: {e}",
                        path.display()
                    ))
                })?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!(error = %e, "a system root certificate could not be loaded");
            }
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(ConnectError::Tls(
                    "sslrootcert=system: no trusted root certificates found on this system \
                     (install ca-certificates, or set SSL_CERT_FILE)"
                        .into(),
                ));
            }
        }
    }
    Ok(store)
}

fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    let bytes = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConnectError::Tls(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConnectError::Tls(format!(
            "{what} {}: no PEM certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConnectError> {
    check_key_permissions(path)?;
    let bytes = read(path, "sslkey")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        ConnectError::Tls(format!(
            "sslkey {}: no usable PEM private key ({e})",
            path.display()
        ))
    })
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path)
        .map_err(|e| ConnectError::Tls(format!("{what} {}: cannot read: {e}", path.display())))
}

/// libpq refuses a private key others can read: at most u=rw (0600) when the current user owns
/// it, or u=rw,g=r (0640) when root does (how Kubernetes mounts secrets with an fsGroup).
fn check_key_permissions(path: &Path) -> Result<(), ConnectError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).map_err(|e| {
            ConnectError::Tls(format!("sslkey {}: cannot read: {e}", path.display()))
        })?;
        let mode = meta.mode();
        let ok = if meta.uid() == 0 {
            mode & 0o037 == 0
        } else {
            mode & 0o077 == 0
        };
        if !ok {
            return Err(ConnectError::Tls(format!(
                "sslkey {}: private key file has group or world access; it must have permissions \
                 u=rw (0600) or less if owned by the current user, or u=rw,g=r (0640) or less if \
                 owned by root",
                path.display()
            )));
        }
    }
    Ok(())
}

/// libpq's two verifications weaker than `verify-full`. With `roots: None` (`require` without a
/// root certificate) the connection is encrypted and the certificate taken as it comes, libpq's
/// documented behaviour; with roots (`verify-ca`) the chain must lead to a trusted root but the
/// host name is not compared. Either way the handshake signature is still checked.
#[derive(Debug)]
struct PartialVerifier {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PartialVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
