//! Register: validation messages, uniqueness, hashing, the welcome mail.

use account_service::proto::account::v1::RegisterRequest;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    registration_creates_an_unverified_account,
    registration_trims_fields_and_lower_cases_the_email,
    password_is_stored_as_an_argon2id_hash,
    welcome_mail_is_multipart_and_carries_the_link,
    welcome_mail_greets_by_email_when_username_is_blank,
    invalid_email_fails,
    existing_email_fails_without_regard_to_case,
    short_password_fails,
    letters_only_password_fails,
    digits_only_password_fails,
    mismatched_confirmation_fails,
    every_violation_is_reported_at_once,
    length_limits_are_enforced,
    concurrent_registrations_of_one_address_make_one_account,
);

async fn registration_creates_an_unverified_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();

    let account = app.register(registration(&email)).await.unwrap();

    assert_eq!(account.email, email);
    assert_eq!(account.username, "shopper");
    assert_eq!(account.first_name, "Ann");
    assert_eq!(account.last_name, "Shopper");
    assert_eq!(account.phone_number, "+15550100");
    assert_eq!(account.address, "1 Main Street");
    assert_eq!(account.created_from, "web");
    assert!(account.term_and_condition);
    assert!(!account.verified);
    let id = uuid::Uuid::parse_str(&account.id).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert!(account.created_at.is_some());
    assert_eq!(account.created_at, account.updated_at);
    // What Register answered is what is stored.
    assert_eq!(app.get_by_id(&account.id).await.unwrap(), account);
}

async fn registration_trims_fields_and_lower_cases_the_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let mut request = registration(&format!("  {}  ", email.to_uppercase()));
    request.username = "  shopper  ".into();
    request.password = " secret123 ".into();
    request.confirm_password = "secret123".into();

    let account = app.register(request).await.unwrap();

    assert_eq!(account.email, email);
    assert_eq!(account.username, "shopper");
}

async fn password_is_stored_as_an_argon2id_hash(backend: Backend) {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let app = spawn_app(backend).await;
    let email = unique_email();

    app.register(registration(&email)).await.unwrap();

    let stored = app.db.password_hash(&email).await;
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    let parsed = PasswordHash::new(&stored).unwrap();
    assert!(argon2::Argon2::default()
        .verify_password(b"secret123", &parsed)
        .is_ok());
}

async fn welcome_mail_is_multipart_and_carries_the_link(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();

    let account = app.register(registration(&email)).await.unwrap();

    let mails = app.wait_for_mails(1).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.subject, "Ecoms Welcome Mail");
    assert_eq!(mail.from, "Ecoms <noreply@ecoms.example>");
    assert_eq!(mail.to, email);
    assert_eq!(mail.content_type, "multipart/alternative");
    assert!(mail.message_id.ends_with("@ecoms.example>"));
    assert!(mail.text.contains("Hello shopper,"), "{}", mail.text);
    assert!(mail.html.contains("Hello shopper,"), "{}", mail.html);
    let link = mail.link();
    assert!(link.starts_with(&format!(
        "http://{}/account/confirm-registration/?token=",
        app.http_addr
    )));
    assert!(mail.html.contains(&link), "HTML part lacks {link}");
    // The token names the new account.
    let id = app
        .tokens()
        .verify(&mail.token(), chrono::Utc::now())
        .unwrap();
    assert_eq!(id.to_string(), account.id);
}

async fn welcome_mail_greets_by_email_when_username_is_blank(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let mut request = registration(&email);
    request.username = "   ".into();

    app.register(request).await.unwrap();

    let mail = &app.wait_for_mails(1).await[0];
    assert!(
        mail.text.contains(&format!("Hello {email},")),
        "{}",
        mail.text
    );
}

/// Asserts INVALID_ARGUMENT with exactly these violations, and that nothing
/// was created.
async fn assert_rejected(app: &TestApp, request: RegisterRequest, expected: &[(&str, &str)]) {
    let email = request.email.trim().to_lowercase();
    let status = app.register(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(f, d)| (f.to_string(), d.to_string()))
        .collect();
    assert_eq!(violations(&status), expected);
    for (field, description) in &expected {
        assert!(
            status
                .message()
                .contains(&format!("{field}: {description}")),
            "status message {:?} lacks {field}: {description}",
            status.message()
        );
    }
    // A lookup by a valid address finds nothing; an invalid one is refused
    // like the registration was.
    if !email.is_empty() {
        let lookup = app.get_by_email(&email).await;
        let expected = if expected.iter().any(|(f, _)| f == "email") {
            Code::InvalidArgument
        } else {
            Code::NotFound
        };
        assert_code(&lookup, expected);
    }
    assert_eq!(app.db.count("accounts").await, 0);
    assert_eq!(app.db.count("email_outbox").await, 0);
}

async fn invalid_email_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad in [
        "plainaddress",
        "user@localhost",
        "us er@example.com",
        "a..b@example.com",
    ] {
        assert_rejected(
            &app,
            registration(bad),
            &[("email", "Enter a valid email address.")],
        )
        .await;
    }
}

async fn existing_email_fails_without_regard_to_case(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register(registration(&email)).await.unwrap();

    let status = app
        .register(registration(&email.to_uppercase()))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(
        violations(&status),
        vec![(
            "email".to_string(),
            "user with this email already exists.".to_string()
        )]
    );
    assert_eq!(app.db.count("accounts").await, 1);
    assert_eq!(app.db.count("email_outbox").await, 1);
}

