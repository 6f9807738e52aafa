//! Password reset: the request and its mail over real SMTP, the sidecar's
//! link, ResetPassword, and tokens that stop working once used.

use std::time::Duration;

use account_service::proto::account::v1::{
    ChangePasswordRequest, ChangePasswordResponse, CheckPasswordRequest,
    RequestPasswordResetRequest, ResetPasswordRequest,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp_server::{Behaviour, SmtpServer};

const RESET_PAGE: &str = "https://shop.example.com/reset-password/?from=mail";
const RESET_REQUEST_PAGE: &str = "https://shop.example.com/password-reset-request/";

fn smtp_settings(url: String) -> [(&'static str, String); 6] {
    [
        ("EMAIL_BACKEND", "smtp".into()),
        ("SMTP_URL", url),
        ("SMTP_TIMEOUT", "5".into()),
        ("PASSWORD_RESET_PAGE", RESET_PAGE.into()),
        ("PASSWORD_RESET_REQUEST_PAGE", RESET_REQUEST_PAGE.into()),
        ("PASSWORD_RESET_COOLDOWN", "0".into()),
    ]
}

async fn request_reset(app: &TestApp, email: &str) -> Result<(), Status> {
    app.client
        .clone()
        .request_password_reset(RequestPasswordResetRequest {
            email: email.into(),
        })
        .await
        .map(drop)
}

async fn reset(app: &TestApp, token: &str, password: &str) -> Result<String, Status> {
    app.client
        .clone()
        .reset_password(ResetPasswordRequest {
            token: token.into(),
            password: password.into(),
            confirm_password: password.into(),
        })
        .await
        .map(|r| r.into_inner().account.unwrap().email)
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Result<(), Status> {
    app.client
        .clone()
        .check_password(CheckPasswordRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
        .map(drop)
}

fn reason(status: &Status) -> String {
    status.get_details_error_info().expect("ErrorInfo").reason
}

on_both_backends!(
    a_reset_link_sets_a_new_password_once,
    requests_answer_alike_and_cool_down,
    bad_tokens_and_passwords_change_nothing,
);

async fn a_reset_link_sets_a_new_password_once(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend).set_all(smtp_settings(smtp.url())).await;
    let email = unique_email();
    app.register(registration(&email)).await.unwrap();
    smtp.wait_for(1, Duration::from_secs(10)).await;
    // Locked out by failed sign-ins: a reset clears that too.
    for _ in 0..5 {
        let _ = sign_in(&app, &email, "wrong-pass1").await;
    }

    request_reset(&app, &email.to_uppercase()).await.unwrap();
    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    let mail = mails
        .iter()
        .find(|m| m.subject == "Ecoms Password Reset")
        .expect("a password reset mail");
    assert_eq!(mail.to, email);
    assert!(mail.content_type.starts_with("multipart/alternative"));
    let link = mail.link();
    assert!(
        link.starts_with(&format!(
            "http://{}/account/reset-password/?token=",
            app.http_addr
        )),
        "{link}"
    );
    assert!(mail.html.contains(&link.replace('&', "&amp;")) || mail.html.contains(&link));
    let token = token_of(&link);

    // The link changes nothing, however often it is followed (and HEAD too).
    for _ in 0..2 {
        let followed = app.http.get(&link).send().await.unwrap();
        assert_eq!(followed.status(), reqwest::StatusCode::FOUND);
        let location = followed.headers()["location"].to_str().unwrap().to_owned();
        let target = url::Url::parse(&location).unwrap();
        assert!(location.starts_with("https://shop.example.com/reset-password/?from=mail&token="));
        assert_eq!(
            target.query_pairs().find(|(k, _)| k == "token").unwrap().1,
            token
        );
    }
    let head = app.http.head(&link).send().await.unwrap();
    assert_eq!(head.status(), reqwest::StatusCode::FOUND);

    // The new password is set; the account is verified and no longer locked.
    let answered = reset(&app, &token, "brand-new-pass1").await.unwrap();
    assert_eq!(answered, email);
    let account = app.get_by_email(&email).await.unwrap();
    assert!(account.verified, "a reset proves the mailbox");
    sign_in(&app, &email, "brand-new-pass1").await.unwrap();
    let old = sign_in(&app, &email, PASSWORD).await.unwrap_err();
    assert_eq!(old.code(), Code::Unauthenticated);
    // And the shopper is told.
    let mails = smtp.wait_for(3, Duration::from_secs(10)).await;
    let notice = mails
        .iter()
        .find(|m| m.subject == "Ecoms Password Changed")
        .expect("a password changed notice");
    assert_eq!(notice.to, email);
    assert!(!notice.text.contains("token="));

    // The token is spent: the password it was bound to is gone.
    let again = reset(&app, &token, "another-pass1").await.unwrap_err();
    assert_eq!(again.code(), Code::InvalidArgument);
    assert_eq!(reason(&again), "TOKEN_INVALID");
    let followed = app.http.get(&link).send().await.unwrap();
    assert_eq!(followed.headers()["location"], RESET_REQUEST_PAGE);
    sign_in(&app, &email, "brand-new-pass1").await.unwrap();
}

const PASSWORD: &str = "secret123";

async fn requests_answer_alike_and_cool_down(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend)
        .set_all(smtp_settings(smtp.url()))
        .set("PASSWORD_RESET_COOLDOWN", "60")
        .await;
    let email = unique_email();
    app.register(registration(&email)).await.unwrap();
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let unknown = unique_email();
    request_reset(&app, &email).await.unwrap();
    request_reset(&app, &unknown).await.unwrap();
    for address in [&email, &unknown] {
        let status = request_reset(&app, address).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        let delay = status
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .unwrap();
        assert!(delay > Duration::from_secs(50) && delay <= Duration::from_secs(60));
    }
    // Only the known address got a mail.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resets: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| m.subject == "Ecoms Password Reset")
        .collect();
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].to, email);
    // The reset cooldown is its own: a confirmation mail may still be asked for.
    app.client
        .clone()
        .resend_confirmation(
            account_service::proto::account::v1::ResendConfirmationRequest {
                email: email.clone(),
            },
        )
        .await
        .unwrap();
    // Bad addresses are refused as Register refuses them.
    let status = request_reset(&app, "not an address").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status)[0].0, "email");
}

