//! Certificates made at test time (a CA, server and client certificates
//! signed by it, written to PEM files) and TLS channels to the service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A certificate and its private key, in PEM.
#[derive(Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that lives for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for localhost and 127.0.0.1.
    pub fn server(&self) -> Pem {
        self.leaf(
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose common name is `name`.
    pub fn client(&self, name: &str) -> Pem {
        self.leaf(name, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A client certificate with no common name, `dns` its only DNS name.
    pub fn client_with_dns_name(&self, dns: &str) -> Pem {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![dns.to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn leaf(&self, cn: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Pem {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// The server's TLS files in `dir`: `server.pem`, `server.key`, and
/// `client-ca.pem` when `client_ca` is given. Returns the settings naming them.
pub fn write_server_files(
    dir: &Path,
    server: &Pem,
    client_ca: Option<&TestCa>,
) -> Vec<(String, String)> {
    let path = |name: &str| -> PathBuf { dir.join(name) };
    std::fs::write(path("server.pem"), &server.cert).unwrap();
    std::fs::write(path("server.key"), &server.key).unwrap();
    let mut settings = vec![
        (
            "GRPC_TLS_CERT".to_owned(),
            path("server.pem").display().to_string(),
        ),
        (
            "GRPC_TLS_KEY".to_owned(),
            path("server.key").display().to_string(),
        ),
    ];
    if let Some(ca) = client_ca {
        std::fs::write(path("client-ca.pem"), ca.pem()).unwrap();
        settings.push((
            "GRPC_TLS_CLIENT_CA".to_owned(),
            path("client-ca.pem").display().to_string(),
        ));
    }
    settings
}

/// A TLS channel to `addr` trusting `ca_pem`, presenting `client` if given.
pub async fn channel(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&Pem>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.cert, &client.key));
    }
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}
