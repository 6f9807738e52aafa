//! ResendConfirmation: the same answer for every address, mail only for an
//! unverified account, and a cooldown per address.

use account_service::proto::account::v1::ResendConfirmationRequest;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    answers_alike_and_mails_only_unverified_accounts,
    cooldown_holds_for_every_address,
    invalid_email_is_refused_like_register,
);

async fn resend(app: &TestApp, email: &str) -> Result<(), Status> {
    app.client
        .clone()
        .resend_confirmation(ResendConfirmationRequest {
            email: email.into(),
        })
        .await
        .map(|r| {
            let _empty = r.into_inner();
        })
}

async fn answers_alike_and_mails_only_unverified_accounts(backend: Backend) {
    let app = spawn_app(backend).await;
    let unverified = unique_email();
    let verified = unique_email();
    let unknown = unique_email();
    app.register_and_get_link(&unverified).await;
    let (_, link) = app.register_and_get_link(&verified).await;
    app.http.get(link).send().await.unwrap();
    assert!(app.get_by_email(&verified).await.unwrap().verified);

    for email in [&unverified, &verified, &unknown] {
        assert!(resend(&app, email).await.is_ok(), "{email}");
    }

    app.wait_for_mails(3).await;
    // Give a wrongly queued mail time to show up.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mails = app.mails();
    assert_eq!(
        mails.len(),
        3,
        "only the unverified address gets a new mail"
    );
    // Mail files are named by time-ordered outbox id: the last is the new one.
    let fresh = mails.last().unwrap();
    assert_eq!(fresh.to, unverified);
    assert_eq!(fresh.subject, "Ecoms Welcome Mail");
    let first = mails.iter().find(|m| m.to == unverified).unwrap();
    assert_ne!(first.token(), fresh.token(), "a new link, not the old one");

    // The new link confirms the account.
    let response = app.http.get(fresh.link()).send().await.unwrap();
    assert_eq!(response.headers()["location"], HOMEPAGE);
    assert!(app.get_by_email(&unverified).await.unwrap().verified);
}

async fn cooldown_holds_for_every_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let unverified = unique_email();
    let unknown = unique_email();
    app.register_and_get_link(&unverified).await;
    resend(&app, &unverified).await.unwrap();
    resend(&app, &unknown).await.unwrap();

    for email in [&unverified, &unknown, &unknown.to_uppercase()] {
        let status = resend(&app, email).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{email}");
        let retry = status.get_details_retry_info().expect("RetryInfo detail");
        let delay = retry.retry_delay.expect("a retry delay");
        assert!(delay > std::time::Duration::ZERO && delay <= std::time::Duration::from_secs(60));
    }
    app.wait_for_mails(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.mails().len(),
        2,
        "a refused request must not queue mail"
    );
}

async fn invalid_email_is_refused_like_register(backend: Backend) {
    let app = spawn_app(backend).await;

    let status = resend(&app, "not-an-address").await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        vec![(
            "email".to_string(),
            "Enter a valid email address.".to_string()
        )]
    );
    let status = resend(&app, "").await.unwrap_err();
    assert_eq!(
        violations(&status),
        vec![("email".to_string(), "This field is required.".to_string())]
    );
}
