//! GetAccount by id and by e-mail.

use account_service::proto::account::v1::GetAccountRequest;
use tonic::Code;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    finds_an_account_by_id_and_by_email,
    unknown_id_or_email_is_not_found,
    malformed_or_missing_lookup_is_invalid,
);

async fn finds_an_account_by_id_and_by_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let account = app.register(registration(&email)).await.unwrap();

    assert_eq!(app.get_by_id(&account.id).await.unwrap(), account);
    assert_eq!(
        app.get_by_id(&account.id.to_uppercase()).await.unwrap(),
        account
    );
    assert_eq!(app.get_by_email(&email).await.unwrap(), account);
    assert_eq!(
        app.get_by_email(&format!(" {} ", email.to_uppercase()))
            .await
            .unwrap(),
        account
    );
}

async fn unknown_id_or_email_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register(registration(&unique_email())).await.unwrap();

    assert_code(
        &app.get_by_id(&uuid::Uuid::now_v7().to_string()).await,
        Code::NotFound,
    );
    assert_code(&app.get_by_email(&unique_email()).await, Code::NotFound);
}

async fn malformed_or_missing_lookup_is_invalid(backend: Backend) {
    let app = spawn_app(backend).await;

    let status = app.get_by_id("not-a-uuid").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        vec![("id".to_string(), "Must be a valid UUID.".to_string())]
    );
    assert_code(&app.get_by_email("").await, Code::InvalidArgument);
    let none = app
        .client
        .clone()
        .get_account(GetAccountRequest { lookup: None })
        .await;
    assert_code(&none, Code::InvalidArgument);
}
