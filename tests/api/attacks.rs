//! Attacks on the credential and lifecycle calls, over the real binary on
//! both backends: a parked e-mail change, a burst of guesses, code answers
//! that tell addresses apart, timing, and one bucket blocking another.

use std::time::{Duration, Instant};

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    confirm_registration_request::Proof, ChangeEmailRequest, ChangePasswordRequest,
    ConfirmEmailChangeRequest, ConfirmRegistrationRequest, EmailCode, RequestPasswordResetRequest,
    ResendConfirmationRequest, ResetPasswordRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::access_binary::{register_id, Service};
use crate::credentials_binary::check;
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(a_parked_email_change_link_dies_with_the_password);
on_both_backends!(a_burst_of_guesses_hashes_no_more_than_the_lockout_allows);
on_both_backends!(wrong_codes_answer_alike_for_every_kind_of_address);
on_both_backends!(imported_native_and_unknown_accounts_fail_in_the_same_time);
on_both_backends!(wrong_codes_never_block_a_reset_or_a_resend);

pub(crate) const PASSWORD: &str = "secret123";
const REQUEST_PAGE: &str = "http://shop.example/confirm-again";

pub(crate) async fn start(
    db: &TestDatabase,
    extra: &[(&str, &str)],
) -> (Service, AccountServiceClient<Channel>) {
    let mut settings = vec![
        ("DATABASE_URL", db.url.clone()),
        ("PUBLIC_BASE_URL", "http://localhost:8080".to_owned()),
        ("CONFIRMATION_MAIL_REQUEST_PAGE", REQUEST_PAGE.to_owned()),
        ("PASSWORD_RESET_COOLDOWN", "0".to_owned()),
        ("EMAIL_RESEND_COOLDOWN", "0".to_owned()),
    ];
    settings.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let service = Service::start(&settings).await;
    let client = AccountServiceClient::new(service.plaintext().await);
    (service, client)
}

/// The mails the binary wrote to `to` so far, oldest first.
pub(crate) fn mails_to(service: &Service, to: &str) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(service.dir.join("mail")) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    paths.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|raw| Mail::parse(&raw))
        .filter(|m| m.to.contains(to))
        .collect()
}

/// The newest link to `to` whose path holds `path`.
pub(crate) async fn link_to(service: &Service, to: &str, path: &str) -> String {
    eventually(Duration::from_secs(10), || async {
        mails_to(service, to).into_iter().rev().find_map(|m| {
            m.text
                .split_whitespace()
                .find(|w| w.contains(path) && w.contains("token="))
                .map(str::to_owned)
        })
    })
    .await
    .unwrap_or_else(|| panic!("a {path} link to {to}"))
}

/// Resets the password of `email` as its owner does: asks for the mail,
/// follows its link and sets `password`.
pub(crate) async fn reset_by_mail(
    service: &Service,
    client: &mut AccountServiceClient<Channel>,
    email: &str,
    password: &str,
) {
    client
        .request_password_reset(RequestPasswordResetRequest {
            email: email.into(),
        })
        .await
        .unwrap();
    let link = link_to(service, email, "reset-password").await;
    client
        .reset_password(ResetPasswordRequest {
            token: token_of(&link),
            password: password.into(),
            confirm_password: password.into(),
        })
        .await
        .unwrap();
}

pub(crate) async fn verified(
    service: &Service,
    client: &mut AccountServiceClient<Channel>,
    email: &str,
) -> String {
    let id = register_id(client, email).await;
    let code = eventually(Duration::from_secs(10), || async {
        mails_to(service, email).first().map(Mail::code)
    })
    .await
    .expect("the welcome mail");
    confirm_code(client, email, &code).await.unwrap();
    id
}

async fn confirm_code(
    client: &mut AccountServiceClient<Channel>,
    email: &str,
    code: &str,
) -> Result<(), Status> {
    client
        .confirm_registration(ConfirmRegistrationRequest {
            proof: Some(Proof::EmailCode(EmailCode {
                email: email.into(),
                code: code.into(),
            })),
        })
        .await
        .map(drop)
}

/// An e-mail change link that must no longer work: `TOKEN_INVALID` over
/// gRPC, and the sidecar sends the shopper to ask for a new mail.
async fn assert_link_is_dead(
    service: &Service,
    client: &mut AccountServiceClient<Channel>,
    link: &str,
) {
    let status = client
        .confirm_email_change(ConfirmEmailChangeRequest {
            token: token_of(link),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(error_reason(&status), "TOKEN_INVALID");
    let followed = service
        .http_client()
        .get(service.sidecar(link))
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), reqwest::StatusCode::FOUND);
    assert_eq!(followed.headers()["location"], REQUEST_PAGE);
}