async fn bad_tokens_and_passwords_change_nothing(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend).set_all(smtp_settings(smtp.url())).await;
    let email = unique_email();
    app.register(registration(&email)).await.unwrap();
    request_reset(&app, &email).await.unwrap();
    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    let token = mails
        .iter()
        .find(|m| m.subject == "Ecoms Password Reset")
        .unwrap()
        .token();
    let hash = app.db.password_hash(&email).await;

    // Register's rules and messages, every violation at once.
    let status = app
        .client
        .clone()
        .reset_password(ResetPasswordRequest {
            token: token.clone(),
            password: "short".into(),
            confirm_password: "other".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        [
            (
                "password".to_owned(),
                "This password is too short. It must contain at least 8 characters.".to_owned()
            ),
            (
                "password".to_owned(),
                "password must be alphanumeric".to_owned()
            ),
            (
                "confirm_password".to_owned(),
                "passwords do not match".to_owned()
            ),
        ]
    );
    // Token problems.
    for (bad, expected) in [
        ("", "TOKEN_MISSING"),
        ("not-a-token", "TOKEN_INVALID"),
        (&format!("{token}x")[..], "TOKEN_INVALID"),
    ] {
        let status = reset(&app, bad, "brand-new-pass1").await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(reason(&status), expected, "{bad}");
    }
    // A confirmation token is not a reset token.
    let confirmation = app
        .tokens()
        .issue(
            uuid::Uuid::parse_str(&app.get_by_email(&email).await.unwrap().id).unwrap(),
            chrono::Utc::now(),
        )
        .unwrap();
    let status = reset(&app, &confirmation, "brand-new-pass1")
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "TOKEN_INVALID");
    assert_eq!(app.db.password_hash(&email).await, hash, "nothing changed");
    // The link with a bad token leads to the request page.
    let followed = app
        .http
        .get(app.http_url("/account/reset-password/?token=garbage"))
        .send()
        .await
        .unwrap();
    assert_eq!(followed.headers()["location"], RESET_REQUEST_PAGE);
    let missing = app
        .http
        .get(app.http_url("/account/reset-password/"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.headers()["location"], RESET_REQUEST_PAGE);
    // The genuine token still works after all that.
    reset(&app, &token, "brand-new-pass1").await.unwrap();
}

