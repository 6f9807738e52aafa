//! Callers and TLS as the binary does them: start-up refusals, calls gated
//! over a real process, the caller on every log line, certificate reload on
//! SIGHUP, and `api-key new`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use account_service::access::{key_digest, Callers, Scope};
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_testkit::tls::{self, TestCa};
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;

use crate::access::{call, KeysFile};
use crate::helpers::*;
use crate::smtp_server::reserve_addr;

pub(crate) fn binary() -> Command {
    account_testkit::service_binary!()
}

/// A running service, killed when dropped.
pub(crate) struct Service {
    child: Child,
    pub(crate) grpc: std::net::SocketAddr,
    pub(crate) http: std::net::SocketAddr,
    pub(crate) dir: std::path::PathBuf,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with the callers file at `path` (and a database in
/// `dir`), to see it refuse: the finished process's output.
pub(crate) fn start_with_callers_file(dir: &Path, path: &Path) -> std::process::Output {
    binary()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("a.db").display()),
        )
        .env("GRPC_ADDR", "127.0.0.1:0")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("API_KEYS_FILE", path)
        .env("LOG_FORMAT", "json")
        .output()
        .unwrap()
}

/// Registers `email` over `client` and answers the new account's id.
pub(crate) async fn register_id(client: &mut AccountServiceClient<Channel>, email: &str) -> String {
    client
        .register(registration(email))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .id
}

