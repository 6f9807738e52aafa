//! The account lifecycle over the real server and real SMTP: profile
//! updates by field mask, e-mail changes and their link, deletion with
//! erasure, and the admin listing.

use std::time::Duration;

use account_service::access::Scope;
use account_service::proto::account::v1::{
    confirm_registration_request, Account, ChangeEmailRequest, CheckPasswordRequest,
    ConfirmEmailChangeRequest, ConfirmRegistrationRequest, DeleteAccountRequest,
    ListAccountsRequest, RequestPasswordResetRequest, ResetPasswordRequest, UpdateProfileRequest,
};
use prost_types::FieldMask;
use tonic::{Code, Status};

use crate::access::{with_key, KeysFile};
use crate::helpers::*;
use crate::on_both_backends;
use crate::smtp_server::{Behaviour, SmtpServer};

const PASSWORD: &str = "secret123";

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn update(app: &TestApp, request: UpdateProfileRequest) -> Result<Account, Status> {
    app.client
        .clone()
        .update_profile(request)
        .await
        .map(|r| r.into_inner().account.unwrap())
}

async fn change_email(
    app: &TestApp,
    id: &str,
    new_email: &str,
    password: &str,
) -> Result<(), Status> {
    app.client
        .clone()
        .change_email(ChangeEmailRequest {
            id: id.into(),
            new_email: new_email.into(),
            current_password: password.into(),
            code: String::new(),
        })
        .await
        .map(drop)
}

/// Confirms an account with the link of its welcome mail.
async fn confirm_welcome(app: &TestApp, welcome: &Mail) {
    app.client
        .clone()
        .confirm_registration(ConfirmRegistrationRequest {
            proof: Some(confirm_registration_request::Proof::Token(welcome.token())),
        })
        .await
        .unwrap();
}

async fn confirm_change(app: &TestApp, token: &str) -> Result<Account, Status> {
    app.client
        .clone()
        .confirm_email_change(ConfirmEmailChangeRequest {
            token: token.into(),
        })
        .await
        .map(|r| r.into_inner().account.unwrap())
}

