//! Sessions over the real binary on both backends: what SignIn answers and
//! refuses, the access token's shape, and the client information a session
//! keeps; the helpers the other `sessions_*` scenarios share.

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    ClientInfo, ListSessionsRequest, RefreshSessionRequest, RefreshSessionResponse, Session,
    SignInRequest, SignInResponse, SignOutRequest, Tokens, VerifyAccessTokenRequest,
    VerifyAccessTokenResponse,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::access_binary::{register_id, Service};
pub(crate) use crate::attacks::PASSWORD;
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    sign_in_answers_the_account_a_session_and_its_tokens,
    the_issuer_audience_and_lifetimes_follow_the_settings,
);

pub(crate) type Client = AccountServiceClient<Channel>;

/// The binary on a database of its own, and a client of it. The service is
/// declared first: it stops before its database goes.
pub(crate) struct Shop {
    pub(crate) service: Service,
    pub(crate) client: Client,
    pub(crate) db: TestDatabase,
}

impl Shop {
    pub(crate) async fn start(backend: Backend, settings: &[(&str, &str)]) -> Shop {
        let db = TestDatabase::create(&backend).await;
        let (service, client) = crate::attacks::start(&db, settings).await;
        Shop {
            service,
            client,
            db,
        }
    }

    /// A new account, confirmed with the code of its welcome mail: its
    /// address and id. Its password is `PASSWORD`.
    pub(crate) async fn account(&mut self) -> (String, String) {
        let email = unique_email();
        let id = crate::attacks::verified(&self.service, &mut self.client, &email).await;
        (email, id)
    }

    /// A new account that was never confirmed: its address and id.
    pub(crate) async fn unconfirmed_account(&mut self) -> (String, String) {
        let email = unique_email();
        let id = register_id(&mut self.client, &email).await;
        (email, id)
    }
}

/// A session as its holder sees it: what the last sign-in or refresh
/// answered.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) session: Session,
    pub(crate) tokens: Tokens,
}

impl Held {
    pub(crate) fn refresh(&self) -> &str {
        &self.tokens.refresh_token
    }

    pub(crate) fn access(&self) -> &str {
        &self.tokens.access_token
    }

    pub(crate) fn id(&self) -> &str {
        &self.session.id
    }
}

impl From<SignInResponse> for Held {
    fn from(answer: SignInResponse) -> Held {
        Held {
            session: answer.session.expect("a session"),
            tokens: answer.tokens.expect("tokens"),
        }
    }
}

impl From<RefreshSessionResponse> for Held {
    fn from(answer: RefreshSessionResponse) -> Held {
        Held {
            session: answer.session.expect("a session"),
            tokens: answer.tokens.expect("tokens"),
        }
    }
}

/// What a web backend saw of a shopper.
pub(crate) fn seen(user_agent: &str, ip_address: &str) -> Option<ClientInfo> {
    Some(ClientInfo {
        user_agent: user_agent.into(),
        ip_address: ip_address.into(),
    })
}

pub(crate) fn sign_in_request(
    email: &str,
    password: &str,
    client: Option<ClientInfo>,
) -> SignInRequest {
    SignInRequest {
        email: email.into(),
        password: password.into(),
        client,
    }
}

pub(crate) async fn try_sign_in(
    client: &mut Client,
    email: &str,
    password: &str,
    info: Option<ClientInfo>,
) -> Result<SignInResponse, Status> {
    client
        .sign_in(sign_in_request(email, password, info))
        .await
        .map(|r| r.into_inner())
}

/// Signs `email` in with `PASSWORD` from a browser.
pub(crate) async fn sign_in(client: &mut Client, email: &str) -> Held {
    match try_sign_in(client, email, PASSWORD, seen("Mozilla/5.0", "192.0.2.10")).await {
        Ok(answer) => answer.into(),
        Err(status) => panic!("sign-in of {email} refused: {status:?}"),
    }
}

pub(crate) async fn refresh(client: &mut Client, token: &str) -> Result<Held, Status> {
    client
        .refresh_session(RefreshSessionRequest {
            refresh_token: token.into(),
        })
        .await
        .map(|r| r.into_inner().into())
}

pub(crate) async fn verify(
    client: &mut Client,
    access_token: &str,
) -> Result<VerifyAccessTokenResponse, Status> {
    client
        .verify_access_token(VerifyAccessTokenRequest {
            access_token: access_token.into(),
        })
        .await
        .map(|r| r.into_inner())
}