impl Service {
    pub(crate) async fn start(settings: &[(&str, String)]) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let (grpc, http) = (reserve_addr(), reserve_addr());
        let log = dir.path().join("service.log");
        let child = binary()
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("a.db").display()),
            )
            .env("GRPC_ADDR", grpc.to_string())
            .env("HTTP_ADDR", http.to_string())
            .env("SECRET_KEY", TEST_SECRET_KEY)
            .env("EMAIL_BACKEND", "file")
            .env("EMAIL_FILE_PATH", dir.path().join("mail"))
            .env("RATE_LIMITS", "off")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .envs(settings.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let client = reqwest::Client::new();
        let ready = eventually(Duration::from_secs(30), || async {
            let r = client
                .get(format!("http://{http}/readyz"))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        let service = Service {
            child,
            grpc,
            http,
            dir: dir.path().to_owned(),
            log,
            _dir: dir,
        };
        assert!(ready.is_some(), "not ready: {}", service.log_text());
        service
    }

    /// An HTTP client that shows redirects instead of following them.
    pub(crate) fn http_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A mailed link (to `PUBLIC_BASE_URL` http://localhost:8080) pointed at
    /// this service's sidecar.
    pub(crate) fn sidecar(&self, link: &str) -> String {
        link.replace("http://localhost:8080", &format!("http://{}", self.http))
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub(crate) async fn plaintext(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }
}

#[test]
fn a_broken_keys_file_stops_start_up_naming_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let digest = key_digest("acs_secret");
    let cases = [
        (
            format!("[callers.shop]\nscopes = [\"accounts:all\"]\nkey_sha256 = [\"{digest}\"]\n"),
            "callers.shop: unknown scope",
        ),
        (
            "[callers.shop]\nscopes = []\nkey_sha256 = [\"not-hex\"]\n".to_owned(),
            "callers.shop: key_sha256 holds a malformed digest",
        ),
        (
            format!("[callers.shop]\nscopes = []\nkey_sha256 = [\"{digest}\"]\nkeys = 1\n"),
            "callers.shop: unknown field `keys`",
        ),
    ];
    for (text, expected) in cases {
        let path = dir.path().join("callers.toml");
        std::fs::write(&path, &text).unwrap();
        let output = start_with_callers_file(dir.path(), &path);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{text}: {stderr}");
        assert!(stderr.contains("API_KEYS_FILE"), "{stderr}");
        // check-config finds it before a deployment does.
        let output = binary()
            .arg("check-config")
            .env("API_KEYS_FILE", &path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "check-config, {text}: {stderr}");
    }
    let output = binary()
        .env("API_KEYS_FILE", dir.path().join("missing.toml"))
        .env("GRPC_ADDR", "127.0.0.1:0")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("a.db").display()),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.toml"));
}

#[test]
fn production_refuses_to_start_with_callers_unauthenticated() {
    let output = binary()
        .env("APP_ENV", "production")
        .env("SECRET_KEY", "k".repeat(40))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("API_KEYS_FILE"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_gates_every_call_and_logs_its_caller() {
    let file = KeysFile::new(&[
        ("checkout", &[Scope::AccountsRegister], None),
        ("crm", &[Scope::AccountsRead], None),
        ("newsletter", &[Scope::EventsRead], None),
    ]);
    let service = Service::start(&[("API_KEYS_FILE", file.path.display().to_string())]).await;
    let channel = service.plaintext().await;
    let reason = |s: &tonic::Status| s.get_details_error_info().map(|i| i.reason);

    // Each error case on every RPC.
    for method in crate::access::RPCS {
        let missing = call(&channel, method, None).await.unwrap_err();
        assert_eq!(missing.code(), Code::Unauthenticated, "{method}");
        assert_eq!(reason(&missing).as_deref(), Some("API_KEY_MISSING"));
        let invalid = call(&channel, method, Some("acs_guess")).await.unwrap_err();
        assert_eq!(invalid.code(), Code::Unauthenticated, "{method}");
        assert_eq!(reason(&invalid).as_deref(), Some("API_KEY_INVALID"));
        let needed = account_service::access::required_scope(method);
        let outsider = if needed == Scope::EventsRead {
            "checkout"
        } else {
            "newsletter"
        };
        let denied = call(&channel, method, Some(file.key(outsider)))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{method}");
        assert_eq!(reason(&denied).as_deref(), Some("SCOPE_MISSING"));
        assert_eq!(
            denied
                .get_details_error_info()
                .unwrap()
                .metadata
                .get("scope"),
            Some(&needed.as_str().to_owned())
        );
    }

    let missing = call(&channel, "Register", None).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(reason(&missing).as_deref(), Some("API_KEY_MISSING"));
    let invalid = call(&channel, "Register", Some("acs_guess"))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::Unauthenticated);
    assert_eq!(reason(&invalid).as_deref(), Some("API_KEY_INVALID"));
    let denied = call(&channel, "GetAccount", Some(file.key("checkout")))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(reason(&denied).as_deref(), Some("SCOPE_MISSING"));
    call(&channel, "Register", Some(file.key("checkout")))
        .await
        .unwrap();
    let looked_up = call(&channel, "GetAccount", Some(file.key("crm"))).await;
    assert_code(&looked_up, Code::NotFound);

    service.signal("TERM");
    let log = eventually(Duration::from_secs(20), || async {
        let text = service.log_text();
        text.contains("\"stopped\"").then_some(text)
    })
    .await
    .unwrap_or_else(|| service.log_text());
    // Every line of a call carries its caller.
    let rpc_lines: Vec<&str> = log.lines().filter(|l| l.contains("\"rpc\"")).collect();
    assert!(rpc_lines.len() >= 5, "{log}");
    for line in &rpc_lines {
        assert!(
            [
                "\"caller\":\"checkout\"",
                "\"caller\":\"crm\"",
                "\"caller\":\"newsletter\"",
                "\"caller\":\"unauthenticated\""
            ]
            .iter()
            .any(|c| line.contains(c)),
            "{line}"
        );
    }
    // A known caller refused for its scope is logged under its own name.
    assert!(
        rpc_lines
            .iter()
            .any(|l| l.contains("\"caller\":\"newsletter\"") && l.contains("PermissionDenied")),
        "{log}"
    );
    for key in file.keys.values() {
        assert!(!log.contains(key.as_str()), "a key in the log");
    }
    assert!(!log.contains("acs_guess"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_certificates_and_keeps_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestCa::new("First CA");
    let files = tls::write_server_files(dir.path(), &first.server(), None);
    let settings: Vec<(&str, String)> = files
        .iter()
        .map(|(k, v)| {
            (
                if k == "GRPC_TLS_CERT" {
                    "GRPC_TLS_CERT"
                } else {
                    "GRPC_TLS_KEY"
                },
                v.clone(),
            )
        })
        .collect();
    let service = Service::start(&settings).await;
    let open = tls::channel(service.grpc, &first.pem(), None)
        .await
        .unwrap();
    assert_code(&call(&open, "GetAccount", None).await, Code::NotFound);

    // A broken file on SIGHUP: the certificates in use stay.
    std::fs::write(dir.path().join("server.pem"), "not a certificate").unwrap();
    service.signal("HUP");
    let logged = eventually(Duration::from_secs(10), || async {
        service
            .log_text()
            .contains("TLS certificates not reloaded")
            .then_some(())
    })
    .await;
    assert!(logged.is_some(), "{}", service.log_text());
    tls::channel(service.grpc, &first.pem(), None)
        .await
        .unwrap();

    // Rotated to a certificate from another CA.
    let second = TestCa::new("Second CA");
    tls::write_server_files(dir.path(), &second.server(), None);
    service.signal("HUP");
    let rotated = eventually(Duration::from_secs(10), || async {
        let channel = tls::channel(service.grpc, &second.pem(), None).await.ok()?;
        call(&channel, "GetAccount", None).await.err().map(|_| ())
    })
    .await;
    assert!(rotated.is_some(), "{}", service.log_text());
    // New connections get the new certificate only…
    let old_trust = match tls::channel(service.grpc, &first.pem(), None).await {
        Ok(channel) => call(&channel, "GetAccount", None)
            .await
            .map_err(|s| s.code()),
        Err(_) => Err(Code::Unavailable),
    };
    assert!(
        matches!(old_trust, Err(Code::Unavailable | Code::Unknown)),
        "{old_trust:?}"
    );
    // …while the connection opened before the rotation keeps working.
    assert_code(&call(&open, "GetAccount", None).await, Code::NotFound);
    assert!(service.log_text().contains("TLS certificates reloaded"));
}

#[test]
fn api_key_new_prints_the_key_once_and_an_entry_that_admits_it() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("checkout.key");
    let run = |extra: &[&str]| {
        binary()
            // Creating a key needs no settings, even in production.
            .env("APP_ENV", "production")
            .args([
                "api-key",
                "new",
                "checkout",
                "--scopes",
                "accounts:register,accounts:read",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let printed = run(&[]);
    assert!(printed.status.success());
    let text = String::from_utf8(printed.stdout).unwrap();
    let key = text
        .lines()
        .find(|l| l.starts_with("acs_"))
        .expect("the key")
        .to_owned();
    assert!(key.len() >= 4 + 43);
    let entry = &text[text.find("[callers.checkout]").unwrap()..];
    let callers = Callers::parse(entry).unwrap();
    let caller = callers.by_key(&key).unwrap();
    assert!(caller.scopes.grant(Scope::AccountsRead));

    let written = run(&[
        "--key-file",
        key_file.to_str().unwrap(),
        "--requests-per-minute",
        "60",
    ]);
    assert!(written.status.success());
    let entry = String::from_utf8(written.stdout).unwrap();
    assert!(
        !entry.contains("acs_"),
        "with --key-file the key is not printed"
    );
    let key = std::fs::read_to_string(&key_file).unwrap();
    let callers = Callers::parse(&entry).unwrap();
    assert_eq!(
        callers.by_key(key.trim()).unwrap().requests_per_minute,
        Some(60)
    );
    assert_eq!(mode(&key_file) & 0o777, 0o600);
    // Never overwritten.
    assert!(!run(&["--key-file", key_file.to_str().unwrap()])
        .status
        .success());
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    // Bad names and scopes are refused.
    let bad = binary()
        .args(["api-key", "new", "check out", "--scopes", "accounts:read"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let bad = binary()
        .args(["api-key", "new", "shop", "--scopes", "accounts:everything"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope"));
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode()
}
