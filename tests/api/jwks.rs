//! The access-token keys as the binary publishes them: derived from the
//! server keys through a rotation, or read from ACCESS_TOKEN_SIGNING_KEY_FILE,
//! and served before the database is reached.

use std::process::Stdio;
use std::time::Duration;

use account_service::auth::{AccessTokens, Keyring, SigningKeys};
use chrono::Utc;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::access_binary::{binary, Service};
use crate::helpers::*;

const PREVIOUS_KEY: &str = "the-previous-integration-test-secret-key-0123";
const PATH: &str = "/.well-known/jwks.json";

/// The document at [`PATH`], after checking the headers every answer has.
async fn fetch_jwks(client: &reqwest::Client, http: std::net::SocketAddr) -> Value {
    let answer = client
        .get(format!("http://{http}{PATH}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(answer.headers()[CACHE_CONTROL], "public, max-age=300");
    serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap()
}

fn tokens(keys: SigningKeys) -> AccessTokens {
    AccessTokens::new(
        keys,
        "http://localhost:8080/".to_owned(),
        "ecoms".to_owned(),
        Duration::from_secs(300),
    )
}

/// Verifies `token` as a calling service would: the key picked from the
/// published set by the token's `kid`.
fn verify_with(set: &Value, token: &str) -> Value {
    let set: JwkSet = serde_json::from_value(set.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let key = DecodingKey::from_jwk(set.find(&kid).expect("kid published")).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["ecoms"]);
    validation.set_issuer(&["http://localhost:8080/"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

#[tokio::test]
async fn the_sidecar_publishes_the_current_and_previous_keys() {
    let service = Service::start(&[("SECRET_KEY_PREVIOUS", PREVIOUS_KEY.to_owned())]).await;
    let client = service.http_client();

    let document = fetch_jwks(&client, service.http).await;

    let keyring = Keyring::new(TEST_SECRET_KEY.as_bytes(), Some(PREVIOUS_KEY.as_bytes()));
    let expected: Value =
        serde_json::from_str(tokens(SigningKeys::derive(&keyring)).jwks_json()).unwrap();
    assert_eq!(document, expected);
    let keys = document["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "EdDSA");
        assert!(key["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
        assert!(key.get("d").is_none(), "no private part");
    }
    // Tokens signed before the rotation, and after it, verify against it.
    for keyring in [
        Keyring::new(PREVIOUS_KEY.as_bytes(), None),
        Keyring::new(TEST_SECRET_KEY.as_bytes(), None),
    ] {
        let account = Uuid::new_v4();
        let issued = tokens(SigningKeys::derive(&keyring))
            .issue(account, Uuid::new_v4(), Utc::now(), Utc::now())
            .unwrap();
        let claims = verify_with(&document, &issued.token);
        assert_eq!(claims["sub"], account.to_string());
    }
    // HEAD answers the same headers, without the document.
    let head = client
        .head(format!("http://{}{PATH}", service.http))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()[CACHE_CONTROL], "public, max-age=300");
    assert!(head.bytes().await.unwrap().is_empty());
    let post = client
        .post(format!("http://{}{PATH}", service.http))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_signing_key_file_replaces_the_derived_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    let pem = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
        .to_pkcs8_pem(Default::default())
        .unwrap();
    std::fs::write(&path, pem.as_bytes()).unwrap();
    let service = Service::start(&[
        ("SECRET_KEY_PREVIOUS", PREVIOUS_KEY.to_owned()),
        ("ACCESS_TOKEN_SIGNING_KEY_FILE", path.display().to_string()),
    ])
    .await;

    let document = fetch_jwks(&service.http_client(), service.http).await;

    let from_file = tokens(SigningKeys::from_pem(&pem).unwrap());
    let expected: Value = serde_json::from_str(from_file.jwks_json()).unwrap();
    assert_eq!(document, expected);
    assert_eq!(document["keys"].as_array().unwrap().len(), 1);
    let issued = from_file
        .issue(Uuid::new_v4(), Uuid::new_v4(), Utc::now(), Utc::now())
        .unwrap();
    verify_with(&document, &issued.token);
    assert!(!service.log_text().contains(pem.as_str()));
}

#[test]
fn a_missing_or_garbage_signing_key_file_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nhunter2hunter2\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.pem");
    for path in [&garbage, &missing] {
        let output = binary()
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("a.db").display()),
            )
            .env("GRPC_ADDR", "127.0.0.1:0")
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("ACCESS_TOKEN_SIGNING_KEY_FILE", path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("ACCESS_TOKEN_SIGNING_KEY_FILE"), "{stderr}");
        assert!(stderr.contains(&*path.display().to_string()), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        // check-config finds it before a deployment does.
        let output = binary()
            .arg("check-config")
            .env("ACCESS_TOKEN_SIGNING_KEY_FILE", path)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("ACCESS_TOKEN_SIGNING_KEY_FILE"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[tokio::test]
async fn the_keys_are_published_before_the_database_is_reached() {
    // Nothing listens on port 1: the database stays unreachable.
    let unreachable = TestDatabase::at("postgres://postgres@127.0.0.1:1/none".to_owned());
    let app = spawn_app(unreachable).unready().await;

    let document = fetch_jwks(&app.http, app.http_addr).await;

    assert_eq!(document["keys"].as_array().unwrap().len(), 1);
    let ready = app.http.get(app.http_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}
