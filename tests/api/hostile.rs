//! Hostile input: arbitrary and oversized fields, malformed bytes, forged
//! tokens, oversized HTTP heads and slow HTTP and gRPC clients. Nothing
//! panics, nothing answers INTERNAL, nothing forged verifies an account.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    ConfirmRegistrationRequest, RegisterRequest, RegisterResponse,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::helpers::*;

/// Strings that stress validation: any Unicode, control characters and NUL,
/// near and over every limit.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,40}",
        "[\\x00-\\x1f\\x7f ]{0,20}",
        "[a-z0-9.@_-]{0,40}",
        (0usize..1200).prop_map(|n| "é".repeat(n)),
        Just(String::new()),
    ]
}

fn hostile_request() -> impl Strategy<Value = RegisterRequest> {
    (
        prop_oneof![hostile_string(), "[a-z]{1,10}@[a-z]{1,10}\\.[a-z]{2,4}"],
        hostile_string(),
        prop_oneof![hostile_string(), Just("secret123".to_owned())],
        any::<bool>(),
        hostile_string(),
        hostile_string(),
        hostile_string(),
        hostile_string(),
        hostile_string(),
        prop_oneof![hostile_string(), Just("fr-CA".to_owned())],
    )
        .prop_map(
            |(email, username, password, same, address, first, last, phone, from, locale)| {
                RegisterRequest {
                    confirm_password: if same {
                        password.clone()
                    } else {
                        format!("{password}x")
                    },
                    email,
                    username,
                    password,
                    term_and_condition: same,
                    address,
                    first_name: first,
                    last_name: last,
                    phone_number: phone,
                    created_from: from,
                    locale,
                }
            },
        )
}

fn sample<S: Strategy>(strategy: &S, runner: &mut TestRunner) -> S::Value {
    strategy.new_tree(runner).unwrap().current()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_registrations_get_a_clear_answer() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut runner = TestRunner::new(Config::with_cases(96));
    let strategy = hostile_request();
    for _ in 0..96 {
        let request = sample(&strategy, &mut runner);
        let answer = app.register(request.clone()).await;
        if let Err(status) = &answer {
            assert!(
                matches!(status.code(), Code::InvalidArgument | Code::AlreadyExists),
                "{request:?} -> {status:?}"
            );
        }
    }
    // Still healthy afterwards.
    app.register(registration(&unique_email())).await.unwrap();
}

#[tokio::test]
async fn a_megabyte_field_is_refused_without_harm() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut request = registration(&unique_email());
    request.username = "\u{0}".repeat(1024 * 1024);

    let status = app.register(request).await.unwrap_err();

    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    app.register(registration(&unique_email())).await.unwrap();
}

/// RegisterRequest's wire shape with `bytes` where the contract has `string`,
/// to send what a well-behaved client cannot: invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawRegisterRequest {
    #[prost(bytes = "vec", tag = "1")]
    email: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    password: Vec<u8>,
}

#[tokio::test]
async fn invalid_utf8_is_invalid_argument() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/account.v1.AccountService/Register");
    let codec = tonic::codec::ProstCodec::<RawRegisterRequest, RegisterResponse>::default();
    let request = RawRegisterRequest {
        email: b"bad\xff\xfe@example.com".to_vec(),
        password: b"secret123".to_vec(),
    };

    let status = grpc
        .unary(tonic::Request::new(request), path, codec)
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(app.db.count("accounts").await, 0);
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

