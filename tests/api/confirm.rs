//! ConfirmRegistration over gRPC, and the confirmation link over HTTP.

use account_service::proto::account::v1::ConfirmRegistrationRequest;
use chrono::Utc;
use tonic::{Code, Status};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    confirming_with_the_mailed_token_verifies,
    confirming_twice_succeeds_and_changes_nothing,
    following_the_mailed_link_verifies_and_redirects_home,
    link_without_trailing_slash_also_works,
    link_without_token_redirects_to_the_request_page,
    expired_link_redirects_to_the_request_page,
    expired_token_is_refused_over_grpc,
    token_for_a_missing_account,
    forged_and_malformed_tokens_are_refused,
    concurrent_confirmations_of_one_token_all_succeed_with_one_update,
);

async fn concurrent_confirmations_of_one_token_all_succeed_with_one_update(backend: Backend) {
    let app = spawn_app(backend).await;
    let (account, link) = app.register_and_get_link(&unique_email()).await;
    let token = token_of(&link);

    let calls = (0..50).map(|_| confirm(&app, &token));
    let results = futures::future::join_all(calls).await;

    let confirmed: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    assert!(confirmed.iter().all(|a| a.verified && a.id == account.id));
    // One update: every answer carries the same updated_at.
    let first = confirmed[0].updated_at;
    assert!(confirmed.iter().all(|a| a.updated_at == first));
    assert_ne!(first, account.updated_at);
    assert_eq!(app.get_by_id(&account.id).await.unwrap().updated_at, first);
}

async fn confirm(
    app: &TestApp,
    token: &str,
) -> Result<account_service::proto::account::v1::Account, Status> {
    app.client
        .clone()
        .confirm_registration(ConfirmRegistrationRequest::with_token(token))
        .await
        .map(|r| r.into_inner().account.unwrap())
}

async fn get_location(app: &TestApp, url: &str) -> String {
    let response = app.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn confirming_with_the_mailed_token_verifies(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let (account, link) = app.register_and_get_link(&email).await;

    let confirmed = confirm(&app, &token_of(&link)).await.unwrap();

    assert_eq!(confirmed.id, account.id);
    assert!(confirmed.verified);
    assert!(confirmed.updated_at.unwrap().seconds >= account.updated_at.unwrap().seconds);
    assert!(app.get_by_email(&email).await.unwrap().verified);
}

async fn confirming_twice_succeeds_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, link) = app.register_and_get_link(&unique_email()).await;
    let first = confirm(&app, &token_of(&link)).await.unwrap();

    let second = confirm(&app, &token_of(&link)).await.unwrap();

    assert_eq!(first, second);
}

async fn following_the_mailed_link_verifies_and_redirects_home(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let (_, link) = app.register_and_get_link(&email).await;

    assert_eq!(get_location(&app, &link).await, HOMEPAGE);
    assert!(app.get_by_email(&email).await.unwrap().verified);
    // Following it again still lands on the home page.
    assert_eq!(get_location(&app, &link).await, HOMEPAGE);
}

async fn link_without_trailing_slash_also_works(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let (_, link) = app.register_and_get_link(&email).await;
    let url = app.http_url(&format!(
        "/account/confirm-registration?token={}",
        token_of(&link)
    ));

    assert_eq!(get_location(&app, &url).await, HOMEPAGE);
    assert!(app.get_by_email(&email).await.unwrap().verified);
}

async fn link_without_token_redirects_to_the_request_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register_and_get_link(&email).await;

    for path in [
        "/account/confirm-registration/",
        "/account/confirm-registration/?token=",
        "/account/confirm-registration/?other=1",
    ] {
        assert_eq!(get_location(&app, &app.http_url(path)).await, REQUEST_PAGE);
    }
    assert!(!app.get_by_email(&email).await.unwrap().verified);
}

async fn expired_link_redirects_to_the_request_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let (account, _) = app.register_and_get_link(&email).await;
    // Issued exactly one lifetime ago: a token whose exp is now is expired.
    let issued = Utc::now() - chrono::Duration::seconds(3600);
    let expired = app
        .tokens()
        .issue(account.id.parse().unwrap(), issued)
        .unwrap();
    let link = app.http_url(&format!("/account/confirm-registration/?token={expired}"));

    assert_eq!(get_location(&app, &link).await, REQUEST_PAGE);
    assert!(!app.get_by_email(&email).await.unwrap().verified);
}

async fn expired_token_is_refused_over_grpc(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let (account, _) = app.register_and_get_link(&email).await;
    let issued = Utc::now() - chrono::Duration::seconds(3601);
    let expired = app
        .tokens()
        .issue(account.id.parse().unwrap(), issued)
        .unwrap();

    let status = confirm(&app, &expired).await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status).as_deref(), Some("TOKEN_EXPIRED"));
    assert!(!app.get_by_email(&email).await.unwrap().verified);
    let url = app.http_url(&format!("/account/confirm-registration/?token={expired}"));
    assert_eq!(get_location(&app, &url).await, REQUEST_PAGE);
}

async fn token_for_a_missing_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app
        .tokens()
        .issue(uuid::Uuid::now_v7(), Utc::now())
        .unwrap();

    let status = confirm(&app, &token).await.unwrap_err();

    assert_eq!(status.code(), Code::NotFound);
    let url = app.http_url(&format!("/account/confirm-registration/?token={token}"));
    assert_eq!(get_location(&app, &url).await, REQUEST_PAGE);
}

async fn forged_and_malformed_tokens_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let (account, link) = app.register_and_get_link(&email).await;
    let id = account.id.parse().unwrap();
    let genuine = token_of(&link);

    let other_key = account_service::auth::ConfirmationTokens::new(
        &account_service::auth::Keyring::new(b"another key", None),
        3600,
    )
    .issue(id, Utc::now())
    .unwrap();
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let bad_signature = parts.join(".");
    let cases = [
        ("", "TOKEN_MISSING"),
        ("   ", "TOKEN_MISSING"),
        ("garbage", "TOKEN_INVALID"),
        ("a.b.c", "TOKEN_INVALID"),
        (other_key.as_str(), "TOKEN_INVALID"),
        (bad_signature.as_str(), "TOKEN_INVALID"),
    ];
    for (token, expected) in cases {
        let status = confirm(&app, token).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{token:?}");
        assert_eq!(reason(&status).as_deref(), Some(expected), "{token:?}");
        let url = app.http_url(&format!("/account/confirm-registration/?token={token}"));
        assert_eq!(get_location(&app, &url).await, REQUEST_PAGE);
    }
    assert!(!app.get_by_email(&email).await.unwrap().verified);
}
