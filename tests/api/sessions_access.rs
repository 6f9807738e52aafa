//! Access tokens and who may use sessions, over the real binary on both
//! backends: forged and expired tokens, the scopes of the session RPCs, and
//! a log that never holds a token or a password.

use std::time::Duration;

use account_service::access::Scope;
use account_service::proto::account::v1::{
    ListSessionsRequest, RefreshSessionRequest, SignOutRequest, VerifyAccessTokenRequest,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::Signer;
use serde_json::{json, Value};
use tonic::Code;

use crate::access::{with_key, KeysFile};
use crate::helpers::*;
use crate::on_both_backends;
use crate::sessions::{
    assert_refused, jwt_parts, refresh, sign_in, sign_in_request, sign_out, time, try_sign_in,
    verify, Held, Shop, PASSWORD,
};

on_both_backends!(
    forged_and_altered_access_tokens_are_invalid,
    only_the_session_scopes_open_the_session_calls,
    the_log_holds_no_token_and_no_password,
);

// The one slow scenario of the sessions: ACCESS_TOKEN_TTL is at least 60
// seconds, and only the service's key can sign an expired token.
on_both_backends!(slow_an_access_token_expires_after_its_ttl);

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A JWT of `header` and `claims` signed with an Ed25519 key that is not
/// the service's.
fn signed_elsewhere(header: &Value, claims: &Value) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let input = format!("{}.{}", encode(header), encode(claims));
    let signature = key.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

async fn forged_and_altered_access_tokens_are_invalid(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, _) = shop.account().await;
    let (other_email, other_id) = shop.account().await;
    let client = &mut shop.client;
    let held = sign_in(client, &email).await;
    let theirs = sign_in(client, &other_email).await;
    let genuine = held.access();
    let (header, claims) = jwt_parts(genuine);
    let parts: Vec<&str> = genuine.split('.').collect();

    // The signature altered in its middle (its last character may carry
    // only padding bits).
    let signature = parts[2];
    let at = signature.len() / 2;
    let flipped = if &signature[at..=at] == "A" { "B" } else { "A" };
    let altered_signature = format!(
        "{}.{}.{}{}{}",
        parts[0],
        parts[1],
        &signature[..at],
        flipped,
        &signature[at + 1..]
    );
    // Another account's id under the genuine signature.
    let mut stolen = claims.clone();
    stolen["sub"] = json!(other_id);
    stolen["sid"] = json!(theirs.id());
    let swapped_claims = format!("{}.{}.{}", parts[0], encode(&stolen), parts[2]);
    // Longer-lived claims under the genuine signature.
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().unwrap() + 86_400);
    let extended = format!("{}.{}.{}", parts[0], encode(&longer), parts[2]);
    // The same header and claims, signed by another key.
    let other_key = signed_elsewhere(&header, &claims);
    // No signature at all, as `alg: none` allows.
    let mut none = header.clone();
    none["alg"] = json!("none");
    let unsigned = format!("{}.{}.", encode(&none), parts[1]);
    let stripped = format!("{}.{}.", parts[0], parts[1]);
    // HMAC keyed with the service's secret: the algorithm is the service's
    // choice, not the token's.
    let mut hmac_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hmac_header.typ = Some("at+jwt".into());
    hmac_header.kid = header["kid"].as_str().map(str::to_owned);
    let hmac = jsonwebtoken::encode(
        &hmac_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET_KEY.as_bytes()),
    )
    .unwrap();
    // An unknown key id, and a token of another type, by another key.
    let mut unknown_kid = header.clone();
    unknown_kid["kid"] = json!("no-such-key");
    let unknown_kid = signed_elsewhere(&unknown_kid, &claims);
    let mut id_token = header.clone();
    id_token["typ"] = json!("JWT");
    let id_token = signed_elsewhere(&id_token, &claims);

    let forgeries = [
        String::new(),
        "garbage".to_owned(),
        "..".to_owned(),
        "a.b.c".to_owned(),
        format!("{genuine}.x"),
        genuine[..genuine.len() - 2].to_owned(),
        held.refresh().to_owned(),
        altered_signature,
        swapped_claims,
        extended,
        other_key,
        unsigned,
        stripped,
        hmac,
        unknown_kid,
        id_token,
        "x".repeat(60_000),
    ];
    for forged in &forgeries {
        let answer = verify(client, forged).await;
        assert!(answer.is_err(), "{forged:?} was taken");
        assert_refused(answer, Code::Unauthenticated, "ACCESS_TOKEN_INVALID");
    }
    // The genuine tokens still verify, each for its own account.
    assert_eq!(verify(client, genuine).await.unwrap().session_id, held.id());
    assert_eq!(
        verify(client, theirs.access()).await.unwrap().account_id,
        other_id
    );

    // Signed out, the genuine token is refused for what it is.
    sign_out(client, held.refresh()).await.unwrap();
    assert_refused(
        verify(client, genuine).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
}

