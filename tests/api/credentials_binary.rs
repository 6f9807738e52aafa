//! Sign-in, lockout, password reset and change over the real binary, on both
//! backends, with its mail going to a real SMTP server.

use std::time::Duration;

use account_service::auth::{Keyring, ResetTokens};
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    ChangePasswordRequest, CheckPasswordRequest, RequestPasswordResetRequest, ResetPasswordRequest,
};
use chrono::Utc;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::access_binary::{register_id, Service};
use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp_server::{Behaviour, SmtpServer};

on_both_backends!(the_binary_checks_resets_and_changes_passwords);

/// Where the sidecar sends a reset link; no query of its own, so the token
/// is appended with `?`.
const RESET_PAGE: &str = "http://shop.example/reset";
const RESET_REQUEST_PAGE: &str = "http://shop.example/forgot";

/// CheckPassword over `client`, its answer reduced to OK or the status.
pub(crate) async fn check(
    client: &mut AccountServiceClient<Channel>,
    email: &str,
    password: &str,
) -> Result<(), Status> {
    client
        .check_password(CheckPasswordRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
        .map(drop)
}

async fn the_binary_checks_resets_and_changes_passwords(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let smtp = SmtpServer::start(Behaviour::Accept);
    let service = Service::start(&[
        ("DATABASE_URL", db.url.clone()),
        ("EMAIL_BACKEND", "smtp".into()),
        ("SMTP_URL", smtp.url()),
        ("PUBLIC_BASE_URL", "http://localhost:8080".into()),
        ("PASSWORD_RESET_PAGE", RESET_PAGE.into()),
        ("PASSWORD_RESET_REQUEST_PAGE", RESET_REQUEST_PAGE.into()),
        ("PASSWORD_RESET_COOLDOWN", "0".into()),
        ("LOGIN_MAX_FAILURES", "3".into()),
        ("LOGIN_LOCKOUT", "60".into()),
    ])
    .await;
    let mut client = AccountServiceClient::new(service.plaintext().await);
    let http = service.http_client();
    let sidecar = |link: &str| service.sidecar(link);

    let email = unique_email();
    let id = register_id(&mut client, &email).await;
    smtp.wait_for(1, Duration::from_secs(20)).await;

    // A wrong password and an unknown address answer alike; the right one on
    // an unverified account says so, and only then.
    for (who, password) in [
        (email.as_str(), "wrong-pass1"),
        ("nobody@example.com", "secret123"),
    ] {
        let status = check(&mut client, who, password).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{who}");
        assert_eq!(
            status.message(),
            "Unable to log in with provided credentials."
        );
        assert_eq!(error_reason(&status), "INVALID_CREDENTIALS");
    }
    let status = check(&mut client, &email, "secret123").await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(error_reason(&status), "EMAIL_NOT_VERIFIED");

    // A reset link: the sidecar hands its token on, ResetPassword uses it
    // once, and the account is verified (the mailbox was proven).
    client
        .request_password_reset(RequestPasswordResetRequest {
            email: email.clone(),
        })
        .await
        .unwrap();
    let mails = smtp.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(mails[1].subject, "Ecoms Password Reset");
    let link = mails[1].link();
    let token = token_of(&link);
    let response = http.get(sidecar(&link)).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    assert_eq!(
        response.headers()["location"],
        format!("{RESET_PAGE}?token={token}").as_str()
    );
    let reset = |token: &str, password: &str| ResetPasswordRequest {
        token: token.into(),
        password: password.into(),
        confirm_password: password.into(),
    };
    let account = client
        .reset_password(reset(&token, "new-secret456"))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert!(account.verified);
    let mails = smtp.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(mails[2].subject, "Ecoms Password Changed");
    check(&mut client, &email, "new-secret456").await.unwrap();
    // The password changed: the link is spent.
    let status = client
        .reset_password(reset(&token, "other-secret7"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(error_reason(&status), "TOKEN_INVALID");

    // An expired link, genuine and bound to the current hash: TOKEN_EXPIRED
    // over gRPC, and the request page on the sidecar.
    let hash = db.password_hash(&email).await;
    // What a reset token is bound to: the address and the hash.
    let binding = format!("{email}\n{hash}");
    let issued = Utc::now() - chrono::Duration::hours(2);
    let expired = ResetTokens::new(&Keyring::new(TEST_SECRET_KEY.as_bytes(), None), 3600)
        .issue(id.parse().unwrap(), &binding, issued)
        .unwrap();
    let status = client
        .reset_password(reset(&expired, "other-secret7"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(error_reason(&status), "TOKEN_EXPIRED");
    let url = format!(
        "http://{}/account/reset-password/?token={expired}",
        service.http
    );
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.headers()["location"], RESET_REQUEST_PAGE);
    // The same token issued now works: only its age was wrong.
    let fresh = ResetTokens::new(&Keyring::new(TEST_SECRET_KEY.as_bytes(), None), 3600)
        .issue(id.parse().unwrap(), &binding, Utc::now())
        .unwrap();
    client
        .reset_password(reset(&fresh, "fresh-pass77"))
        .await
        .unwrap();
    smtp.wait_for(4, Duration::from_secs(20)).await;

    // ChangePassword: a wrong current password counts towards the lockout.
    let change = |current: &str, new: &str| ChangePasswordRequest {
        id: id.clone(),
        current_password: current.into(),
        password: new.into(),
        confirm_password: new.into(),
        keep_session_id: String::new(),
    };
    let status = client
        .change_password(change("wrong-pass1", "third-pass9"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(error_reason(&status), "INVALID_CREDENTIALS");
    let status = client
        .change_password(change("fresh-pass77", "fresh-pass77"))
        .await
        .unwrap_err();
    assert_eq!(
        violations(&status),
        vec![(
            "password".into(),
            "The new password must differ from the current one.".into()
        )]
    );
    client
        .change_password(change("fresh-pass77", "third-pass9"))
        .await
        .unwrap();
    let mails = smtp.wait_for(5, Duration::from_secs(20)).await;
    assert_eq!(mails[4].subject, "Ecoms Password Changed");
    check(&mut client, &email, "third-pass9").await.unwrap();

    // Three failures lock the address out, for the right password too, and
    // the answer carries when to try again.
    for _ in 0..3 {
        check(&mut client, &email, "wrong-pass1").await.unwrap_err();
    }
    let status = check(&mut client, &email, "third-pass9").await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(error_reason(&status), "LOGIN_LOCKED");
    assert!(status.get_details_retry_info().is_some());
    // The address is one, however it is written.
    let status = check(&mut client, &email.to_uppercase(), "third-pass9")
        .await
        .unwrap_err();
    assert_eq!(error_reason(&status), "LOGIN_LOCKED");

    let log = service.log_text();
    // No keys file: every caller may call, and the log says so at start.
    assert!(log.contains("API_KEYS_FILE is not set"), "{log}");
    for secret in [
        "secret123",
        "new-secret456",
        "fresh-pass77",
        "third-pass9",
        token.as_str(),
        hash.as_str(),
    ] {
        assert!(!log.contains(secret), "the log holds a secret");
    }
}
