//! TLS for the gRPC port (rustls): certificates read from PEM files and
//! re-read on demand, client certificates verified against a CA (mTLS), and
//! the caller name a client certificate carries.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Where the certificate, its key and the client CA are read from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates are required and verified against this CA.
    pub client_ca: Option<PathBuf>,
}

/// The TLS configuration new connections get. Connections already open
/// keep the one they were accepted with, so a reload drops none of them.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<TlsAcceptor>,
}

impl Tls {
    /// Reads the files; any problem is an error naming the file.
    pub fn load(files: TlsFiles) -> anyhow::Result<Tls> {
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&files)?));
        Ok(Tls {
            files,
            current: RwLock::new(acceptor),
        })
    }

    /// Re-reads the files (certificate rotation). On error the configuration
    /// in use stays, and the error says which file is wrong.
    pub fn reload(&self) -> anyhow::Result<()> {
        let acceptor = TlsAcceptor::from(Arc::new(server_config(&self.files)?));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = acceptor;
        Ok(())
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }
}

fn server_config(files: &TlsFiles) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&files.cert, "GRPC_TLS_CERT")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| pem_error(&files.key, &e))
        .with_context(|| format!("GRPC_TLS_KEY {}", files.key.display()))?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca, "GRPC_TLS_CLIENT_CA")? {
                roots
                    .add(cert)
                    .with_context(|| format!("GRPC_TLS_CLIENT_CA {}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("GRPC_TLS_CLIENT_CA {}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "GRPC_TLS_CERT {} does not match GRPC_TLS_KEY {}",
            files.cert.display(),
            files.key.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn certificates(path: &Path, variable: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(path, &e))
        .with_context(|| format!("{variable} {}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{variable} {}: no PEM certificate in it", path.display());
    }
    Ok(certs)
}

/// A PEM problem, without the file's content (a key file's bytes are secret).
fn pem_error(path: &Path, e: &rustls_pki_types::pem::Error) -> anyhow::Error {
    use rustls_pki_types::pem::Error;
    let what = match e {
        Error::Io(io) => format!("cannot be read: {io}"),
        Error::NoItemsFound => "holds no PEM item of the expected kind".to_owned(),
        _ => "is not valid PEM".to_owned(),
    };
    anyhow::anyhow!("{} {what}", path.display())
}

/// The caller name a verified client certificate carries: its subject's
/// common name, or else its first DNS subject alternative name.
pub fn certificate_name(cert: &CertificateDer<'_>) -> Option<Arc<str>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let common_name = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let name = common_name.or_else(|| {
        let san = parsed.subject_alternative_name().ok()??;
        san.value.general_names.iter().find_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            _ => None,
        })
    })?;
    // A name is a log field and a lookup key: no control characters, bounded.
    (!name.is_empty() && name.len() <= 253 && !name.chars().any(char::is_control))
        .then(|| Arc::from(name))
}
