//! Confirmation by the six-digit code of the welcome mail: right, wrong,
//! burned after five wrong tries, expired, replaced by a new mail, and the
//! same answer for addresses without one.

use account_service::proto::account::v1::confirm_registration_request::Proof;
use account_service::proto::account::v1::{
    Account, ConfirmRegistrationRequest, EmailCode, ResendConfirmationRequest,
};
use tonic::{Code, Status};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_code_confirms_its_account_once_right,
    five_wrong_codes_burn_the_code_until_a_new_mail,
    expired_codes_and_unknown_addresses_are_refused,
);

async fn confirm(app: &TestApp, email: &str, code: &str) -> Result<Account, Status> {
    app.client
        .clone()
        .confirm_registration(ConfirmRegistrationRequest {
            proof: Some(Proof::EmailCode(EmailCode {
                email: email.into(),
                code: code.into(),
            })),
        })
        .await
        .map(|r| r.into_inner().account.unwrap())
}

fn code_reason(result: Result<Account, Status>) -> String {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    reason(&status).expect("an ErrorInfo")
}

/// A code that is not `code`.
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Registers `email` and returns its account and the code of its welcome mail.
async fn registered(app: &TestApp, email: &str) -> (Account, String) {
    let before = app.mails().len();
    let account = app.register(registration(email)).await.unwrap();
    let mails = app.wait_for_mails(before + 1).await;
    let mail = mails.iter().find(|m| m.to.contains(email)).unwrap();
    (account, mail.code())
}

async fn a_code_confirms_its_account_once_right(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let (account, code) = registered(&app, &email).await;
    let mail = app
        .mails()
        .into_iter()
        .find(|m| m.to.contains(&email))
        .unwrap();
    assert!(
        mail.html.contains(&format!(">{code}</p>")),
        "shown in the HTML part too"
    );
    assert!(
        !app.db
            .text("SELECT code_hmac FROM confirmation_codes")
            .await
            .contains(&code),
        "stored only as a keyed hash"
    );

    // Case and white space in the address, white space around the code.
    let confirmed = confirm(&app, &email.to_uppercase(), &format!(" {code} "))
        .await
        .unwrap();
    assert_eq!(confirmed.id, account.id);
    assert!(confirmed.verified);
    // Again: still fine, and it did not count as a wrong try.
    for _ in 0..6 {
        assert!(confirm(&app, &email, &code).await.unwrap().verified);
    }
    // The link keeps working alongside.
    let link = app.mails()[0].link();
    for _ in 0..2 {
        let followed = app.http.get(&link).send().await.unwrap();
        assert_eq!(followed.headers()["location"], HOMEPAGE);
    }
    // Malformed codes and addresses.
    for bad in ["12345", "1234567", "12a456", "", "١٢٣٤٥٦"] {
        assert_eq!(
            code_reason(confirm(&app, &email, bad).await),
            "CODE_INVALID"
        );
    }
    let status = confirm(&app, "not an address", &code).await.unwrap_err();
    assert_eq!(violations(&status)[0].0, "email_code.email");
    // No proof at all is a missing token, as before.
    let none = app
        .client
        .clone()
        .confirm_registration(ConfirmRegistrationRequest { proof: None })
        .await
        .unwrap_err();
    assert_eq!(reason(&none).as_deref(), Some("TOKEN_MISSING"));
}

async fn five_wrong_codes_burn_the_code_until_a_new_mail(backend: Backend) {
    let app = spawn_app(backend).set("EMAIL_RESEND_COOLDOWN", "0").await;
    let email = unique_email();
    let (_, code) = registered(&app, &email).await;
    let wrong = other_than(&code);
    for _ in 0..5 {
        assert_eq!(
            code_reason(confirm(&app, &email, &wrong).await),
            "CODE_INVALID"
        );
    }
    // Burned: even the right code is refused now.
    assert_eq!(
        code_reason(confirm(&app, &email, &code).await),
        "CODE_EXHAUSTED"
    );
    assert_eq!(
        code_reason(confirm(&app, &email, &wrong).await),
        "CODE_EXHAUSTED"
    );
    assert!(!app.get_by_email(&email).await.unwrap().verified);

    // A new mail brings a new code and a fresh count; the old code is gone.
    app.client
        .clone()
        .resend_confirmation(ResendConfirmationRequest {
            email: email.clone(),
        })
        .await
        .unwrap();
    let mails = app.wait_for_mails(2).await;
    let fresh = mails.last().unwrap().code();
    if fresh != code {
        assert_eq!(
            code_reason(confirm(&app, &email, &code).await),
            "CODE_INVALID"
        );
    }
    assert!(confirm(&app, &email, &fresh).await.unwrap().verified);
}

async fn expired_codes_and_unknown_addresses_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let (_, code) = registered(&app, &email).await;
    app.db
        .execute(if app.db.is_sqlite() {
            "UPDATE confirmation_codes SET expires_at = 0"
        } else {
            "UPDATE confirmation_codes SET expires_at = now() - interval '1 second'"
        })
        .await;
    assert_eq!(
        code_reason(confirm(&app, &email, &code).await),
        "CODE_EXPIRED"
    );
    // A wrong code for it is just wrong.
    assert_eq!(
        code_reason(confirm(&app, &email, &other_than(&code)).await),
        "CODE_INVALID"
    );
    // Unknown addresses answer as wrong codes do: invalid five times, then
    // burned, as a real code would be.
    for n in 1..=7 {
        assert_eq!(
            code_reason(confirm(&app, &unique_email(), &code).await),
            "CODE_INVALID"
        );
        assert_eq!(
            code_reason(confirm(&app, "nobody@example.com", &code).await),
            if n <= 5 {
                "CODE_INVALID"
            } else {
                "CODE_EXHAUSTED"
            }
        );
    }
    assert!(!app.get_by_email(&email).await.unwrap().verified);
}

/// A try for an address without a code writes a row, as a try at a real
/// code does, so the two cost the same commit (PostgreSQL shows the write
/// as a new row version).
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tries_without_a_code_write_as_real_ones_do() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let app = spawn_app(backend).await;
    let version = || async {
        app.db
            .text(
                "SELECT xmin::text FROM confirmation_codes \
                 WHERE account_id = '00000000-0000-0000-0000-000000000000'",
            )
            .await
    };
    let before = version().await;
    assert_eq!(
        code_reason(confirm(&app, &unique_email(), "123456").await),
        "CODE_INVALID"
    );
    assert_ne!(version().await, before, "the stand-in row was written");
    assert_eq!(
        app.db
            .scalar("SELECT CAST(MAX(failures) AS BIGINT) FROM confirmation_codes")
            .await,
        0
    );
}
