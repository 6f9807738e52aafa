//! Which callers a client certificate may stand for, over the real binary
//! with mTLS: not one with keys unless the file says `certificate = true`,
//! and never a name the service uses itself.

use std::time::Duration;

use account_service::access::{file_entry, new_key, Scope};
use account_testkit::tls::{self, TestCa};
use tonic::Code;

use crate::access::call;
use crate::access_binary::{binary, start_with_callers_file, Service};
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_stands_only_for_callers_that_take_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = TestCa::new("Test server CA");
    let client_ca = TestCa::new("Test client CA");
    let files = tls::write_server_files(dir.path(), &server_ca.server(), Some(&client_ca));
    let admin_key = new_key();
    let callers = format!(
        "{}{}certificate = true\n",
        file_entry("adminsvc", &[Scope::AccountsAdmin], &admin_key, None),
        file_entry("billing", &[Scope::AccountsAdmin], &new_key(), None),
    );
    let path = dir.path().join("callers.toml");
    std::fs::write(&path, callers).unwrap();
    let mut settings: Vec<(&str, String)> = files
        .iter()
        .map(|(k, v)| {
            let k = ["GRPC_TLS_CERT", "GRPC_TLS_KEY", "GRPC_TLS_CLIENT_CA"]
                .into_iter()
                .find(|name| name == k)
                .unwrap();
            (k, v.clone())
        })
        .collect();
    settings.push(("API_KEYS_FILE", path.display().to_string()));
    let service = Service::start(&settings).await;
    let ca = server_ca.pem();
    let holding = |name: &str| {
        let pem = client_ca.client(name);
        let ca = ca.clone();
        let addr = service.grpc;
        async move { tls::channel(addr, &ca, Some(&pem)).await.unwrap() }
    };

    // A caller with keys: its name on a certificate gets none of its scopes…
    let impostor = holding("adminsvc").await;
    let denied = call(&impostor, "ListAccounts", None).await;
    assert_code(&denied, Code::PermissionDenied);
    assert_eq!(
        reason(&denied.unwrap_err()).as_deref(),
        Some("SCOPE_MISSING")
    );
    // …while its key, on the same connection, still makes it that caller.
    call(&impostor, "ListAccounts", Some(&admin_key))
        .await
        .unwrap();
    // One with keys that also takes certificates.
    let billing = holding("billing").await;
    call(&billing, "ListAccounts", None).await.unwrap();
    // Names the service uses are never taken from a certificate.
    for reserved in ["anonymous", "unauthenticated", "certificate"] {
        let holder = holding(reserved).await;
        assert_code(
            &call(&holder, "GetAccount", None).await,
            Code::PermissionDenied,
        );
    }

    let log = eventually(Duration::from_secs(10), || async {
        let text = service.log_text();
        text.contains("\"caller\":\"certificate:certificate\"")
            .then_some(text)
    })
    .await
    .unwrap_or_else(|| service.log_text());
    let rpc_lines: Vec<&str> = log.lines().filter(|l| l.contains("\"rpc\"")).collect();
    let logged_as = |caller: &str, code: &str| {
        rpc_lines
            .iter()
            .any(|l| l.contains(&format!("\"caller\":\"{caller}\"")) && l.contains(code))
    };
    assert!(
        logged_as("certificate:adminsvc", "PermissionDenied"),
        "{log}"
    );
    assert!(logged_as("adminsvc", "Ok"), "{log}");
    assert!(logged_as("billing", "Ok"), "{log}");
    for reserved in ["anonymous", "unauthenticated", "certificate"] {
        assert!(
            logged_as(&format!("certificate:{reserved}"), "PermissionDenied"),
            "{log}"
        );
        assert!(
            !log.contains(&format!("\"caller\":\"{reserved}\"")),
            "a certificate logged as {reserved}: {log}"
        );
    }
    assert!(!log.contains(&admin_key), "a key in the log");
}

#[test]
fn reserved_names_and_unreachable_callers_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("callers.toml");
    for (text, expected) in [
        (
            "[callers.anonymous]\nscopes = []\n",
            ["callers.anonymous: ", "is reserved by the service"],
        ),
        (
            "[callers.certificate]\nscopes = []\ncertificate = true\n",
            ["callers.certificate: ", "is reserved by the service"],
        ),
        (
            "[callers.unauthenticated]\nscopes = []\n",
            ["callers.unauthenticated: ", "is reserved by the service"],
        ),
        (
            "[callers.shop]\nscopes = []\ncertificate = false\n",
            ["callers.shop: ", "certificate = false and no key_sha256"],
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let output = start_with_callers_file(dir.path(), &path);
        assert!(!output.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The log writes JSON, where the name's quotes are escaped.
        assert!(
            expected.iter().all(|e| stderr.contains(e)),
            "{text}: {stderr}"
        );
        let check = binary()
            .arg("check-config")
            .env("API_KEYS_FILE", &path)
            .output()
            .unwrap();
        assert_eq!(check.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&check.stderr);
        assert!(
            expected.iter().all(|e| stderr.contains(e)),
            "check-config, {text}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}