async fn delete(app: &TestApp, id: &str, password: &str) -> Result<(), Status> {
    app.client
        .clone()
        .delete_account(DeleteAccountRequest {
            id: id.into(),
            current_password: password.into(),
            code: String::new(),
        })
        .await
        .map(drop)
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Result<Account, Status> {
    app.client
        .clone()
        .check_password(CheckPasswordRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
        .map(|r| r.into_inner().account.unwrap())
}

on_both_backends!(
    profile_updates_change_only_the_masked_fields,
    an_email_change_waits_for_its_link,
    a_taken_address_is_answered_alike_and_its_owner_told,
    deletion_erases_the_account_and_keeps_a_tombstone,
    deletion_needs_the_password_unless_the_caller_is_admin,
    listing_pages_through_live_accounts_by_id,
);

async fn profile_updates_change_only_the_masked_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let before = app.register(registration(&email)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;

    let updated = update(
        &app,
        UpdateProfileRequest {
            id: before.id.clone(),
            update_mask: mask(&["first_name", "phone_number"]),
            username: "not in the mask".into(),
            first_name: "  Beatrix ".into(),
            phone_number: "+4930123".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(updated.first_name, "Beatrix");
    assert_eq!(updated.phone_number, "+4930123");
    assert_eq!(updated.username, before.username, "outside the mask");
    assert_eq!(updated.last_name, before.last_name);
    assert_eq!(updated.email, email);
    assert!(updated.updated_at.as_ref().unwrap().seconds >= before.updated_at.unwrap().seconds);
    assert_ne!(updated.updated_at, before.updated_at);
    assert_eq!(app.get_by_id(&before.id).await.unwrap(), updated);

    // A mask path may clear a field.
    let cleared = update(
        &app,
        UpdateProfileRequest {
            id: before.id.clone(),
            update_mask: mask(&["address"]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(cleared.address, "");

    // The same values again change nothing, not even updated_at.
    let same = update(
        &app,
        UpdateProfileRequest {
            id: before.id.clone(),
            update_mask: mask(&["address", "first_name"]),
            first_name: "Beatrix".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(same, cleared);

    // Paths that name other things, or nothing, are refused on update_mask,
    // with value errors reported beside them; nothing changes.
    for paths in [
        &["email"][..],
        &["password"],
        &["verified"],
        &["nickname"],
        &["first_name", "email"],
    ] {
        let status = update(
            &app,
            UpdateProfileRequest {
                id: before.id.clone(),
                update_mask: mask(paths),
                first_name: "Mallory".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{paths:?}");
        let v = violations(&status);
        assert!(
            v.iter().any(|(f, _)| f == "update_mask"),
            "{paths:?}: {v:?}"
        );
    }
    let status = update(
        &app,
        UpdateProfileRequest {
            id: before.id.clone(),
            update_mask: mask(&["phone_number", "username", "last_name"]),
            phone_number: "1".repeat(21),
            username: "x".repeat(60 * 1024),
            last_name: "a\0b".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let v = violations(&status);
    assert!(v.contains(&(
        "phone_number".into(),
        "Ensure this field has no more than 20 characters.".into()
    )));
    assert!(v.contains(&(
        "username".into(),
        "Ensure this field has no more than 200 characters.".into()
    )));
    assert!(v.contains(&(
        "last_name".into(),
        "Null characters are not allowed.".into()
    )));
    assert_eq!(app.get_by_id(&before.id).await.unwrap(), cleared);

    // Unknown and malformed ids.
    let missing = update(
        &app,
        UpdateProfileRequest {
            id: uuid::Uuid::now_v7().to_string(),
            update_mask: mask(&["username"]),
            username: "x".into(),
            ..Default::default()
        },
    )
    .await;
    assert_code(&missing, Code::NotFound);
    let bad_id = update(
        &app,
        UpdateProfileRequest {
            id: "nope".into(),
            update_mask: mask(&["username"]),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        violations(&bad_id),
        [("id".into(), "Must be a valid UUID.".into())]
    );

    // Without a mask, the fields the request sets change.
    let implied = update(
        &app,
        UpdateProfileRequest {
            id: before.id.clone(),
            update_mask: None,
            last_name: "Kiddo".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(implied.last_name, "Kiddo");
    assert_eq!(implied.first_name, "Beatrix");
    // One event per update that changed something.
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(*) FROM account_events WHERE type = 3")
            .await,
        3
    );
}

async fn an_email_change_waits_for_its_link(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend).set_all(smtp_settings(smtp.url())).await;
    let old = unique_email();
    let account = app.register(registration(&old)).await.unwrap();
    let welcome = smtp.wait_for(1, Duration::from_secs(10)).await;
    // Only a confirmed owner may move the address.
    confirm_welcome(&app, &welcome[0]).await;
    // A reset link issued before the change must stop working with it.
    app.client
        .clone()
        .request_password_reset(RequestPasswordResetRequest { email: old.clone() })
        .await
        .unwrap();
    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    let reset_token = mails
        .iter()
        .find(|m| m.subject == "Ecoms Password Reset")
        .unwrap()
        .token();

    // A wrong password changes nothing and counts as a failed sign-in.
    let new = format!("Nouveau-{}", unique_email());
    let wrong = change_email(&app, &account.id, &new, "wrong-pass1")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(error_reason(&wrong), "INVALID_CREDENTIALS");
    assert_eq!(
        app.db
            .scalar(&format!(
                "SELECT CAST(failures AS BIGINT) FROM login_failures WHERE email = '{old}'"
            ))
            .await,
        1
    );
    // Register's rules apply to the new address; the same address is refused.
    let invalid = change_email(&app, &account.id, "not-an-address", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert_eq!(violations(&invalid)[0].0, "new_email");
    let same = change_email(&app, &account.id, &old.to_uppercase(), PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(same.code(), Code::InvalidArgument);
    assert_code(
        &change_email(&app, &uuid::Uuid::now_v7().to_string(), &new, PASSWORD).await,
        Code::NotFound,
    );

    change_email(&app, &account.id, &new, PASSWORD)
        .await
        .unwrap();
    let new = new.to_lowercase();
    let mails = smtp.wait_for(4, Duration::from_secs(10)).await;
    let confirm = mails
        .iter()
        .find(|m| m.subject == "Ecoms Confirm Your New E-mail Address")
        .expect("a confirmation mail to the new address");
    assert_eq!(confirm.to, new);
    let link = confirm.link();
    assert!(
        link.starts_with(&format!(
            "http://{}/account/confirm-email/?token=",
            app.http_addr
        )),
        "{link}"
    );
    let notice = mails
        .iter()
        .find(|m| m.subject == "Ecoms E-mail Change Requested")
        .expect("a notice to the old address");
    assert_eq!(notice.to, old);
    assert!(notice.text.contains("n***@example.com"), "{}", notice.text);
    assert!(!notice.text.contains(&new));
    assert!(!notice.text.contains("token="));

    // Until the link is followed, nothing moved; HEAD does nothing.
    let head = app.http.head(&link).send().await.unwrap();
    assert!(head.status().is_success());
    assert_eq!(app.get_by_email(&old).await.unwrap().id, account.id);
    assert_code(&app.get_by_email(&new).await, Code::NotFound);

    // The link moves the account and verifies it; following it again, or
    // confirming over gRPC, answers the same.
    for _ in 0..2 {
        let followed = app.http.get(&link).send().await.unwrap();
        assert_eq!(followed.status(), reqwest::StatusCode::FOUND);
        assert_eq!(followed.headers()["location"], HOMEPAGE);
    }
    let moved = confirm_change(&app, &token_of(&link)).await.unwrap();
    assert_eq!(moved.id, account.id);
    assert_eq!(moved.email, new);
    assert!(moved.verified);
    assert_code(&app.get_by_email(&old).await, Code::NotFound);
    assert_eq!(app.get_by_email(&new).await.unwrap(), moved);
    assert_eq!(sign_in(&app, &new, PASSWORD).await.unwrap().id, account.id);
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(*) FROM account_events WHERE type = 4")
            .await,
        1,
        "one e-mail change event"
    );
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(*) FROM account_events WHERE type = 2")
            .await,
        1,
        "verified once, by the welcome link"
    );

    // The reset link issued for the old address no longer works.
    let reset = app
        .client
        .clone()
        .reset_password(ResetPasswordRequest {
            token: reset_token,
            password: "brand-new-pass1".into(),
            confirm_password: "brand-new-pass1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(error_reason(&reset), "TOKEN_INVALID");

    // Token errors as ConfirmRegistration's; other tokens do not fit.
    let welcome = mails
        .iter()
        .find(|m| m.subject == "Ecoms Welcome Mail")
        .unwrap()
        .token();
    for (token, expected) in [
        ("", "TOKEN_MISSING"),
        ("garbage", "TOKEN_INVALID"),
        (welcome.as_str(), "TOKEN_INVALID"),
    ] {
        let status = confirm_change(&app, token).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(error_reason(&status), expected);
        let followed = app
            .http
            .get(app.http_url(&format!("/account/confirm-email/?token={token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(followed.headers()["location"], REQUEST_PAGE);
    }
}

async fn a_taken_address_is_answered_alike_and_its_owner_told(backend: Backend) {
    let smtp = SmtpServer::start(Behaviour::Accept);
    let app = spawn_app(backend).set_all(smtp_settings(smtp.url())).await;
    let (mover, owner) = (unique_email(), unique_email());
    let account = app.register(registration(&mover)).await.unwrap();
    app.register(registration(&owner)).await.unwrap();
    let welcome = smtp.wait_for(2, Duration::from_secs(10)).await;
    let to_mover = welcome.iter().find(|m| m.to == mover).unwrap();
    confirm_welcome(&app, to_mover).await;

    change_email(&app, &account.id, &owner.to_uppercase(), PASSWORD)
        .await
        .unwrap();
    let mails = smtp.wait_for(4, Duration::from_secs(10)).await;
    let to_owner: Vec<_> = mails[2..].iter().filter(|m| m.to == owner).collect();
    assert_eq!(to_owner.len(), 1);
    assert_eq!(to_owner[0].subject, "Ecoms Account Already Exists");
    assert!(
        !to_owner[0].text.contains("token="),
        "no link for the owner"
    );
    assert!(mails[2..]
        .iter()
        .any(|m| m.to == mover && m.subject == "Ecoms E-mail Change Requested"));
    assert_eq!(app.get_by_email(&mover).await.unwrap().id, account.id);

    // Someone takes a free address between the request and the link.
    let wanted = unique_email();
    change_email(&app, &account.id, &wanted, PASSWORD)
        .await
        .unwrap();
    let mails = smtp.wait_for(6, Duration::from_secs(10)).await;
    let link = mails
        .iter()
        .find(|m| m.to == wanted)
        .expect("a link to the free address")
        .link();
    app.register(registration(&wanted)).await.unwrap();
    let status = confirm_change(&app, &token_of(&link)).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(
        violations(&status),
        [(
            "email".into(),
            "user with this email already exists.".into()
        )]
    );
    let followed = app.http.get(&link).send().await.unwrap();
    assert_eq!(followed.headers()["location"], REQUEST_PAGE);
    assert_eq!(app.get_by_email(&mover).await.unwrap().id, account.id);
}

async fn deletion_erases_the_account_and_keeps_a_tombstone(backend: Backend) {
    // The welcome mail is refused for now, so it is still pending when the
    // account goes: it must never be sent.
    let smtp = SmtpServer::start(Behaviour::AlwaysFailTransiently);
    let app = spawn_app(backend)
        .set_all(smtp_settings(smtp.url()))
        .set("EMAIL_RETRY_DELAY", "0.5")
        .set("EMAIL_MAX_RETRIES", "30")
        .await;
    let email = unique_email();
    let account = app.register(registration(&email)).await.unwrap();
    eventually(Duration::from_secs(10), || async {
        (smtp.refused() > 0).then_some(())
    })
    .await
    .expect("the welcome mail was tried");

    let wrong = delete(&app, &account.id, "wrong-pass1").await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(error_reason(&wrong), "INVALID_CREDENTIALS");
    assert_eq!(app.get_by_id(&account.id).await.unwrap().email, email);

    delete(&app, &account.id, PASSWORD).await.unwrap();
    smtp.set_behaviour(Behaviour::Accept);
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0].subject, "Ecoms Account Deleted");
    assert_eq!(mails[0].to, email);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "the pending welcome mail was cancelled");

    // Gone for every RPC; the row stays, with nothing personal in it.
    assert_code(&app.get_by_id(&account.id).await, Code::NotFound);
    assert_code(&app.get_by_email(&email).await, Code::NotFound);
    let status = sign_in(&app, &email, PASSWORD).await.unwrap_err();
    assert_eq!(error_reason(&status), "INVALID_CREDENTIALS");
    let id = &account.id;
    assert_eq!(
        app.db
            .scalar(&format!(
                "SELECT COUNT(*) FROM accounts WHERE id = '{id}' AND deleted_at IS NOT NULL \
                 AND email = '' AND password_hash = '' AND username = '' AND first_name = '' \
                 AND last_name = '' AND phone_number = '' AND address = ''"
            ))
            .await,
        1
    );
    assert_eq!(app.db.count("failed_email_tasks").await, 0);
    // Mail queued for it by a call that raced the deletion is never sent,
    // and housekeeping removes it with the goodbye once that went.
    let late = account_service::storage::OutboxMessage {
        id: uuid::Uuid::now_v7(),
        account_id: account.id.parse().unwrap(),
        kind: account_service::mail::MailKind::AccountExists,
        recipient: email.clone(),
        subject: "late".into(),
        text_body: "late".into(),
        html_body: "late".into(),
        created_at: chrono::Utc::now(),
        locale: String::new(),
    };
    app.storage.queue_mail(&late).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.received().len(), 1, "only the goodbye was sent");
    assert_eq!(app.storage.prune_erased_mail().await.unwrap(), 2);
    assert_eq!(
        app.db
            .scalar(&format!(
                "SELECT COUNT(*) FROM email_outbox WHERE recipient = '{email}'"
            ))
            .await,
        0
    );
    let updates = update(
        &app,
        UpdateProfileRequest {
            id: account.id.clone(),
            update_mask: mask(&["username"]),
            username: "ghost".into(),
            ..Default::default()
        },
    )
    .await;
    assert_code(&updates, Code::NotFound);

    // Deleting again is fine; an id that never existed is not found.
    delete(&app, &account.id, PASSWORD).await.unwrap();
    assert_code(
        &delete(&app, &uuid::Uuid::now_v7().to_string(), PASSWORD).await,
        Code::NotFound,
    );
    // The address is free again, for a new account.
    let again = app.register(registration(&email)).await.unwrap();
    assert_ne!(again.id, account.id);
    assert_eq!(app.get_by_email(&email).await.unwrap().id, again.id);
    let deleted_events = app
        .db
        .scalar("SELECT COUNT(*) FROM account_events WHERE type = 6")
        .await;
    assert_eq!(deleted_events, 1);
}

async fn deletion_needs_the_password_unless_the_caller_is_admin(backend: Backend) {
    let file = KeysFile::new(&[
        (
            "shop",
            &[Scope::AccountsRegister, Scope::AccountsWrite],
            None,
        ),
        ("ops", &[Scope::AccountsAdmin], None),
    ]);
    let (var, value) = file.setting();
    let app = spawn_app(backend).set(var, value).await;
    let mut client = app.client.clone();
    let (a, b) = (unique_email(), unique_email());
    let mut ids = Vec::new();
    for email in [&a, &b] {
        let account = client
            .register(with_key(registration(email), Some(file.key("shop"))))
            .await
            .unwrap()
            .into_inner()
            .account
            .unwrap();
        ids.push(account.id);
    }
    let request = |id: &str, password: &str, key: &str| {
        with_key(
            DeleteAccountRequest {
                id: id.into(),
                current_password: password.into(),
                code: String::new(),
            },
            Some(key),
        )
    };
    let missing = client
        .delete_account(request(&ids[0], "", file.key("shop")))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&missing),
        [("current_password".into(), "This field is required.".into())]
    );
    client
        .delete_account(request(&ids[0], PASSWORD, file.key("shop")))
        .await
        .unwrap();
    client
        .delete_account(request(&ids[1], "", file.key("ops")))
        .await
        .unwrap();
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(*) FROM accounts WHERE deleted_at IS NOT NULL")
            .await,
        2
    );
}

async fn listing_pages_through_live_accounts_by_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let email = format!("list-{i}-{}", unique_email());
        ids.push(app.register(registration(&email)).await.unwrap().id);
    }
    let mut client = app.client.clone();
    let list = |page_size: i32, page_token: String| ListAccountsRequest {
        page_size,
        page_token,
        ..Default::default()
    };
    let first = client
        .list_accounts(list(3, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.accounts.len(), 3);
    assert!(!first.next_page_token.is_empty());
    // An account registered between pages comes at the end, not in the middle.
    let late = app
        .register(registration(&unique_email()))
        .await
        .unwrap()
        .id;
    ids.push(late);
    let mut seen: Vec<String> = first.accounts.iter().map(|a| a.id.clone()).collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = client
            .list_accounts(list(3, token))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.accounts.iter().map(|a| a.id.clone()));
        token = page.next_page_token;
    }
    assert_eq!(seen, ids, "every account once, in id order");

    // Filters, and tokens bound to them.
    let prefixed = client
        .list_accounts(ListAccountsRequest {
            page_size: 2,
            email_prefix: "LIST-".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(prefixed
        .accounts
        .iter()
        .all(|a| a.email.starts_with("list-")));
    let swapped = client
        .list_accounts(ListAccountsRequest {
            page_size: 2,
            page_token: prefixed.next_page_token.clone(),
            verified: Some(false),
            email_prefix: "list-".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(swapped.code(), Code::InvalidArgument);
    assert_eq!(violations(&swapped)[0].0, "page_token");
    let mut tampered = prefixed.next_page_token.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = client
        .list_accounts(ListAccountsRequest {
            page_size: 2,
            page_token: String::from_utf8(tampered).unwrap(),
            email_prefix: "list-".into(),
            ..Default::default()
        })
        .await;
    assert_code(&tampered, Code::InvalidArgument);
    let percent = client
        .list_accounts(ListAccountsRequest {
            email_prefix: "%".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(percent.accounts.is_empty(), "the prefix is not a pattern");
    let verified = client
        .list_accounts(ListAccountsRequest {
            verified: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(verified.accounts.is_empty());
    assert_code(
        &client.list_accounts(list(-1, String::new())).await,
        Code::InvalidArgument,
    );
    let all = client
        .list_accounts(list(i32::MAX, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.accounts.len(), ids.len());
    assert!(all.next_page_token.is_empty());

    // Deleted accounts are not listed.
    delete(&app, &ids[0], PASSWORD).await.unwrap();
    let after = client
        .list_accounts(list(0, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.accounts.len(), ids.len() - 1);
    assert!(after.accounts.iter().all(|a| a.id != ids[0]));
}