/// SLOW: sleeps a little over a minute, the shortest access token lifetime
/// ACCESS_TOKEN_TTL accepts.
async fn slow_an_access_token_expires_after_its_ttl(backend: Backend) {
    let mut shop = Shop::start(backend, &[("ACCESS_TOKEN_TTL", "60")]).await;
    let (email, id) = shop.account().await;
    let client = &mut shop.client;
    let held = sign_in(client, &email).await;
    let (_, claims) = jwt_parts(held.access());
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(exp - claims["iat"].as_i64().unwrap(), 60);
    assert_eq!(time(&held.tokens.access_token_expires_at).timestamp(), exp);
    assert_eq!(verify(client, held.access()).await.unwrap().account_id, id);

    let left = exp - chrono::Utc::now().timestamp();
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(left.max(0)).unwrap() * 1000 + 1500,
    ))
    .await;
    assert_refused(
        verify(client, held.access()).await,
        Code::Unauthenticated,
        "ACCESS_TOKEN_EXPIRED",
    );
    // The session itself lives on: a refresh answers a token that verifies.
    let next = refresh(client, held.refresh()).await.unwrap();
    assert_eq!(
        verify(client, next.access()).await.unwrap().session_id,
        held.id()
    );
}

/// A call refused for the caller's scope.
fn denied<T: std::fmt::Debug>(result: Result<tonic::Response<T>, tonic::Status>) {
    assert_refused(result.map(drop), Code::PermissionDenied, "SCOPE_MISSING");
}

async fn only_the_session_scopes_open_the_session_calls(backend: Backend) {
    let file = KeysFile::new(&[
        ("registrar", &[Scope::AccountsRegister], None),
        ("admin", &[Scope::AccountsAdmin], None),
        ("web", &[Scope::SessionsWrite], None),
        ("verifier", &[Scope::SessionsVerify], None),
    ]);
    let path = file.path.display().to_string();
    let shop = Shop::start(backend, &[("API_KEYS_FILE", path.as_str())]).await;
    let mut client = shop.client.clone();
    let key = |name: &str| Some(file.key(name));
    let email = unique_email();
    client
        .register(with_key(registration(&email), key("registrar")))
        .await
        .unwrap();
    shop.db
        .execute(&format!(
            "UPDATE accounts SET verified = TRUE WHERE email = '{email}'"
        ))
        .await;

    let request = || sign_in_request(&email, PASSWORD, None);
    for caller in ["admin", "verifier", "registrar"] {
        denied(client.sign_in(with_key(request(), key(caller))).await);
    }
    let held: Held = client
        .sign_in(with_key(request(), key("web")))
        .await
        .unwrap()
        .into_inner()
        .into();

    let refresh_with = |token: &str| RefreshSessionRequest {
        refresh_token: token.into(),
    };
    for caller in ["admin", "verifier"] {
        denied(
            client
                .refresh_session(with_key(refresh_with(held.refresh()), key(caller)))
                .await,
        );
    }
    let held: Held = client
        .refresh_session(with_key(refresh_with(held.refresh()), key("web")))
        .await
        .unwrap()
        .into_inner()
        .into();

    let verify_with = |token: &str| VerifyAccessTokenRequest {
        access_token: token.into(),
    };
    for caller in ["admin", "web"] {
        denied(
            client
                .verify_access_token(with_key(verify_with(held.access()), key(caller)))
                .await,
        );
    }
    client
        .verify_access_token(with_key(verify_with(held.access()), key("verifier")))
        .await
        .unwrap();

    // Listing is reading an account; `accounts:admin` holds that.
    let list = || ListSessionsRequest {
        account_id: held.session.account_id.clone(),
    };
    denied(client.list_sessions(with_key(list(), key("web"))).await);
    let listed = client
        .list_sessions(with_key(list(), key("admin")))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(listed.len(), 1);

    let out = || SignOutRequest {
        refresh_token: held.refresh().into(),
    };
    for caller in ["admin", "verifier"] {
        denied(client.sign_out(with_key(out(), key(caller))).await);
    }
    client.sign_out(with_key(out(), key("web"))).await.unwrap();
    // No key at all is refused before any scope.
    let status = client.sign_in(request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

async fn the_log_holds_no_token_and_no_password(backend: Backend) {
    let settings = [
        ("RUST_LOG", "info,account_service=debug"),
        ("REFRESH_TOKEN_REUSE_INTERVAL", "0"),
    ];
    let mut shop = Shop::start(backend, &settings).await;
    let (email, _) = shop.account().await;
    let client = &mut shop.client;
    let wrong = "Wr0ng-guess-zq";
    try_sign_in(client, &email, wrong, None).await.unwrap_err();
    let first = sign_in(client, &email).await;
    let second = refresh(client, first.refresh()).await.unwrap();
    let third = refresh(client, second.refresh()).await.unwrap();
    verify(client, third.access()).await.unwrap();
    // A reuse, an invalid token, and a sign-out: the refusals log too.
    refresh(client, first.refresh()).await.unwrap_err();
    let guess = format!("acr_{}", "Q".repeat(43));
    refresh(client, &guess).await.unwrap_err();
    verify(client, "eyJhbGciOiJub25lIn0.e30.")
        .await
        .unwrap_err();
    let fourth = sign_in(client, &email).await;
    sign_out(client, fourth.refresh()).await.unwrap();
    let seen = [first, second, third, fourth];

    let log = shop.service.log_text();
    assert!(log.contains("SignIn"), "the calls were logged: {log}");
    for password in [PASSWORD, wrong] {
        assert!(!log.contains(password), "a password in the log");
    }
    assert!(!log.contains(&guess[4..]), "a presented token in the log");
    for held in &seen {
        let refresh = held.refresh();
        assert!(!log.contains(&refresh[4..]), "a refresh token in the log");
        let access = held.access();
        let signature = access.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "an access token in the log");
        let payload = access.split('.').nth(1).unwrap();
        assert!(!log.contains(payload), "an access token in the log");
    }
}
