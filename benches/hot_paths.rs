//! Micro-benchmarks of the CPU work on the request paths other than password
//! hashing: token signing and verification (confirmation and access tokens),
//! request validation, and mail rendering. `cargo bench` prints the figures.

use std::hint::black_box;
use std::time::Duration;

use account_service::auth::{AccessTokens, ConfirmationTokens, Keyring, SigningKeys};
use account_service::domain::{Account, NewAccount, RegistrationForm};
use account_service::mail::MailComposer;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use uuid::Uuid;

const KEY: &[u8] = b"benchmark-secret-key-0123456789abcdef";

fn tokens(c: &mut Criterion) {
    let tokens = ConfirmationTokens::new(&Keyring::new(KEY, None), 3600);
    let id = Uuid::now_v7();
    let now = Utc::now();
    c.bench_function("token/sign", |b| {
        b.iter(|| tokens.issue(black_box(id), now))
    });
    let token = tokens.issue(id, now).expect("token");
    c.bench_function("token/verify", |b| {
        b.iter(|| tokens.verify(black_box(&token), now))
    });
    c.bench_function("token/reject_garbage", |b| {
        b.iter(|| tokens.verify(black_box("not.a.token"), now))
    });
}

/// What each SignIn and RefreshSession signs, and what VerifyAccessToken
/// checks before it reads the session.
fn access_tokens(c: &mut Criterion) {
    let tokens = AccessTokens::new(
        SigningKeys::derive(&Keyring::new(KEY, None)),
        "https://shop.example.com".into(),
        "ecoms".into(),
        Duration::from_secs(300),
    );
    let (account, session, now) = (Uuid::now_v7(), Uuid::now_v7(), Utc::now());
    c.bench_function("access_token/sign", |b| {
        b.iter(|| tokens.issue(black_box(account), session, now, now))
    });
    let token = tokens
        .issue(account, session, now, now)
        .expect("token")
        .token;
    c.bench_function("access_token/verify", |b| {
        b.iter(|| tokens.verify(black_box(&token), now))
    });
}

fn form(email: &str, password: &str) -> RegistrationForm {
    RegistrationForm {
        email: email.into(),
        username: "shopper".into(),
        password: password.into(),
        confirm_password: password.into(),
        term_and_condition: true,
        address: "1 Main Street, Springfield".into(),
        first_name: "Ann".into(),
        last_name: "Shopper".into(),
        phone_number: "+15550100".into(),
        created_from: "web".into(),
        locale: "fr-CA".into(),
    }
}

fn validation(c: &mut Criterion) {
    let valid = form("  Shopper.Name+tag@Example.COM ", "secret123");
    c.bench_function("validate/register_valid", |b| {
        b.iter(|| NewAccount::parse(black_box(valid.clone())))
    });
    let invalid = form("not an address", "short");
    c.bench_function("validate/register_invalid", |b| {
        b.iter(|| NewAccount::parse(black_box(invalid.clone())))
    });
}

fn templates(c: &mut Criterion) {
    let composer = MailComposer::new(
        "Ecoms <noreply@example.com>".parse().expect("address"),
        "Ecoms".into(),
        "https://shop.example.com",
        3600,
        account_service::mail::Catalogues::built_in().expect("templates"),
    );
    let now = Utc::now();
    let account = Account {
        id: Uuid::now_v7(),
        email: "shopper@example.com".into(),
        username: "shopper".into(),
        first_name: "Ann".into(),
        last_name: "Shopper".into(),
        phone_number: String::new(),
        address: String::new(),
        verified: false,
        term_and_condition: true,
        created_from: "web".into(),
        locale: String::new(),
        created_at: now,
        updated_at: now,
        totp_enabled: false,
        image: None,
    };
    let token = ConfirmationTokens::new(&Keyring::new(KEY, None), 3600)
        .issue(account.id, now)
        .expect("token");
    c.bench_function("mail/render_welcome", |b| {
        b.iter(|| composer.welcome(black_box(&account), &token, "012345", now))
    });
    // A tag without text of its own: French, with English behind it.
    let canadian = Account {
        locale: "fr-CA".into(),
        ..account.clone()
    };
    c.bench_function("mail/render_welcome_fr_ca", |b| {
        b.iter(|| composer.welcome(black_box(&canadian), &token, "012345", now))
    });
    let row = composer
        .welcome(&account, &token, "012345", now)
        .expect("render");
    c.bench_function("mail/build_message", |b| {
        b.iter(|| composer.message(black_box(&row)))
    });
}

criterion_group!(benches, tokens, access_tokens, validation, templates);
criterion_main!(benches);