pub(crate) async fn sign_out(client: &mut Client, token: &str) -> Result<(), Status> {
    client
        .sign_out(SignOutRequest {
            refresh_token: token.into(),
        })
        .await
        .map(drop)
}

pub(crate) async fn sessions_of(
    client: &mut Client,
    account_id: &str,
) -> Result<Vec<Session>, Status> {
    client
        .list_sessions(ListSessionsRequest {
            account_id: account_id.into(),
        })
        .await
        .map(|r| r.into_inner().sessions)
}

/// The ids of an account's live sessions, in the order listed.
pub(crate) async fn live_ids(client: &mut Client, account_id: &str) -> Vec<String> {
    match sessions_of(client, account_id).await {
        Ok(sessions) => sessions.into_iter().map(|s| s.id).collect(),
        Err(status) => panic!("ListSessions of {account_id}: {status:?}"),
    }
}

/// A refusal with `code` and, in the `account.v1` domain, `expected`.
#[track_caller]
pub(crate) fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    expected: &str,
) {
    match result {
        Ok(answer) => panic!("expected {code:?} {expected}, got OK: {answer:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            assert_eq!(reason(&status).as_deref(), Some(expected), "{status:?}");
        }
    }
}

/// The session still works: its refresh token rotates and the new access
/// token verifies. Answers what the refresh answered.
pub(crate) async fn assert_live(client: &mut Client, held: &Held, what: &str) -> Held {
    let next = match refresh(client, held.refresh()).await {
        Ok(next) => next,
        Err(status) => panic!("{what}: the session should live: {status:?}"),
    };
    assert_eq!(next.id(), held.id(), "{what}");
    if let Err(status) = verify(client, next.access()).await {
        panic!("{what}: its new access token should verify: {status:?}");
    }
    next
}

/// The session ended: its refresh token is refused and its access token is
/// revoked.
pub(crate) async fn assert_ended(client: &mut Client, held: &Held, what: &str) {
    let refreshed = refresh(client, held.refresh()).await;
    assert!(refreshed.is_err(), "{what}: the session should have ended");
    assert_refused(refreshed, Code::Unauthenticated, "REFRESH_TOKEN_INVALID");
    assert_refused(
        verify(client, held.access()).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
}

/// A JWT's header and claims, decoded without any check.
pub(crate) fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    let decode = |part: &str| -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    (decode(parts[0]), decode(parts[1]))
}

pub(crate) fn time(timestamp: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = timestamp.as_ref().expect("a timestamp");
    DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap()).unwrap()
}

/// Two instants equal to the millisecond: an answer may carry a finer time
/// than a database keeps.
#[track_caller]
pub(crate) fn assert_same_time(
    a: &Option<prost_types::Timestamp>,
    b: &Option<prost_types::Timestamp>,
    what: &str,
) {
    let (a, b) = (time(a), time(b));
    assert!(
        (a - b).num_microseconds().unwrap().abs() < 1000,
        "{what}: {a} is not {b}"
    );
}

/// The same session, its times to the millisecond.
#[track_caller]
pub(crate) fn assert_same_session(a: &Session, b: &Session) {
    let text = |s: &Session| {
        [&s.id, &s.account_id, &s.user_agent, &s.ip_address]
            .map(String::as_str)
            .join("|")
    };
    assert_eq!(text(a), text(b));
    assert_same_time(&a.created_at, &b.created_at, "created_at");
    assert_same_time(&a.last_used_at, &b.last_used_at, "last_used_at");
    assert_same_time(&a.expires_at, &b.expires_at, "expires_at");
}

/// `aud` is one audience; RFC 7519 lets it be a string or a list of one.
fn assert_audience(claims: &Value, audience: &str) {
    let aud = &claims["aud"];
    assert!(
        *aud == json!(audience) || *aud == json!([audience]),
        "aud: {aud}"
    );
}

fn assert_near(a: DateTime<Utc>, b: DateTime<Utc>, what: &str) {
    assert!(
        (a - b).num_milliseconds().abs() <= 1500,
        "{what}: {a} is not {b}"
    );
}