async fn a_parked_email_change_link_dies_with_the_password(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let (service, mut client) = start(&db, &[]).await;

    // An attacker registers the victim's address with a password of their
    // own: the account stays unconfirmed, and cannot move.
    let victim = unique_email();
    let id = register_id(&mut client, &victim).await;
    let change = |new: &str| ChangeEmailRequest {
        id: id.clone(),
        new_email: new.into(),
        current_password: PASSWORD.into(),
        code: String::new(),
    };
    let parked = unique_email();
    let status = client.change_email(change(&parked)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(error_reason(&status), "EMAIL_NOT_VERIFIED");
    // A wrong password is still just wrong: the check comes first.
    let mut wrong = change(&parked);
    wrong.current_password = "not-it-123".into();
    let status = client.change_email(wrong).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(mails_to(&service, &parked).is_empty());

    // Once confirmed, the attacker (who still knows the password) parks a
    // link; the owner then recovers the account with a reset.
    let code = mails_to(&service, &victim)[0].code();
    confirm_code(&mut client, &victim, &code).await.unwrap();
    client.change_email(change(&parked)).await.unwrap();
    let parked_link = link_to(&service, &parked, "/account/confirm-email/").await;
    reset_by_mail(&service, &mut client, &victim, "owners-own-9").await;

    // The parked link is dead, over gRPC and through the sidecar.
    assert_link_is_dead(&service, &mut client, &parked_link).await;
    let account = client
        .get_account(account_service::proto::account::v1::GetAccountRequest {
            lookup: Some(
                account_service::proto::account::v1::get_account_request::Lookup::Id(id.clone()),
            ),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(account.email, victim, "the account did not move");

    // The same after a password change: links issued before it die.
    let mut change_now = change(&parked);
    change_now.current_password = "owners-own-9".into();
    client.change_email(change_now).await.unwrap();
    let second = eventually(Duration::from_secs(10), || async {
        let links: Vec<String> = mails_to(&service, &parked)
            .into_iter()
            .filter_map(|m| {
                m.text
                    .split_whitespace()
                    .find(|w| w.contains("/account/confirm-email/"))
                    .map(str::to_owned)
            })
            .collect();
        links.into_iter().find(|l| *l != parked_link)
    })
    .await
    .expect("a second link");
    client
        .change_password(ChangePasswordRequest {
            id: id.clone(),
            current_password: "owners-own-9".into(),
            password: "owners-next-7".into(),
            confirm_password: "owners-next-7".into(),
            keep_session_id: String::new(),
        })
        .await
        .unwrap();
    assert_link_is_dead(&service, &mut client, &second).await;
    check(&mut client, &victim, "owners-next-7").await.unwrap();
}

async fn a_burst_of_guesses_hashes_no_more_than_the_lockout_allows(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let (service, mut client) = start(
        &db,
        &[
            ("LOGIN_MAX_FAILURES", "5"),
            ("LOGIN_LOCKOUT", "600"),
            ("HASH_QUEUE", "1000"),
            ("MAX_CONCURRENT_REQUESTS", "1000"),
        ],
    )
    .await;
    let email = unique_email();
    let id = verified(&service, &mut client, &email).await;

    let before = password_hashes_so_far(service.http).await;
    let burst = (0..100).map(|i| {
        let mut client = client.clone();
        let email = email.clone();
        async move {
            let password = if i == 40 { PASSWORD } else { "wrong-pass1" };
            check(&mut client, &email, password).await
        }
    });
    let answers = futures::future::join_all(burst).await;
    let hashed = password_hashes_so_far(service.http).await - before;
    let refused = answers
        .iter()
        .filter(|a| matches!(a, Err(s) if error_reason(s) == "LOGIN_LOCKED"))
        .count();
    // At most five wrong passwords are checked. The right one is checked
    // only if it won a place before they ran out; it then gives its place
    // back, and one more wrong password may take it.
    match &answers[40] {
        Ok(()) => {
            assert!(hashed <= 6.0, "{hashed} passwords hashed in the burst");
            assert!(refused >= 94, "{refused} of 100 answered LOGIN_LOCKED");
        }
        Err(status) => {
            assert_eq!(error_reason(status), "LOGIN_LOCKED");
            assert!(hashed <= 5.0, "{hashed} passwords hashed in the burst");
            assert!(refused >= 95, "{refused} of 100 answered LOGIN_LOCKED");
            // Five wrong ones ran: locked, the right password is refused.
            let status = check(&mut client, &email, PASSWORD).await.unwrap_err();
            assert_eq!(error_reason(&status), "LOGIN_LOCKED");
        }
    }

    // Every current-password check shares the reservation: a burst of
    // wrong current passwords on a fresh address hashes at most five.
    let other = unique_email();
    let other_id = verified(&service, &mut client, &other).await;
    let before = password_hashes_so_far(service.http).await;
    let burst = (0..50).map(|_| {
        let mut client = client.clone();
        let id = other_id.clone();
        async move {
            client
                .change_password(ChangePasswordRequest {
                    id,
                    current_password: "wrong-pass1".into(),
                    password: "another-one-2".into(),
                    confirm_password: "another-one-2".into(),
                    keep_session_id: String::new(),
                })
                .await
        }
    });
    futures::future::join_all(burst).await;
    let hashed = password_hashes_so_far(service.http).await - before;
    assert!(hashed <= 5.0, "{hashed} current passwords hashed");
    let status = check(&mut client, &other, PASSWORD).await.unwrap_err();
    assert_eq!(error_reason(&status), "LOGIN_LOCKED");
    // The first address is still locked too: the burst changed nothing.
    let status = client
        .change_password(ChangePasswordRequest {
            id,
            current_password: PASSWORD.into(),
            password: "another-one-2".into(),
            confirm_password: "another-one-2".into(),
            keep_session_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(error_reason(&status), "LOGIN_LOCKED");
}

async fn wrong_codes_answer_alike_for_every_kind_of_address(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let (service, mut client) = start(&db, &[("ENUMERATION_PROTECTION", "on")]).await;
    let confirmed = unique_email();
    verified(&service, &mut client, &confirmed).await;
    let unconfirmed = unique_email();
    client.register(registration(&unconfirmed)).await.unwrap();
    let unknown = unique_email();
    let mut sequences = Vec::new();
    for email in [&confirmed, &unconfirmed, &unknown] {
        let code = if *email == unknown {
            String::new()
        } else {
            eventually(Duration::from_secs(10), || async {
                mails_to(&service, email).first().map(Mail::code)
            })
            .await
            .expect("the welcome mail")
        };
        let wrong = if code == "000000" { "000001" } else { "000000" };
        let mut answers = Vec::new();
        for _ in 0..7 {
            let status = confirm_code(&mut client, email, wrong).await.unwrap_err();
            answers.push((
                status.code(),
                error_reason(&status),
                status.message().to_owned(),
            ));
        }
        sequences.push(answers);
    }
    assert_eq!(sequences[0][4].1, "CODE_INVALID");
    assert_eq!(sequences[0][5].1, "CODE_EXHAUSTED");
    assert_eq!(sequences[0], sequences[1], "confirmed and unconfirmed");
    assert_eq!(sequences[0], sequences[2], "confirmed and unknown");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn imported_native_and_unknown_accounts_fail_in_the_same_time(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let (service, mut client) = start(
        &db,
        &[("LOGIN_MAX_FAILURES", "1000"), ("HASH_CONCURRENCY", "1")],
    )
    .await;
    let native = unique_email();
    verified(&service, &mut client, &native).await;
    let imported = unique_email();
    verified(&service, &mut client, &imported).await;
    db.execute(&format!(
        "UPDATE accounts SET password_hash = '{}' WHERE email = '{imported}'",
        django_pbkdf2(PASSWORD, "importedsalt", 870_000)
    ))
    .await;
    let unknown = unique_email();

    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..30 {
        for (i, email) in [&native, &imported, &unknown].into_iter().enumerate() {
            let started = Instant::now();
            let status = check(&mut client, email, "wrong-pass1").await.unwrap_err();
            times[i].push(started.elapsed());
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        }
    }
    let [native, imported, unknown] = times.map(median);
    eprintln!("medians: native {native:?}, imported {imported:?}, unknown {unknown:?}");
    let (low, high) = (
        native.min(imported).min(unknown),
        native.max(imported).max(unknown),
    );
    assert!(
        high.as_secs_f64() <= low.as_secs_f64() * 1.1,
        "medians: native {native:?}, imported {imported:?}, unknown {unknown:?}"
    );
}

async fn wrong_codes_never_block_a_reset_or_a_resend(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let (_service, mut client) = start(
        &db,
        &[
            ("RATE_LIMITS", "on"),
            ("RATE_LIMIT_PER_CLIENT", "0"),
            ("RATE_LIMIT_PER_EMAIL", "10"),
        ],
    )
    .await;
    let victim = unique_email();
    client.register(registration(&victim)).await.unwrap();
    let mut exhausted = None;
    for _ in 0..12 {
        if let Err(status) = confirm_code(&mut client, &victim, "000000").await {
            if status.code() == Code::ResourceExhausted {
                exhausted = Some(status);
                break;
            }
        }
    }
    assert!(
        exhausted.is_some(),
        "wrong codes have a bucket of their own"
    );
    client
        .request_password_reset(RequestPasswordResetRequest {
            email: victim.clone(),
        })
        .await
        .unwrap();
    client
        .resend_confirmation(ResendConfirmationRequest {
            email: victim.clone(),
        })
        .await
        .unwrap();
}