async fn change(
    app: &TestApp,
    id: &str,
    current: &str,
    password: &str,
) -> Result<ChangePasswordResponse, Status> {
    app.client
        .clone()
        .change_password(ChangePasswordRequest {
            id: id.into(),
            current_password: current.into(),
            password: password.into(),
            confirm_password: password.into(),
            keep_session_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

on_both_backends!(changing_the_password_needs_the_current_one_and_ends_reset_links);

async fn changing_the_password_needs_the_current_one_and_ends_reset_links(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend)
        .set_all(smtp_settings(smtp.url()))
        .set("LOGIN_MAX_FAILURES", "3")
        .await;
    let email = unique_email();
    let id = app.register(registration(&email)).await.unwrap().id;
    request_reset(&app, &email).await.unwrap();
    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    let reset_token = mails
        .iter()
        .find(|m| m.subject == "Ecoms Password Reset")
        .unwrap()
        .token();
    let hash = app.db.password_hash(&email).await;

    // Bad input: every violation at once, nothing changed.
    let status = app
        .client
        .clone()
        .change_password(ChangePasswordRequest {
            id: "not-a-uuid".into(),
            current_password: "".into(),
            password: "short".into(),
            confirm_password: "short".into(),
            keep_session_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut fields: Vec<String> = violations(&status).into_iter().map(|(f, _)| f).collect();
    fields.dedup();
    assert_eq!(fields, ["id", "current_password", "password"]);
    let same = change(&app, &id, PASSWORD, PASSWORD).await.unwrap_err();
    assert_eq!(
        violations(&same),
        [(
            "password".to_owned(),
            "The new password must differ from the current one.".to_owned()
        )]
    );
    let unknown = change(
        &app,
        &uuid::Uuid::now_v7().to_string(),
        PASSWORD,
        "brand-new-pass1",
    )
    .await;
    assert_code(&unknown, Code::NotFound);
    // A wrong current password counts towards the sign-in lockout.
    for _ in 0..3 {
        let wrong = change(&app, &id, "wrong-pass1", "brand-new-pass1")
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), Code::Unauthenticated);
        assert_eq!(reason(&wrong), "INVALID_CREDENTIALS");
    }
    let locked = change(&app, &id, PASSWORD, "brand-new-pass1")
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted);
    let locked = sign_in(&app, &email, PASSWORD).await.unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert_eq!(app.db.password_hash(&email).await, hash, "nothing changed");

    // Once the lockout is over, the right current password changes it.
    app.db.execute("DELETE FROM login_failures").await;
    let changed = change(&app, &id, PASSWORD, "brand-new-pass1")
        .await
        .unwrap();
    assert_eq!(changed.account.unwrap().email, email);
    let not_verified = sign_in(&app, &email, "brand-new-pass1").await.unwrap_err();
    assert_eq!(
        not_verified.code(),
        Code::FailedPrecondition,
        "the new password matched"
    );
    let mails = smtp.wait_for(3, Duration::from_secs(10)).await;
    assert!(mails
        .iter()
        .any(|m| m.subject == "Ecoms Password Changed" && m.to == email));
    // The reset link issued before is spent.
    let status = reset(&app, &reset_token, "yet-another-pass1")
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "TOKEN_INVALID");
}