async fn short_password_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut request = registration(&unique_email());
    request.password = "abc123".into();
    request.confirm_password = "abc123".into();
    assert_rejected(
        &app,
        request,
        &[(
            "password",
            "This password is too short. It must contain at least 8 characters.",
        )],
    )
    .await;
}

async fn letters_only_password_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut request = registration(&unique_email());
    request.password = "onlyletters".into();
    request.confirm_password = "onlyletters".into();
    assert_rejected(
        &app,
        request,
        &[("password", "password must be alphanumeric")],
    )
    .await;
}

async fn digits_only_password_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut request = registration(&unique_email());
    request.password = "1234567890".into();
    request.confirm_password = "1234567890".into();
    assert_rejected(
        &app,
        request,
        &[("password", "password must be alphanumeric")],
    )
    .await;
}

async fn mismatched_confirmation_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut request = registration(&unique_email());
    request.confirm_password = "secret124".into();
    assert_rejected(
        &app,
        request,
        &[("confirm_password", "passwords do not match")],
    )
    .await;
}

async fn every_violation_is_reported_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_rejected(
        &app,
        RegisterRequest::default(),
        &[
            ("email", "This field is required."),
            ("password", "This field is required."),
            ("confirm_password", "This field is required."),
        ],
    )
    .await;
    let request = RegisterRequest {
        email: "bad".into(),
        password: "abc".into(),
        confirm_password: "abd".into(),
        ..registration("x")
    };
    assert_rejected(
        &app,
        request,
        &[
            ("email", "Enter a valid email address."),
            (
                "password",
                "This password is too short. It must contain at least 8 characters.",
            ),
            ("password", "password must be alphanumeric"),
            ("confirm_password", "passwords do not match"),
        ],
    )
    .await;
}

async fn length_limits_are_enforced(backend: Backend) {
    let app = spawn_app(backend).await;
    // A valid address (SMTP's 64-character local part, 255-character
    // domain) that is over the whole address's limit.
    let long_email = format!(
        "{}@{}.{}.com",
        "a".repeat(64),
        ["b".repeat(63), "b".repeat(63), "b".repeat(63)].join("."),
        "b".repeat(59)
    );
    let password = format!("{}1", "a".repeat(128));
    let request = RegisterRequest {
        email: long_email,
        username: "u".repeat(201),
        password: password.clone(),
        confirm_password: password,
        first_name: "é".repeat(151),
        last_name: "l".repeat(151),
        phone_number: "1".repeat(21),
        created_from: "c".repeat(16),
        address: "a".repeat(1001),
        term_and_condition: true,
        locale: "x".repeat(65),
    };
    let n = |max: usize| format!("Ensure this field has no more than {max} characters.");
    let expected = [
        ("email", n(300)),
        ("username", n(200)),
        ("password", n(128)),
        ("address", n(1000)),
        ("first_name", n(150)),
        ("last_name", n(150)),
        ("phone_number", n(20)),
        ("created_from", n(15)),
        ("locale", "Enter a valid language tag.".to_owned()),
    ];
    let expected: Vec<(&str, &str)> = expected.iter().map(|(f, d)| (*f, d.as_str())).collect();
    assert_rejected(&app, request, &expected).await;

    // Exactly at every limit (counted in characters, not bytes) is accepted.
    let email = format!(
        "{}@{}.{}.com",
        "é".repeat(64),
        ["é".repeat(63), "é".repeat(63), "é".repeat(63)].join("."),
        "é".repeat(39)
    );
    assert_eq!(email.chars().count(), 300);
    let password = format!("{}1", "a".repeat(127));
    let request = RegisterRequest {
        email: email.clone(),
        username: "ü".repeat(200),
        password: password.clone(),
        confirm_password: password,
        first_name: "é".repeat(150),
        last_name: "l".repeat(150),
        phone_number: "1".repeat(20),
        created_from: "c".repeat(15),
        address: "a".repeat(1000),
        term_and_condition: false,
        locale: "zh-Hant-TW".into(),
    };
    let account = app.register(request).await.unwrap();
    assert_eq!(account.email, email);
}

async fn concurrent_registrations_of_one_address_make_one_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();

    let attempts = (0..50).map(|i| {
        let mut request = registration(&email);
        if i % 2 == 1 {
            request.email = email.to_uppercase();
        }
        app.register(request)
    });
    let results = futures::future::join_all(attempts).await;

    let ok = results.iter().filter(|r| r.is_ok()).count();
    let exists = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::AlreadyExists))
        .count();
    assert_eq!((ok, exists), (1, 49), "{results:?}");
    assert_eq!(app.db.count("accounts").await, 1);
    assert_eq!(app.db.count("email_outbox").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_at_once_with_resource_exhausted() {
    let app = spawn_app(Backend::Sqlite)
        .set("HASH_CONCURRENCY", "1")
        .set("HASH_QUEUE", "1")
        .set("MAX_CONCURRENT_REQUESTS", "4")
        .await;

    let calls = (0..24).map(|_| app.register(registration(&unique_email())));
    let results = futures::future::join_all(calls).await;

    let ok = results.iter().filter(|r| r.is_ok()).count();
    let shed: Vec<&tonic::Status> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(ok >= 1, "some registrations must get through");
    assert!(
        !shed.is_empty(),
        "a burst beyond the limits must be refused"
    );
    for status in shed {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.get_details_retry_info().is_some(), "{status:?}");
    }
    assert_eq!(app.db.count("accounts").await, ok as i64);
}

#[tokio::test]
async fn oversized_messages_are_refused_before_decoding() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut request = registration(&unique_email());
    request.address = "a".repeat(100 * 1024);

    let status = app.register(request).await.unwrap_err();

    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(app.db.count("accounts").await, 0);
}
