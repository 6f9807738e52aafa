//! Operations: Prometheus metrics, request ids, JSON logs, and the
//! `migrate` and `check-config` subcommands.

use std::process::{Command, Stdio};
use std::time::Duration;

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{ConfirmRegistrationRequest, RegisterRequest};
use tonic::metadata::MetadataValue;
use tonic::Request;

use crate::helpers::*;

async fn scrape(app: &TestApp) -> String {
    let response = app.http.get(app.http_url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_what_happens() {
    let app = spawn_app(Backend::Sqlite).await;
    let before = scrape(&app).await;

    let (_, link) = app.register_and_get_link(&unique_email()).await;
    app.http.get(&link).send().await.unwrap();
    app.http
        .get(app.http_url("/account/confirm-registration/?token=nope"))
        .send()
        .await
        .unwrap();
    let _ = app.register(RegisterRequest::default()).await;
    // The outbox gauges follow a snapshot refreshed every METRICS_REFRESH.
    let after = eventually(Duration::from_secs(10), || async {
        let text = scrape(&app).await;
        (metric_sample(&text, "account_mail_deliveries_total{outcome=\"sent\"}") >= 1.0
            && metric_sample(&text, "account_outbox_messages{state=\"sent\"}") >= 1.0)
            .then_some(text)
    })
    .await
    .expect("the delivery was not counted");

    let ok = "account_rpc_requests_total{method=\"Register\",caller=\"anonymous\",code=\"Ok\"}";
    let invalid = "account_rpc_requests_total{method=\"Register\",caller=\"anonymous\",code=\"InvalidArgument\"}";
    assert_eq!(metric_sample(&after, ok) - metric_sample(&before, ok), 1.0);
    assert_eq!(
        metric_sample(&after, invalid) - metric_sample(&before, invalid),
        1.0
    );
    assert!(
        after.contains("account_rpc_duration_seconds_bucket{"),
        "no latency histogram"
    );
    assert_eq!(metric_sample(&after, "account_registrations_total"), 1.0);
    assert_eq!(metric_sample(&after, "account_confirmations_total"), 1.0);
    assert_eq!(
        metric_sample(
            &after,
            "account_http_confirmations_total{outcome=\"confirmed\"}"
        ),
        1.0
    );
    assert_eq!(
        metric_sample(
            &after,
            "account_http_confirmations_total{outcome=\"TOKEN_INVALID\"}"
        ),
        1.0
    );
    assert_eq!(
        metric_sample(&after, "account_outbox_messages{state=\"sent\"}"),
        1.0
    );
    assert!(after.contains("account_outbox_messages{state=\"pending\"}"));
    assert!(after.contains("account_hash_queue_length"));
}

#[tokio::test]
async fn request_ids_are_returned_and_kept() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client = app.client.clone();

    let fresh = client
        .register(registration(&unique_email()))
        .await
        .unwrap();
    let id = fresh.metadata().get("x-request-id").expect("a request id");
    assert!(!id.to_str().unwrap().is_empty());

    let mut request = Request::new(ConfirmRegistrationRequest::with_token("bad"));
    request.metadata_mut().insert(
        "x-request-id",
        MetadataValue::from_static("caller-chosen-42"),
    );
    let status = client.confirm_registration(request).await.unwrap_err();
    assert_eq!(
        status.metadata().get("x-request-id").unwrap(),
        "caller-chosen-42"
    );
}

#[test]
fn check_config_validates_and_redacts() {
    let output = service_binary!()
        .args(["check-config"])
        .env(
            "DATABASE_URL",
            "postgres://app:hunter2@db.internal/accounts",
        )
        .env("SECRET_KEY", "a-very-secret-signing-key-0123456789")
        .env("EMAIL_BACKEND", "smtp")
        .env("SMTP_URL", "smtp://mailer:smtp-hunter3@relay.internal:587")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        shown.contains("db.internal") && shown.contains("relay.internal"),
        "{shown}"
    );
    for secret in ["hunter2", "smtp-hunter3", "a-very-secret-signing-key"] {
        assert!(!shown.contains(secret), "check-config printed a secret");
    }
    let bad = service_binary!()
        .args(["check-config"])
        .env("GRPC_ADDR", "nowhere")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8(bad.stderr).unwrap().contains("GRPC_ADDR"));
}

#[tokio::test]
async fn migrate_prepares_a_database() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let output = service_binary!()
        .args(["migrate"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(db.count("accounts").await, 0);
    assert_eq!(db.count("email_outbox").await, 0);
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let grpc = crate::smtp_server::reserve_addr();
    let http = crate::smtp_server::reserve_addr();
    let mail = tempfile::tempdir().unwrap();
    let child = service_binary!()
        .env("DATABASE_URL", &db.url)
        .env("GRPC_ADDR", grpc.to_string())
        .env("HTTP_ADDR", http.to_string())
        .env("EMAIL_BACKEND", "file")
        .env("EMAIL_FILE_PATH", mail.path())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let ready = eventually(Duration::from_secs(20), || async {
        let r = client
            .get(format!("http://{http}/readyz"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    assert!(ready.is_some());
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let response = AccountServiceClient::new(channel)
        .register(registration(&unique_email()))
        .await
        .unwrap();
    let request_id = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // Stop once the mail is out (a send not yet started would be left to
    // the next start, and log nothing here).
    let delivered = eventually(Duration::from_secs(10), || async {
        let files = std::fs::read_dir(mail.path()).ok()?.count();
        (files > 0).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "the mail was not delivered");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let output = child.wait_with_output().unwrap();

    let stderr = String::from_utf8(output.stderr).unwrap();
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let rpc = events
        .iter()
        .find(|e| e["fields"]["message"] == "rpc")
        .expect("an rpc event");
    assert_eq!(rpc["fields"]["method"], "Register");
    assert_eq!(rpc["fields"]["code"], "Ok");
    assert!(rpc["fields"]["latency_ms"].is_number());
    assert_eq!(rpc["span"]["request_id"], request_id.as_str());
    assert!(events
        .iter()
        .any(|e| e["fields"]["message"] == "mail delivered"));
}
