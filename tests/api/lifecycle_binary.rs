//! The account lifecycle and the event stream over the real binary, on
//! both backends, with callers known by their keys.

use std::time::Duration;

use account_service::access::Scope;
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    ChangeEmailRequest, DeleteAccountRequest, EventType, ListAccountsRequest, UpdateProfileRequest,
    WatchAccountEventsRequest,
};
use tonic::Code;

use crate::access::{with_key, KeysFile};
use crate::access_binary::Service;
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(the_binary_runs_an_account_through_its_life);

/// The links in the mail the binary wrote so far.
fn links(service: &Service) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(service.dir.join("mail")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| {
            let mail = Mail::parse(&std::fs::read(e.path()).ok()?);
            mail.text
                .split_whitespace()
                .find(|w| w.contains("token="))
                .map(str::to_owned)
        })
        .collect()
}

async fn the_binary_runs_an_account_through_its_life(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let file = KeysFile::new(&[
        (
            "shop",
            &[
                Scope::AccountsRegister,
                Scope::AccountsWrite,
                Scope::AccountsRead,
            ],
            None,
        ),
        ("ops", &[Scope::AccountsAdmin], None),
        ("crm", &[Scope::EventsRead], None),
    ]);
    let service = Service::start(&[
        ("DATABASE_URL", db.url.clone()),
        ("API_KEYS_FILE", file.path.display().to_string()),
        ("PUBLIC_BASE_URL", "http://localhost:8080".into()),
    ])
    .await;
    let channel = service.plaintext().await;
    let mut client = AccountServiceClient::new(channel.clone());
    let (shop, ops, crm) = (file.key("shop"), file.key("ops"), file.key("crm"));

    let mut events = client
        .watch_account_events(with_key(WatchAccountEventsRequest::default(), Some(crm)))
        .await
        .unwrap()
        .into_inner();
    let refused = client
        .watch_account_events(with_key(WatchAccountEventsRequest::default(), Some(shop)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let email = unique_email();
    let id = client
        .register(with_key(registration(&email), Some(shop)))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .id;
    let http = service.http_client();
    let sidecar = |link: &str| service.sidecar(link);
    // Only a confirmed owner may move the address.
    let welcome = eventually(Duration::from_secs(10), || async {
        links(&service).into_iter().next()
    })
    .await
    .expect("the welcome mail's link");
    let confirmed = http.get(sidecar(&welcome)).send().await.unwrap();
    assert_eq!(confirmed.status(), reqwest::StatusCode::FOUND);
    let updated = client
        .update_profile(with_key(
            UpdateProfileRequest {
                id: id.clone(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["address".into()],
                }),
                address: "2 Side Street".into(),
                ..Default::default()
            },
            Some(shop),
        ))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(updated.address, "2 Side Street");
    let new = unique_email();
    client
        .change_email(with_key(
            ChangeEmailRequest {
                id: id.clone(),
                new_email: new.clone(),
                current_password: "secret123".into(),
                code: String::new(),
            },
            Some(shop),
        ))
        .await
        .unwrap();
    let link = eventually(Duration::from_secs(10), || async {
        links(&service)
            .into_iter()
            .find(|l| l.contains("/account/confirm-email/"))
    })
    .await
    .expect("the new address's link");
    let followed = http.get(sidecar(&link)).send().await.unwrap();
    assert_eq!(followed.status(), reqwest::StatusCode::FOUND);

    // Only an admin lists; an admin deletes without the password.
    let listed = client
        .list_accounts(with_key(ListAccountsRequest::default(), Some(ops)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.accounts.len(), 1);
    assert_eq!(listed.accounts[0].email, new);
    let refused = client
        .list_accounts(with_key(ListAccountsRequest::default(), Some(shop)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    client
        .delete_account(with_key(
            DeleteAccountRequest {
                id: id.clone(),
                current_password: String::new(),
                code: String::new(),
            },
            Some(ops),
        ))
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.len() < 5 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        if event.r#type != EventType::Unspecified as i32 {
            assert_eq!(event.account_id, id);
            seen.push(EventType::try_from(event.r#type).unwrap());
        }
    }
    assert_eq!(
        seen,
        [
            EventType::AccountRegistered,
            EventType::AccountVerified,
            EventType::ProfileUpdated,
            EventType::EmailChanged,
            EventType::AccountDeleted,
        ]
    );
    assert!(!service.log_text().contains("secret123"));
}