async fn sign_in_answers_the_account_a_session_and_its_tokens(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;

    let before = Utc::now();
    // Addresses compare without regard to case.
    let answer = try_sign_in(
        &mut shop.client,
        &email.to_uppercase(),
        PASSWORD,
        seen("Mozilla/5.0 (X11; Linux x86_64)", "203.0.113.7"),
    )
    .await
    .unwrap();
    let account = answer.account.clone().unwrap();
    assert_eq!(
        (account.id.as_str(), account.email.as_str()),
        (id.as_str(), email.as_str())
    );
    let held = Held::from(answer);
    let session = &held.session;
    assert!(!session.id.is_empty());
    assert_eq!(session.account_id, id);
    assert_same_time(&session.created_at, &session.last_used_at, "a new session");
    let created = time(&session.created_at);
    assert_near(created, before, "created_at");
    // SESSION_IDLE_TIMEOUT's default, 14 days, comes before the maximum.
    assert_near(
        time(&session.expires_at),
        created + chrono::Duration::days(14),
        "expires_at",
    );
    assert_eq!(session.user_agent, "Mozilla/5.0 (X11; Linux x86_64)");
    assert_eq!(session.ip_address, "203.0.113.7");

    let tokens = &held.tokens;
    let secret = tokens
        .refresh_token
        .strip_prefix("acr_")
        .expect("a refresh token starts with acr_");
    assert!(secret.len() >= 43, "256 bits at least: {}", secret.len());
    assert_same_time(
        &tokens.refresh_token_expires_at,
        &session.expires_at,
        "the refresh token's end",
    );

    let (header, claims) = jwt_parts(&tokens.access_token);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert!(
        header["kid"].as_str().is_some_and(|k| !k.is_empty()),
        "{header}"
    );
    assert_eq!(claims["iss"], "http://localhost:8080");
    assert_audience(&claims, "ecoms");
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["sid"], session.id.as_str());
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    assert_eq!(exp - iat, 300, "ACCESS_TOKEN_TTL's default");
    assert!((iat - created.timestamp()).abs() <= 1, "{claims}");
    let auth_time = claims["auth_time"].as_i64().expect("auth_time");
    assert!((auth_time - iat).abs() <= 1, "{claims}");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
    assert_eq!(time(&tokens.access_token_expires_at).timestamp(), exp);

    let verified = verify(&mut shop.client, &tokens.access_token)
        .await
        .unwrap();
    assert_eq!(verified.account_id, id);
    assert_eq!(verified.session_id, session.id);
    assert_eq!(time(&verified.expires_at).timestamp(), exp);

    // A second sign-in is a second session, with tokens of its own.
    let second = sign_in(&mut shop.client, &email).await;
    assert_ne!(second.id(), held.id());
    assert_ne!(second.refresh(), held.refresh());
    assert_ne!(jwt_parts(second.access()).1["jti"], claims["jti"]);
    let listed = live_ids(&mut shop.client, &id).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
}

async fn the_issuer_audience_and_lifetimes_follow_the_settings(backend: Backend) {
    let settings = [
        ("ACCESS_TOKEN_ISSUER", "https://accounts.shop.example"),
        ("ACCESS_TOKEN_AUDIENCE", "shop-api"),
        ("ACCESS_TOKEN_TTL", "120"),
        ("SESSION_IDLE_TIMEOUT", "3600"),
    ];
    let mut shop = Shop::start(backend, &settings).await;
    let (email, id) = shop.account().await;
    let held = sign_in(&mut shop.client, &email).await;

    let (_, claims) = jwt_parts(held.access());
    assert_eq!(claims["iss"], "https://accounts.shop.example");
    assert_audience(&claims, "shop-api");
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 120);
    assert_near(
        time(&held.session.expires_at),
        time(&held.session.created_at) + chrono::Duration::seconds(3600),
        "expires_at",
    );
    assert_eq!(
        verify(&mut shop.client, held.access())
            .await
            .unwrap()
            .account_id,
        id
    );

    // Another instance on the same data with the same key, but its own
    // issuer and audience: the token is not meant for it.
    let (_other, mut elsewhere) = crate::attacks::start(&shop.db.shared(), &[]).await;
    assert_refused(
        verify(&mut elsewhere, held.access()).await,
        Code::Unauthenticated,
        "ACCESS_TOKEN_INVALID",
    );
    // Its own tokens verify there, and the session is one for both.
    let local = sign_in(&mut elsewhere, &email).await;
    verify(&mut elsewhere, local.access()).await.unwrap();
    assert_live(&mut elsewhere, &held, "refreshed on the other instance").await;
}
