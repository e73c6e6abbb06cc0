//! TLS to PostgreSQL, as managed databases need: a URL with `sslmode=require` (or `verify-ca`,
//! `verify-full`) connects over TLS (rustls, ring), verifying the server's certificate chain and
//! host name against `database.ssl_root_cert` when set, else the Mozilla roots built in
//! (webpki-roots; the runtime image carries no CA bundle). Unlike libpq, `require` verifies: a
//! connection that cannot be verified is refused rather than silently trusted. The `sslmode` is
//! read from the URL parsed at load ([`crate::config::DatabaseUrl`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why the TLS configuration for PostgreSQL could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read database.ssl_root_cert {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("database.ssl_root_cert {} holds no certificate", .path.display())]
    Empty { path: PathBuf },
    #[error("database.ssl_root_cert {}: {source}", .path.display())]
    Certificate {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS setup: {0}")]
    Setup(rustls::Error),
}

/// The rustls client configuration: roots from `ssl_root_cert` (PEM) or the built-in bundle.
pub fn client_config(ssl_root_cert: Option<&Path>) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    match ssl_root_cert {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .map_err(|source| TlsConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
            if certs.is_empty() {
                return Err(TlsConfigError::Empty {
                    path: path.to_owned(),
                });
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|source| TlsConfigError::Certificate {
                        path: path.to_owned(),
                        source,
                    })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(TlsConfigError::Setup)?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_root_certificate_file_is_a_clear_error() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("database.ssl_root_cert"), "{err}");
        assert!(client_config(None).is_ok());
    }
}