/// A token with any header and claims, signed HS256 with `key`.
fn signed(header: serde_json::Value, claims: serde_json::Value, key: &[u8]) -> String {
    let message = format!("{}.{}", b64(&header), b64(&claims));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(key),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

#[tokio::test]
async fn forged_tokens_never_verify_an_account() {
    let app = spawn_app(Backend::Sqlite).await;
    let email = unique_email();
    let (account, link) = app.register_and_get_link(&email).await;
    let genuine = token_of(&link);
    let key = TEST_SECRET_KEY.as_bytes();
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "sub": account.id, "aud": "confirm-registration", "iat": now, "exp": now + 600, "jti": "x"
    });
    let hs256 = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let without = |field: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(field);
        c
    };
    let with = |field: &str, value: serde_json::Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&with(
            "sub",
            serde_json::json!(uuid::Uuid::now_v7().to_string())
        )),
        parts[2]
    );
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap();
    let forged = [
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
                b64(&claims)
            ),
        ),
        ("HS512", hs512),
        (
            "RS256 header, HMAC signature",
            signed(
                serde_json::json!({"alg": "RS256", "typ": "JWT"}),
                claims.clone(),
                key,
            ),
        ),
        (
            "another key",
            signed(hs256.clone(), claims.clone(), b"another-key"),
        ),
        ("tampered payload", tampered),
        ("no sub", signed(hs256.clone(), without("sub"), key)),
        ("no aud", signed(hs256.clone(), without("aud"), key)),
        ("no exp", signed(hs256.clone(), without("exp"), key)),
        (
            "wrong aud",
            signed(
                hs256.clone(),
                with("aud", serde_json::json!("password-reset")),
                key,
            ),
        ),
        (
            "sub not a UUID",
            signed(hs256.clone(), with("sub", serde_json::json!("admin")), key),
        ),
        (
            "60 KB",
            format!("{}.{}.{}", parts[0], "A".repeat(60 * 1024), parts[2]),
        ),
    ];
    for (what, token) in &forged {
        let status = app
            .client
            .clone()
            .confirm_registration(ConfirmRegistrationRequest::with_token(token.clone()))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(reason(&status).as_deref(), Some("TOKEN_INVALID"), "{what}");
    }
    // A 100 KB token exceeds the 64 KiB message limit: refused before decoding.
    let huge = format!("{}.{}.{}", parts[0], "A".repeat(100 * 1024), parts[2]);
    let status = app
        .client
        .clone()
        .confirm_registration(ConfirmRegistrationRequest::with_token(huge))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let expired = signed(hs256, with("exp", serde_json::json!(now - 1)), key);
    let status = app
        .client
        .clone()
        .confirm_registration(ConfirmRegistrationRequest::with_token(expired))
        .await
        .unwrap_err();
    assert_eq!(reason(&status).as_deref(), Some("TOKEN_EXPIRED"));
    assert!(!app.get_by_email(&email).await.unwrap().verified);
}

#[tokio::test]
async fn arbitrary_confirm_queries_only_redirect_to_the_request_page() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut runner = TestRunner::new(Config::with_cases(64));
    let bytes = proptest::collection::vec(any::<u8>(), 0..300);
    for _ in 0..64 {
        let raw = sample(&bytes, &mut runner);
        let encoded: String = raw.iter().map(|b| format!("%{b:02X}")).collect();
        for query in [
            format!("token={encoded}"),
            encoded.clone(),
            format!("token=a&token={encoded}"),
        ] {
            let url = app.http_url(&format!("/account/confirm-registration/?{query}"));
            let response = app.http.get(&url).send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::FOUND, "{query}");
            assert_eq!(response.headers()["location"], REQUEST_PAGE, "{query}");
        }
    }
}

