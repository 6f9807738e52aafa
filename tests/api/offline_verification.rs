//! Access tokens verified offline by a JWT library of another ecosystem, as
//! a calling service would: `tests/python/verify_access_token.py` (PyJWT
//! with `cryptography`) fetches the binary's JWKS and checks a token's
//! signature, type, expiry, audience and issuer. The README shows its code.

use std::path::PathBuf;
use std::process::{Command, Output};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::access_binary::Service;
use crate::helpers::*;
use crate::sessions_instances::{client, sign_in, verified_account};

/// The sidecar as shoppers reach it (`PUBLIC_BASE_URL`), which is also the
/// tokens' issuer by default; their default audience.
const ISSUER: &str = "http://localhost:8080";
const AUDIENCE: &str = "ecoms";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/verify_access_token.py")
}

/// The interpreter with PyJWT and cryptography: `TEST_PYTHON` as the test
/// runs, or else as the tests were built.
fn python() -> String {
    std::env::var("TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .or_else(|| option_env!("TEST_PYTHON").map(str::to_owned))
        .filter(|p| !p.is_empty())
        .expect("TEST_PYTHON names no Python with PyJWT and cryptography")
}

/// Runs the script on `token`, off the async workers.
async fn verify_offline(service: &Service, token: &str, audience: &str) -> Output {
    let jwks = format!("http://{}/.well-known/jwks.json", service.http);
    let token = token.to_owned();
    let audience = audience.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script())
            .args([&jwks, &token, ISSUER, &audience])
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// `token` with its claims changed by `change` and its signature kept.
fn tampered(token: &str, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS in compact form");
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    change(&mut claims);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

fn assert_refused(output: &Output, why: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.contains(why), "{stderr}");
}

#[cfg_attr(
    not(pyjwt_tests),
    ignore = "set TEST_PYTHON to a Python with PyJWT and cryptography when building the tests"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_verifies_access_tokens_with_the_published_keys() {
    let service = Service::start(&[("PUBLIC_BASE_URL", ISSUER.into())]).await;
    let db = TestDatabase::at(format!("sqlite://{}", service.dir.join("a.db").display()));
    let mut client = client(&service).await;
    let email = verified_account(&mut client, &db).await;
    let signed = sign_in(&mut client, &email).await;
    let token = &signed.tokens.access_token;

    let output = verify_offline(&service, token, AUDIENCE).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "PyJWT refused the token: {stderr}");
    let claims: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(claims["sub"], signed.account_id.as_str());
    assert_eq!(claims["sid"], signed.session_id.as_str());
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);

    // Another account's id under this token's signature does not verify.
    let forged = tampered(token, |claims| {
        claims["sub"] = uuid::Uuid::new_v4().to_string().into();
    });
    assert_refused(
        &verify_offline(&service, &forged, AUDIENCE).await,
        "Signature verification failed",
    );
    // Nor does a genuine token at a service it was not issued for.
    assert_refused(
        &verify_offline(&service, token, "payments").await,
        "Audience doesn't match",
    );
}

/// The README's verification code is the script's, word for word.
#[test]
fn the_readme_shows_the_code_the_test_runs() {
    let script = std::fs::read_to_string(script()).unwrap();
    let start = script.find("def verify_access_token").unwrap();
    let end = script.find("# End of the README's function.").unwrap();
    let function = &script[start..end];
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    assert!(
        readme.contains(function),
        "README.md does not show verify_access_token as the script has it:\n{function}"
    );
}
