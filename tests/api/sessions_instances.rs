//! Sessions across processes, over the real binary: two instances on one
//! PostgreSQL database see each other's sign-ins, refreshes and sign-outs at
//! once, concurrent refreshes on both converge, and a rotation of
//! `SECRET_KEY` across restarts signs no one out.

use std::collections::HashSet;

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    ClientInfo, RefreshSessionRequest, RefreshSessionResponse, RevokeSessionRequest, SignInRequest,
    SignOutRequest, Tokens,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::access_binary::{register_id, Service};
use crate::helpers::*;
use crate::on_both_backends;
use crate::sessions::verify;

/// What a sign-in answered, reduced to what the tests follow.
pub(crate) struct SignedIn {
    pub(crate) account_id: String,
    pub(crate) session_id: String,
    pub(crate) tokens: Tokens,
}

/// A client of `service`'s gRPC port.
pub(crate) async fn client(service: &Service) -> AccountServiceClient<Channel> {
    AccountServiceClient::new(service.plaintext().await)
}

/// Registers a shopper over `client`, marks the address confirmed straight
/// in `db`, and answers the address.
pub(crate) async fn verified_account(
    client: &mut AccountServiceClient<Channel>,
    db: &TestDatabase,
) -> String {
    let email = unique_email();
    register_id(client, &email).await;
    db.execute(&format!(
        "UPDATE accounts SET verified = TRUE WHERE email = '{email}'"
    ))
    .await;
    email
}

