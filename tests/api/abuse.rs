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
    // Each call has its own bucket per address: Register took none of
    // ResendConfirmation's.
    for _ in 0..2 {
        app.client
            .clone()
            .resend_confirmation(resend_request(&email.to_uppercase(), None))
            .await
            .unwrap();
    }

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
    let old_token = account_service::auth::ConfirmationTokens::new(
        &account_service::auth::Keyring::new(old_key.as_bytes(), None),
        3600,
    )
    .issue(account.id.parse().unwrap(), chrono::Utc::now())
    .unwrap();

    let confirmed = app
        .client
        .clone()
        .confirm_registration(ConfirmRegistrationRequest::with_token(old_token))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();

    assert!(confirmed.verified);
}

on_both_backends!(a_bucket_row_enforces_gcra_in_one_statement);

/// The shared store's statement, driven directly: the burst, then refusals
/// with the right wait, a refill at the sustained rate, and pruning.
async fn a_bucket_row_enforces_gcra_in_one_statement(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let storage = db.connect().await;
    let (interval, capacity) = (1_000_000, 3_000_000); // 3 calls, one a second
    let t0 = 1_900_000_000_000_000_i64;
    for _ in 0..3 {
        let taken = storage.take_from_bucket("k", t0, interval, capacity).await;
        assert_eq!(taken.unwrap(), None);
    }
    let wait = storage
        .take_from_bucket("k", t0, interval, capacity)
        .await
        .unwrap()
        .expect("the fourth call is refused");
    assert_eq!(wait, std::time::Duration::from_secs(1));
    // A refusal takes nothing: half a second on, half a second to wait.
    let wait = storage
        .take_from_bucket("k", t0 + 500_000, interval, capacity)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wait, std::time::Duration::from_millis(500));
    // Refilled at one a second.
    assert_eq!(
        storage
            .take_from_bucket("k", t0 + 1_000_000, interval, capacity)
            .await
            .unwrap(),
        None
    );
    // Keys are independent.
    assert_eq!(
        storage
            .take_from_bucket("other", t0, interval, capacity)
            .await
            .unwrap(),
        None
    );
    // Nothing is pruned while a bucket holds calls; everything once full again.
    assert_eq!(storage.prune_buckets(t0).await.unwrap(), 0);
    assert_eq!(db.count("rate_limit_buckets").await, 2);
    assert_eq!(storage.prune_buckets(t0 + 10_000_000).await.unwrap(), 2);
    assert_eq!(db.count("rate_limit_buckets").await, 0);
}

/// Two instances on one PostgreSQL: the limits hold for both together.
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_limit() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let db = TestDatabase::create(&backend).await;
    let limited = [
        ("RATE_LIMITS", "on"),
        ("RATE_LIMIT_PER_CLIENT", "12"),
        ("RATE_LIMIT_PER_EMAIL", "3"),
        ("EMAIL_RESEND_COOLDOWN", "0"),
    ];
    let a = spawn_app(db.shared()).set_all(limited).await;
    let b = spawn_app(db.shared()).set_all(limited).await;

    // Per address: 3 an hour, whichever instance is asked.
    let email = unique_email();
    let mut allowed = 0;
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        let answer = app
            .client
            .clone()
            .resend_confirmation(resend_request(&email, None))
            .await;
        match answer {
            Ok(_) => allowed += 1,
            Err(s) => assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}"),
        }
    }
    assert_eq!(
        allowed, 3,
        "together the instances allow the limit, not twice it"
    );

    // Per client: 12 a minute in all; the 8 calls above each took one.
    let mut allowed = 0;
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        let answer = app
            .client
            .clone()
            .resend_confirmation(resend_request(&unique_email(), None))
            .await;
        match answer {
            Ok(_) => allowed += 1,
            Err(s) => assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}"),
        }
    }
    assert_eq!(allowed, 4);
    assert!(db.count("rate_limit_buckets").await >= 2);

    // The same two instances with RATE_LIMIT_STORE=memory limit apart:
    // what the shared store is for.
    let db = TestDatabase::create(&backend).await;
    let memory = [("RATE_LIMIT_STORE", "memory")];
    let a = spawn_app(db.shared())
        .set_all(limited)
        .set_all(memory)
        .await;
    let b = spawn_app(db.shared())
        .set_all(limited)
        .set_all(memory)
        .await;
    let email = unique_email();
    let mut allowed = 0;
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        if app
            .client
            .clone()
            .resend_confirmation(resend_request(&email, None))
            .await
            .is_ok()
        {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 6);
    assert_eq!(db.count("rate_limit_buckets").await, 0);
}
