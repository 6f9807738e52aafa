//! The whole log of register → mail → confirm, captured at TRACE level for
//! every crate through the production layers (JSON and text), holds no
//! password, hash, token, signing key or SMTP password. A binary of its own:
//! the capturing subscriber is process-global.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use account_service::proto::account::v1::{
    get_account_request, CheckPasswordRequest, ConfirmRegistrationRequest, GetAccountRequest,
    RequestPasswordResetRequest, ResetPasswordRequest,
};
use account_testkit::*;

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log() {
    use account_service::telemetry::{self, LogFormat};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let json = Capture(Arc::new(Mutex::new(Vec::new())));
    let text = Capture(Arc::new(Mutex::new(Vec::new())));
    let (json_writer, text_writer) = (json.clone(), text.clone());
    tracing_subscriber::registry()
        .with(telemetry::filter("trace"))
        .with(telemetry::layer(LogFormat::Json, move || {
            json_writer.clone()
        }))
        .with(telemetry::layer(LogFormat::Pretty, move || {
            text_writer.clone()
        }))
        .init();

    let password = "Pa55word-never-logged";
    let rejected_password = "Other-Pa55-never-logged";
    let smtp_password = "Smtp-Pa55-never-logged";

    // The full flow, with mail written to files.
    let app = spawn_app(Backend::Sqlite).await;
    let email = unique_email();
    let mut request = registration(&email);
    request.password = password.into();
    request.confirm_password = password.into();
    app.register(request).await.unwrap();
    let mail = app.wait_for_mails(1).await.remove(0);
    let token = mail.token();
    let response = app.http.get(mail.link()).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    app.client
        .clone()
        .confirm_registration(ConfirmRegistrationRequest::with_token(token.clone()))
        .await
        .unwrap();
    // A password reset, and a sign-in with the new password.
    let new_password = "N3w-pass-never-logged";
    app.client
        .clone()
        .request_password_reset(RequestPasswordResetRequest {
            email: email.clone(),
        })
        .await
        .unwrap();
    let reset_mail = app
        .wait_for_mails(2)
        .await
        .into_iter()
        .find(|m| m.subject.ends_with("Password Reset"))
        .expect("a reset mail");
    let reset_token = reset_mail.token();
    let followed = app.http.get(reset_mail.link()).send().await.unwrap();
    assert_eq!(followed.status(), reqwest::StatusCode::FOUND);
    app.client
        .clone()
        .reset_password(ResetPasswordRequest {
            token: reset_token.clone(),
            password: new_password.into(),
            confirm_password: new_password.into(),
        })
        .await
        .unwrap();
    app.client
        .clone()
        .check_password(CheckPasswordRequest {
            email: email.clone(),
            password: new_password.into(),
        })
        .await
        .unwrap();
    let wrong_sign_in = "Wr0ng-sign-in-never-logged";
    let _ = app
        .client
        .clone()
        .check_password(CheckPasswordRequest {
            email: email.clone(),
            password: wrong_sign_in.into(),
        })
        .await;
    let mut rejected = registration(&unique_email());
    rejected.password = rejected_password.into();
    rejected.confirm_password = format!("{rejected_password}-mismatch");
    assert!(app.register(rejected).await.is_err());
    let hash = app.db.password_hash(&email).await;

    // Delivery through an SMTP URL with credentials, to a server that is down,
    // so that its failures are logged.
    let closed = smtp_server::reserve_addr();
    let smtp_app = spawn_app(Backend::Sqlite)
        .set("EMAIL_BACKEND", "smtp")
        .set(
            "SMTP_URL",
            format!("smtp://mailer:{smtp_password}@{closed}"),
        )
        .set("EMAIL_RETRY_DELAY", "0.05")
        .set("EMAIL_MAX_RETRIES", "1")
        .await;
    smtp_app
        .register(registration(&unique_email()))
        .await
        .unwrap();
    let failed = eventually(Duration::from_secs(20), || async {
        (smtp_app.db.count("failed_email_tasks").await == 1).then_some(())
    })
    .await;
    assert!(failed.is_some(), "the delivery failure was not recorded");
    drop(smtp_app);

    // A caller's API key, and a wrong one, sent as metadata.
    let key = account_service::access::new_key();
    let wrong_key = account_service::access::new_key();
    let keys_dir = tempfile::tempdir().unwrap();
    let keys_file = keys_dir.path().join("callers.toml");
    std::fs::write(
        &keys_file,
        account_service::access::file_entry(
            "checkout",
            &[account_service::access::Scope::AccountsRead],
            &key,
            None,
        ),
    )
    .unwrap();
    let keyed_app = spawn_app(Backend::Sqlite)
        .set("API_KEYS_FILE", keys_file.display().to_string())
        .await;
    for presented in [&key, &wrong_key] {
        let mut request = tonic::Request::new(GetAccountRequest {
            lookup: Some(get_account_request::Lookup::Email(unique_email())),
        });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {presented}").parse().unwrap(),
        );
        let answer = keyed_app.client.clone().get_account(request).await;
        assert!(answer.is_err());
    }
    drop(keyed_app);
    drop(app);
    tokio::time::sleep(Duration::from_millis(200)).await;

    for (format, captured) in [("JSON", &json), ("text", &text)] {
        let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        check_log(
            format,
            &log,
            &[
                ("password", password),
                ("rejected password", rejected_password),
                ("password hash", hash.as_str()),
                ("hash salt and digest", hash.rsplit('$').next().unwrap()),
                ("token", token.as_str()),
                ("token signature", token.rsplit('.').next().unwrap()),
                ("signing key", TEST_SECRET_KEY),
                ("SMTP password", smtp_password),
                ("API key", key.as_str()),
                ("reset token", reset_token.as_str()),
                (
                    "reset token signature",
                    reset_token.rsplit('.').next().unwrap(),
                ),
                ("new password", new_password),
                ("wrong sign-in password", wrong_sign_in),
                ("wrong API key", wrong_key.as_str()),
                ("API key body", key.trim_start_matches("acs_")),
            ],
        );
    }
}

fn check_log(format: &str, log: &str, secrets: &[(&str, &str)]) {
    // The capture works: the flow is in it.
    for expected in [
        "account registered",
        "account confirmed",
        "mail delivered",
        "Register",
    ] {
        assert!(
            log.contains(expected),
            "the {format} log lacks {expected:?}"
        );
    }
    assert!(
        log.contains("mail delivery failed"),
        "the SMTP failure was not logged ({format})"
    );
    for (what, secret) in secrets {
        assert!(!log.contains(secret), "the {format} log holds the {what}");
    }
}