/// Signs `email` in (with `registration`'s password) as a shop's web
/// backend does, passing on what it saw of the shopper.
pub(crate) async fn sign_in(client: &mut AccountServiceClient<Channel>, email: &str) -> SignedIn {
    let answer = client
        .sign_in(SignInRequest {
            email: email.into(),
            password: "secret123".into(),
            client: Some(ClientInfo {
                user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0".into(),
                ip_address: "203.0.113.7".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let session = answer.session.unwrap();
    SignedIn {
        account_id: answer.account.unwrap().id,
        session_id: session.id,
        tokens: answer.tokens.unwrap(),
    }
}

async fn refresh(
    client: &mut AccountServiceClient<Channel>,
    refresh_token: &str,
) -> Result<RefreshSessionResponse, Status> {
    client
        .refresh_session(RefreshSessionRequest {
            refresh_token: refresh_token.into(),
        })
        .await
        .map(|r| r.into_inner())
}

/// The new tokens of a refresh that must succeed.
async fn refreshed(client: &mut AccountServiceClient<Channel>, refresh_token: &str) -> Tokens {
    refresh(client, refresh_token)
        .await
        .unwrap()
        .tokens
        .unwrap()
}

/// VerifyAccessToken accepts `access_token` as a token of `signed`'s session.
async fn assert_verifies(
    client: &mut AccountServiceClient<Channel>,
    access_token: &str,
    signed: &SignedIn,
) {
    let verified = verify(client, access_token).await.unwrap();
    assert_eq!(verified.account_id, signed.account_id);
    assert_eq!(verified.session_id, signed.session_id);
}

fn assert_refused(result: Result<impl std::fmt::Debug, Status>, reason: &str) {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(error_reason(&status), reason, "{status:?}");
}

/// Two instances on one database, with one `SECRET_KEY`.
async fn two_instances(backend: Backend) -> (TestDatabase, Service, Service) {
    let db = TestDatabase::create(&backend).await;
    let a = Service::start(&[("DATABASE_URL", db.url.clone())]).await;
    let b = Service::start(&[("DATABASE_URL", db.url.clone())]).await;
    (db, a, b)
}

#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_is_refused_by_the_other_instance_at_once() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let (db, a, b) = two_instances(backend).await;
    let (mut on_a, mut on_b) = (client(&a).await, client(&b).await);
    let email = verified_account(&mut on_a, &db).await;

    // Signed in on A; B refreshes that session and verifies its tokens.
    let signed = sign_in(&mut on_a, &email).await;
    let first = &signed.tokens;
    let rotated = refresh(&mut on_b, &first.refresh_token).await.unwrap();
    assert_eq!(rotated.session.unwrap().id, signed.session_id);
    let second = rotated.tokens.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    for token in [&first.access_token, &second.access_token] {
        assert_verifies(&mut on_b, token, &signed).await;
    }

    // Revoked on A: B refuses the session's refresh token and its access
    // tokens with its very next calls, without waiting for anything.
    on_a.revoke_session(RevokeSessionRequest {
        account_id: signed.account_id.clone(),
        session_id: signed.session_id.clone(),
    })
    .await
    .unwrap();
    assert_refused(
        refresh(&mut on_b, &second.refresh_token).await,
        "REFRESH_TOKEN_INVALID",
    );
    for token in [&first.access_token, &second.access_token] {
        assert_refused(verify(&mut on_b, token).await, "SESSION_REVOKED");
    }

    // The same for a sign-out: signed in on B, signed out on A.
    let other = sign_in(&mut on_b, &email).await;
    assert_verifies(&mut on_a, &other.tokens.access_token, &other).await;
    on_a.sign_out(SignOutRequest {
        refresh_token: other.tokens.refresh_token.clone(),
    })
    .await
    .unwrap();
    assert_refused(
        refresh(&mut on_b, &other.tokens.refresh_token).await,
        "REFRESH_TOKEN_INVALID",
    );
    assert_refused(
        verify(&mut on_b, &other.tokens.access_token).await,
        "SESSION_REVOKED",
    );
}

#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_on_two_instances_converge_on_one_token() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let (db, a, b) = two_instances(backend).await;
    let (on_a, mut on_b) = (client(&a).await, client(&b).await);
    let email = verified_account(&mut on_b, &db).await;
    let signed = sign_in(&mut on_b, &email).await;
    let presented = signed.tokens.refresh_token.clone();

    // A shopper's tabs, or a client retrying, present one token 20 times at
    // once, through both instances.
    let calls = (0..20).map(|i| {
        let mut client = if i % 2 == 0 {
            on_a.clone()
        } else {
            on_b.clone()
        };
        let token = presented.clone();
        async move { refresh(&mut client, &token).await }
    });
    let answers = futures::future::join_all(calls).await;

    let mut new_tokens = HashSet::new();
    for answer in answers {
        let answer = answer.unwrap_or_else(|s| panic!("a concurrent refresh failed: {s:?}"));
        assert_eq!(answer.session.unwrap().id, signed.session_id);
        let tokens = answer.tokens.unwrap();
        assert_verifies(&mut on_b, &tokens.access_token, &signed).await;
        new_tokens.insert(tokens.refresh_token);
    }
    assert_eq!(new_tokens.len(), 1, "one rotation, one new token");
    let shared = new_tokens.into_iter().next().unwrap();
    assert_ne!(shared, presented);

    // The shared token is the session's current one, on either instance.
    let next = refreshed(&mut on_b, &shared).await;
    assert_ne!(next.refresh_token, shared);
    assert_verifies(&mut on_b, &next.access_token, &signed).await;
}

on_both_backends!(rotating_the_secret_key_signs_no_one_out);

const FIRST_KEY: &str = "first-secret-key-of-the-rotation-0123456789abcdef";
const SECOND_KEY: &str = "second-secret-key-of-the-rotation-0123456789abcdef";

/// The binary on `db` with this `SECRET_KEY` and `SECRET_KEY_PREVIOUS`.
async fn start_with_keys(db: &TestDatabase, current: &str, previous: &str) -> Service {
    Service::start(&[
        ("DATABASE_URL", db.url.clone()),
        ("SECRET_KEY", current.into()),
        ("SECRET_KEY_PREVIOUS", previous.into()),
    ])
    .await
}

/// The `kid`s of the sidecar's JWKS.
async fn published_kids(service: &Service) -> Vec<String> {
    let url = format!("http://{}/.well-known/jwks.json", service.http);
    let response = service.http_client().get(url).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let jwks: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid(access_token: &str) -> String {
    jsonwebtoken::decode_header(access_token)
        .unwrap()
        .kid
        .unwrap()
}

async fn rotating_the_secret_key_signs_no_one_out(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let before = start_with_keys(&db, FIRST_KEY, "").await;
    let mut client_before = client(&before).await;
    let email = verified_account(&mut client_before, &db).await;
    let signed = sign_in(&mut client_before, &email).await;
    let first_kid = kid(&signed.tokens.access_token);
    assert_eq!(
        published_kids(&before).await,
        std::slice::from_ref(&first_kid)
    );
    drop(before);

    // The new key signs, the previous one still verifies: the tokens of the
    // sign-in before the restart keep working, and the JWKS lists both keys.
    let rotating = start_with_keys(&db, SECOND_KEY, FIRST_KEY).await;
    let mut client_rotating = client(&rotating).await;
    assert_verifies(&mut client_rotating, &signed.tokens.access_token, &signed).await;
    let after = refreshed(&mut client_rotating, &signed.tokens.refresh_token).await;
    let second_kid = kid(&after.access_token);
    assert_ne!(second_kid, first_kid);
    assert_verifies(&mut client_rotating, &after.access_token, &signed).await;
    assert_eq!(
        published_kids(&rotating).await,
        [second_kid.clone(), first_kid],
        "the signing key first"
    );
    drop(rotating);

    // The rotation done: what the old key signed no longer verifies, and the
    // session goes on with the tokens it got during the rotation.
    let rotated = start_with_keys(&db, SECOND_KEY, "").await;
    let mut client_rotated = client(&rotated).await;
    assert_refused(
        verify(&mut client_rotated, &signed.tokens.access_token).await,
        "ACCESS_TOKEN_INVALID",
    );
    assert_verifies(&mut client_rotated, &after.access_token, &signed).await;
    assert_eq!(published_kids(&rotated).await, [second_kid]);
    let next = refreshed(&mut client_rotated, &after.refresh_token).await;
    assert_verifies(&mut client_rotated, &next.access_token, &signed).await;
}