async fn raw_http(app: &TestApp, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(app.http_addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let app = spawn_app(Backend::Sqlite).await;

    let long_line = format!(
        "GET /account/confirm-registration/?token={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    let answer = raw_http(&app, long_line.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");

    let huge_line = format!(
        "GET /healthz?{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let answer = raw_http(&app, huge_line.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 414"),
        "{answer}"
    );

    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "p".repeat(9 * 1024)
    );
    let answer = raw_http(&app, big_header.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let fine = raw_http(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(fine.starts_with("HTTP/1.1 200"), "{fine}");
}

#[tokio::test]
async fn slow_and_idle_http_clients_are_disconnected() {
    let app = spawn_app(Backend::Sqlite)
        .set("REQUEST_HEAD_TIMEOUT", "1")
        .await;

    for opening in [&b""[..], b"GET /healthz HTTP/1.1\r\nHost: x\r\n"] {
        let mut stream = tokio::net::TcpStream::connect(app.http_addr).await.unwrap();
        stream.write_all(opening).await.unwrap();
        let started = std::time::Instant::now();
        let mut buf = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
        assert!(
            closed.is_ok(),
            "connection left open ({:?})",
            String::from_utf8_lossy(opening)
        );
        assert!(started.elapsed() >= Duration::from_millis(900));
    }
}

#[tokio::test]
async fn grpc_connections_that_never_speak_are_closed() {
    let app = spawn_app(Backend::Sqlite)
        .set("REQUEST_HEAD_TIMEOUT", "1")
        .await;
    let mut stream = tokio::net::TcpStream::connect(app.grpc_addr).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;

    assert!(closed.is_ok(), "a silent gRPC connection was left open");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The service still answers on new connections.
    app.register(registration(&unique_email())).await.unwrap();
}

/// The HTTP/2 client connection preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Opens a gRPC connection, sends `opening` and then nothing; the server must
/// close it once REQUEST_HEAD_TIMEOUT (1 s here) is over, and not before.
async fn assert_closed_after_head_timeout(app: &TestApp, opening: &[u8]) {
    let mut stream = tokio::net::TcpStream::connect(app.grpc_addr).await.unwrap();
    let started = std::time::Instant::now();
    stream.write_all(opening).await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;

    assert!(
        closed.is_ok(),
        "a gRPC connection that sent \"{}\" and went quiet was left open",
        opening.escape_ascii()
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn grpc_connections_that_send_one_byte_and_go_quiet_are_closed() {
    let app = spawn_app(Backend::Sqlite)
        .set("REQUEST_HEAD_TIMEOUT", "1")
        .await;

    assert_closed_after_head_timeout(&app, b"P").await;

    app.register(registration(&unique_email())).await.unwrap();
}

#[tokio::test]
async fn grpc_connections_that_never_send_a_request_head_are_closed() {
    let app = spawn_app(Backend::Sqlite)
        .set("REQUEST_HEAD_TIMEOUT", "1")
        .await;
    // The preface and an empty SETTINGS frame: the HTTP/2 handshake, no request.
    let mut opening = PREFACE.to_vec();
    opening.extend_from_slice(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]);

    assert_closed_after_head_timeout(&app, &opening).await;

    app.register(registration(&unique_email())).await.unwrap();
}

/// Dials the gRPC server as tonic's own connector would, counting the dials:
/// a channel reconnects by itself, so a dropped connection would otherwise go
/// unnoticed.
#[derive(Clone)]
struct CountingConnector {
    addr: std::net::SocketAddr,
    dials: Arc<AtomicUsize>,
}

impl tonic::codegen::Service<http::Uri> for CountingConnector {
    type Response = hyper_util::rt::TokioIo<tokio::net::TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        self.dials.fetch_add(1, Ordering::SeqCst);
        let addr = self.addr;
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        })
    }
}

#[tokio::test]
async fn grpc_connections_may_idle_after_their_first_request() {
    let app = spawn_app(Backend::Sqlite)
        .set("REQUEST_HEAD_TIMEOUT", "1")
        .await;
    let dials = Arc::new(AtomicUsize::new(0));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .connect_with_connector(CountingConnector {
            addr: app.grpc_addr,
            dials: Arc::clone(&dials),
        })
        .await
        .unwrap();
    let mut client = AccountServiceClient::new(channel);
    client
        .register(registration(&unique_email()))
        .await
        .unwrap();

    // The deadline covers only the first request head, not idle time after it.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    client
        .register(registration(&unique_email()))
        .await
        .unwrap();
    assert_eq!(
        dials.load(Ordering::SeqCst),
        1,
        "the idle connection was closed and the channel had to reconnect"
    );
}
