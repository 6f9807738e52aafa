//! SignIn's refusals over the real binary on both backends: CheckPassword's
//! answers and lockout, and the client information it will not store.

use std::net::IpAddr;

use account_service::proto::account::v1::SignInResponse;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::credentials_binary::check;
use crate::helpers::*;
use crate::on_both_backends;
use crate::sessions::{
    assert_refused, live_ids, seen, sessions_of, try_sign_in, Client, Held, Shop, PASSWORD,
};

on_both_backends!(
    sign_in_refuses_as_check_password_does,
    client_information_is_checked_and_cut_by_characters,
);

/// CheckPassword's answer and SignIn's for the same address and password.
async fn both_answers(client: &mut Client, email: &str, password: &str) -> (Status, Status) {
    let checked = check(client, email, password).await.unwrap_err();
    let signed = try_sign_in(client, email, password, None)
        .await
        .unwrap_err();
    (checked, signed)
}

fn assert_same_refusal(checked: &Status, signed: &Status, code: Code, expected: &str) {
    for status in [checked, signed] {
        assert_eq!(status.code(), code, "{status:?}");
        assert_eq!(reason(status).as_deref(), Some(expected), "{status:?}");
    }
    assert_eq!(checked.message(), signed.message());
}

async fn sign_in_refuses_as_check_password_does(backend: Backend) {
    let settings = [("LOGIN_MAX_FAILURES", "4"), ("LOGIN_LOCKOUT", "600")];
    let mut shop = Shop::start(backend, &settings).await;
    let (email, id) = shop.account().await;
    let (unconfirmed, unconfirmed_id) = shop.unconfirmed_account().await;
    let client = &mut shop.client;

    // A wrong password and an unknown address answer alike.
    let (checked, signed) = both_answers(client, &email, "wrong-pass1").await;
    assert_same_refusal(
        &checked,
        &signed,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    assert_eq!(
        signed.message(),
        "Unable to log in with provided credentials."
    );
    let (checked, signed) = both_answers(client, &unique_email(), PASSWORD).await;
    assert_same_refusal(
        &checked,
        &signed,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );

    // An unconfirmed account says so only once the password matched.
    let (checked, signed) = both_answers(client, &unconfirmed, "wrong-pass1").await;
    assert_same_refusal(
        &checked,
        &signed,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    let (checked, signed) = both_answers(client, &unconfirmed, PASSWORD).await;
    assert_same_refusal(
        &checked,
        &signed,
        Code::FailedPrecondition,
        "EMAIL_NOT_VERIFIED",
    );

    // The lockout is CheckPassword's: two failures above, two more through
    // SignIn, and the right password is refused by both.
    for _ in 0..2 {
        assert_refused(
            try_sign_in(client, &email, "wrong-pass1", None).await,
            Code::Unauthenticated,
            "INVALID_CREDENTIALS",
        );
    }
    let (checked, signed) = both_answers(client, &email, PASSWORD).await;
    assert_same_refusal(&checked, &signed, Code::ResourceExhausted, "LOGIN_LOCKED");
    assert!(signed.get_details_retry_info().is_some(), "{signed:?}");

    // No refusal started a session.
    assert!(live_ids(client, &id).await.is_empty());
    assert!(live_ids(client, &unconfirmed_id).await.is_empty());
}

async fn client_information_is_checked_and_cut_by_characters(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let client = &mut shop.client;
    let mut started = 0;
    let mut stored = |answer: Result<SignInResponse, Status>| {
        started += 1;
        Held::from(answer.unwrap()).session
    };

    // 60 KiB of user agent keeps its first 512 characters.
    let long = "A".repeat(60 * 1024);
    let session = stored(try_sign_in(client, &email, PASSWORD, seen(&long, "")).await);
    assert_eq!(session.user_agent, "A".repeat(512));
    assert_eq!(session.ip_address, "");
    // Cut by characters, not bytes, into valid UTF-8.
    let wide = "é😀ü".repeat(5 * 1024);
    let session = stored(try_sign_in(client, &email, PASSWORD, seen(&wide, "")).await);
    assert_eq!(session.user_agent.chars().count(), 512);
    assert_eq!(
        session.user_agent,
        wide.chars().take(512).collect::<String>()
    );
    // IPv6 is an address too; no client information at all is fine.
    let session =
        stored(try_sign_in(client, &email, PASSWORD, seen("curl/8", "2001:db8::1")).await);
    assert_eq!(
        session.ip_address.parse::<IpAddr>().unwrap(),
        "2001:db8::1".parse::<IpAddr>().unwrap()
    );
    let session = stored(try_sign_in(client, &email, PASSWORD, None).await);
    assert_eq!(
        (session.user_agent.as_str(), session.ip_address.as_str()),
        ("", "")
    );
    let listed = sessions_of(client, &id).await.unwrap();
    assert!(
        listed.iter().any(|s| s.user_agent == "A".repeat(512)),
        "{listed:?}"
    );

    let refused = |status: Status, field: &str| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let fields: Vec<String> = violations(&status).into_iter().map(|(f, _)| f).collect();
        assert!(fields.iter().any(|f| f == field), "{field}: {fields:?}");
        fields
    };
    for address in [
        "not-an-ip",
        "999.0.0.1",
        "203.0.113.7:443",
        "1.2.3",
        "2001:db8::g",
    ] {
        let status = try_sign_in(client, &email, PASSWORD, seen("Mozilla/5.0", address))
            .await
            .unwrap_err();
        refused(status, "client.ip_address");
    }
    let tail = format!("{}\0", "A".repeat(600));
    for agent in [
        "Mozilla\0",
        "Mozilla\u{7}",
        "Mozilla\r\nX-Forwarded-For: 10.0.0.1",
        "Mozilla \u{1b}[31mred",
        "Mozilla\u{7f}",
        "Mozilla\u{9b}31m",
        tail.as_str(),
    ] {
        let status = try_sign_in(client, &email, PASSWORD, seen(agent, "192.0.2.1"))
            .await
            .unwrap_err();
        refused(status, "client.user_agent");
    }
    // Every violation at once.
    let status = try_sign_in(client, &email, PASSWORD, seen("a\0", "nope"))
        .await
        .unwrap_err();
    let fields = refused(status, "client.user_agent");
    assert!(
        fields.iter().any(|f| f == "client.ip_address"),
        "{fields:?}"
    );

    // Nothing refused was stored.
    let listed = sessions_of(client, &id).await.unwrap();
    assert_eq!(listed.len(), started, "{listed:?}");
}
