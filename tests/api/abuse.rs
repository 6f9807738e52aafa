//! Abuse: rate limits per client and per address, enumeration protection,
//! and signing-key rotation.

use account_service::proto::account::v1::{ConfirmRegistrationRequest, ResendConfirmationRequest};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};
use tonic_types::StatusExt;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(enumeration_protection_answers_alike_and_tells_the_owner);

async fn enumeration_protection_answers_alike_and_tells_the_owner(backend: Backend) {
    let app = spawn_app(backend).set("ENUMERATION_PROTECTION", "on").await;
    let email = unique_email();
    let original = app.register(registration(&email)).await.unwrap();
    app.wait_for_mails(1).await;

    let mut again = registration(&email.to_uppercase());
    again.username = "someone-else".into();
    let answer = app.register(again).await.unwrap();

    // Looks like a fresh registration...
    assert_ne!(answer.id, original.id);
    assert_eq!(answer.email, email);
    assert_eq!(answer.username, "someone-else");
    assert!(!answer.verified);
    // ...but nothing was created, and the owner is told instead.
    assert_eq!(app.db.count("accounts").await, 1);
    assert_eq!(app.get_by_email(&email).await.unwrap(), original);
    let mails = app.wait_for_mails(2).await;
    let notice = mails
        .iter()
        .find(|m| m.subject == "Ecoms Account Already Exists")
        .expect("an account-exists notice");
    assert_eq!(notice.to, email);
    assert!(notice.text.contains("Hello shopper,"), "{}", notice.text);
    assert!(
        !notice.text.contains("token="),
        "the notice must carry no link"
    );
    assert_eq!(
        mails
            .iter()
            .filter(|m| m.subject == "Ecoms Welcome Mail")
            .count(),
        1
    );
}

fn resend_request(email: &str, forwarded_for: Option<&str>) -> Request<ResendConfirmationRequest> {
    let mut request = Request::new(ResendConfirmationRequest {
        email: email.into(),
    });
    if let Some(hop) = forwarded_for {
        request
            .metadata_mut()
            .insert("x-forwarded-for", MetadataValue::try_from(hop).unwrap());
    }
    request
}

#[tokio::test]
async fn rate_limits_per_client_address() {
    let app = spawn_app(Backend::Sqlite)
        .set("RATE_LIMITS", "on")
        .set("RATE_LIMIT_PER_CLIENT", "3")
        .set("RATE_LIMIT_PER_EMAIL", "0")
        .set("EMAIL_RESEND_COOLDOWN", "0")
        .await;
    let mut client = app.client.clone();

    for _ in 0..3 {
        client
            .resend_confirmation(resend_request(&unique_email(), None))
            .await
            .unwrap();
    }
    let status = app
        .register(registration(&unique_email()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .get_details_retry_info()
            .unwrap()
            .retry_delay
            .unwrap()
            > std::time::Duration::ZERO
    );
    // X-Forwarded-For from an untrusted peer changes nothing.
    let spoofed = client
        .resend_confirmation(resend_request(&unique_email(), Some("203.0.113.5")))
        .await
        .unwrap_err();
    assert_eq!(spoofed.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn trusted_proxies_forward_the_client_address() {
    let app = spawn_app(Backend::Sqlite)
        .set("RATE_LIMITS", "on")
        .set("RATE_LIMIT_PER_CLIENT", "2")
        .set("RATE_LIMIT_PER_EMAIL", "0")
        .set("EMAIL_RESEND_COOLDOWN", "0")
        .set("TRUSTED_PROXIES", "127.0.0.1")
        .await;
    let mut client = app.client.clone();

    for shopper in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..2 {
            client
                .resend_confirmation(resend_request(&unique_email(), Some(shopper)))
                .await
                .unwrap();
        }
        let third = client
            .resend_confirmation(resend_request(&unique_email(), Some(shopper)))
            .await
            .unwrap_err();
        assert_eq!(third.code(), Code::ResourceExhausted, "{shopper}");
    }
}

#[tokio::test]
async fn rate_limits_per_target_address() {
    let app = spawn_app(Backend::Sqlite)
        .set("RATE_LIMITS", "on")
        .set("RATE_LIMIT_PER_CLIENT", "0")
        .set("RATE_LIMIT_PER_EMAIL", "2")
        .set("EMAIL_RESEND_COOLDOWN", "0")
        .await;
    let email = unique_email();
    app.register(registration(&email)).await.unwrap();
    app.client
        .clone()
        .resend_confirmation(resend_request(&email.to_uppercase(), None))
        .await
        .unwrap();

    let third = app
        .client
        .clone()
        .resend_confirmation(resend_request(&email, None))
        .await
        .unwrap_err();

    assert_eq!(third.code(), Code::ResourceExhausted);
    assert!(third.get_details_retry_info().is_some());
    // Other addresses are not affected.
    app.register(registration(&unique_email())).await.unwrap();
}

#[tokio::test]
async fn tokens_signed_with_the_previous_key_verify_during_a_rotation() {
    let old_key = "the-previous-secret-key-0123456789abcdef";
    let app = spawn_app(Backend::Sqlite)
        .set("SECRET_KEY_PREVIOUS", old_key)
        .await;
    let email = unique_email();
    let account = app.register(registration(&email)).await.unwrap();
    let old_token = account_service::auth::ConfirmationTokens::new(old_key.as_bytes(), None, 3600)
        .issue(account.id.parse().unwrap(), chrono::Utc::now())
        .unwrap();

    let confirmed = app
        .client
        .clone()
        .confirm_registration(ConfirmRegistrationRequest { token: old_token })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();

    assert!(confirmed.verified);
}
