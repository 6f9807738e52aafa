//! Two-step sign-in over the real binary on both backends: enrolment, with
//! the secret, its URI and its QR code read back as an authenticator app
//! reads them, and its refusals; the helpers the other `second_factor_*`
//! scenarios share.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use account_service::proto::account::v1::complete_sign_in_request::Factor;
use account_service::proto::account::v1::{
    get_account_request, Account, CompleteSignInRequest, ConfirmTotpEnrollmentRequest,
    ConfirmTotpEnrollmentResponse, EventType, GetAccountRequest, SignInResponse,
    StartTotpEnrollmentRequest, StartTotpEnrollmentResponse,
};
use resvg::{tiny_skia, usvg};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use totp_rs::TOTP;

use crate::access_binary::Service;
use crate::attacks::mails_to;
use crate::credentials_binary::check;
use crate::events::Watcher;
use crate::helpers::*;
use crate::on_both_backends;
use crate::sessions::{assert_refused, seen, try_sign_in, Client, Held, Shop, PASSWORD};

on_both_backends!(
    enrolment_answers_a_secret_its_uri_and_a_qr_code_of_it,
    enrolment_needs_the_password_and_a_code_of_the_pending_secret,
);

/// The issuer and label prefix authenticator apps show: SITE_NAME's default.
pub(crate) const SITE: &str = "Ecoms";
/// RFC 6238's time step.
const STEP: u64 = 30;

/// A shopper's authenticator app, set up from the URI it scanned. It hands
/// out each time step's code once, as a careful shopper would type it: the
/// service accepts a step's code once and never an older step's.
pub(crate) struct Authenticator {
    totp: TOTP,
    /// The newest step whose code was handed out.
    last: u64,
}

impl Authenticator {
    /// The app of a shopper who scanned `uri`, read as totp-rs reads it.
    pub(crate) fn scan(uri: &str) -> Authenticator {
        let totp = TOTP::from_url(uri).unwrap_or_else(|e| panic!("{uri}: {e:?}"));
        Authenticator { totp, last: 0 }
    }

    /// The code of the step holding unix time `time`.
    pub(crate) fn code_at(&self, time: u64) -> String {
        self.totp.generate(time)
    }

    /// The code of `offset` seconds from now.
    pub(crate) fn code_from_now(&self, offset: i64) -> String {
        self.code_at(unix_now().saturating_add_signed(offset))
    }

    /// The code of the step before the current one, as the first code the
    /// service sees: the current and the next step's stay unused.
    pub(crate) fn previous_code(&mut self) -> String {
        let step = unix_now() / STEP - 1;
        self.last = step;
        self.code_at(step * STEP)
    }

    /// A code the service has not seen yet: the current step's, or the
    /// next one's (within the step of skew accepted), or else, once both
    /// were handed out, the next step's after waiting for it to begin.
    pub(crate) async fn fresh_code(&mut self) -> String {
        loop {
            let step = unix_now() / STEP;
            if let Some(s) = [step, step + 1].into_iter().find(|s| *s > self.last) {
                self.last = s;
                return self.code_at(s * STEP);
            }
            sleep_until_next_step().await;
        }
    }

    /// Takes the codes of steps up to the one holding `time` for used:
    /// the scenario typed them itself.
    pub(crate) fn used_until(&mut self, time: u64) {
        self.last = self.last.max(time / STEP);
    }

    /// Six digits that are the code of no step near now.
    pub(crate) fn wrong_code(&self) -> String {
        let near: HashSet<String> = [-90, -60, -30, 0, 30, 60, 90]
            .into_iter()
            .map(|offset| self.code_from_now(offset))
            .collect();
        (0..)
            .map(|n: u32| format!("{:06}", (n * 137_511 + 271_828) % 1_000_000))
            .find(|c| !near.contains(c))
            .unwrap()
    }

    pub(crate) fn issuer(&self) -> Option<&str> {
        self.totp.issuer.as_deref()
    }

    pub(crate) fn account_name(&self) -> &str {
        &self.totp.account_name
    }

    fn secret(&self) -> &[u8] {
        &self.totp.secret
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn millis_into_step() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(now.as_millis() % u128::from(STEP * 1000)).unwrap()
}

async fn sleep_until_next_step() {
    let left = STEP * 1000 - millis_into_step();
    tokio::time::sleep(Duration::from_millis(left + 200)).await;
}

/// Waits, when fewer than `seconds` are left of the current step, for the
/// next step to begin; then the codes of now and now ± 30 s stay the codes
/// of the steps the service sees for that long.
pub(crate) async fn with_time_left(seconds: u64) {
    if STEP * 1000 - millis_into_step() < seconds * 1000 {
        sleep_until_next_step().await;
    }
}

pub(crate) async fn start_enrollment(
    client: &mut Client,
    account_id: &str,
    password: &str,
) -> Result<StartTotpEnrollmentResponse, Status> {
    client
        .start_totp_enrollment(StartTotpEnrollmentRequest {
            account_id: account_id.into(),
            current_password: password.into(),
        })
        .await
        .map(|r| r.into_inner())
}

pub(crate) async fn confirm(
    client: &mut Client,
    account_id: &str,
    code: &str,
) -> Result<ConfirmTotpEnrollmentResponse, Status> {
    client
        .confirm_totp_enrollment(ConfirmTotpEnrollmentRequest {
            account_id: account_id.into(),
            code: code.into(),
        })
        .await
        .map(|r| r.into_inner())
}

/// An account's second factor, as its holder keeps it.
pub(crate) struct TwoStep {
    pub(crate) app: Authenticator,
    pub(crate) recovery: Vec<String>,
}

/// Turns two-step sign-in on for the account `id` (password `PASSWORD`),
/// confirming with the previous step's code, so that the current and the
/// next step's codes are left for the scenario.
pub(crate) async fn turn_on(client: &mut Client, id: &str) -> TwoStep {
    with_time_left(3).await;
    let started = start_enrollment(client, id, PASSWORD).await.unwrap();
    let mut app = Authenticator::scan(&started.otpauth_uri);
    let confirmed = confirm(client, id, &app.previous_code()).await.unwrap();
    assert!(confirmed.account.unwrap().totp_enabled);
    TwoStep {
        app,
        recovery: confirmed.recovery_codes,
    }
}

/// The binary with `settings`, and one confirmed account with two-step
/// sign-in on: the shop, the account's address and id, and its second
/// factor.
pub(crate) async fn shop_with_two_step(
    backend: Backend,
    settings: &[(&str, &str)],
) -> (Shop, String, String, TwoStep) {
    let mut shop = Shop::start(backend, settings).await;
    let (email, id) = shop.account().await;
    let two_step = turn_on(&mut shop.client, &id).await;
    (shop, email, id, two_step)
}

/// The two-step sign-in changes `shop` streams, collected.
pub(crate) async fn watch_changes(shop: &Shop) -> Watcher {
    let channel = shop.service.plaintext().await;
    Watcher::start(&channel, "", &[EventType::SecondFactorChanged])
        .await
        .unwrap()
}

/// The challenge of a SECOND_FACTOR_REQUIRED answer.
#[track_caller]
pub(crate) fn challenge_of<T: std::fmt::Debug>(answer: Result<T, Status>) -> String {
    let status = match answer {
        Ok(answer) => panic!("expected SECOND_FACTOR_REQUIRED, got OK: {answer:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "SECOND_FACTOR_REQUIRED", "{status:?}");
    let challenge = info.metadata.get("challenge").cloned().unwrap_or_default();
    assert!(!challenge.is_empty(), "no challenge: {status:?}");
    challenge
}

/// The challenge SignIn answers the right password of `email` with.
pub(crate) async fn challenge(client: &mut Client, email: &str) -> String {
    challenge_of(try_sign_in(client, email, PASSWORD, seen("Mozilla/5.0", "192.0.2.20")).await)
}

pub(crate) fn totp(code: &str) -> Option<Factor> {
    Some(Factor::TotpCode(code.into()))
}

pub(crate) fn recovery(code: &str) -> Option<Factor> {
    Some(Factor::RecoveryCode(code.into()))
}

pub(crate) async fn complete(
    client: &mut Client,
    challenge: &str,
    factor: Option<Factor>,
) -> Result<SignInResponse, Status> {
    client
        .complete_sign_in(CompleteSignInRequest {
            challenge: challenge.into(),
            factor,
            client: seen("Mozilla/5.0", "192.0.2.20"),
        })
        .await
        .map(|r| r.into_inner())
}

/// SignIn with the right password of `email`, then CompleteSignIn with
/// its challenge and `factor`.
pub(crate) async fn sign_in_with(
    client: &mut Client,
    email: &str,
    factor: Option<Factor>,
) -> Result<SignInResponse, Status> {
    let challenge = challenge(client, email).await;
    complete(client, &challenge, factor).await
}

/// Signs `email` in with its password and a fresh code of `app`.
pub(crate) async fn sign_in_with_code(
    client: &mut Client,
    email: &str,
    app: &mut Authenticator,
) -> Held {
    let challenge = challenge(client, email).await;
    let code = app.fresh_code().await;
    match complete(client, &challenge, totp(&code)).await {
        Ok(answer) => answer.into(),
        Err(status) => panic!("CompleteSignIn of {email} refused: {status:?}"),
    }
}

pub(crate) async fn account_of(client: &mut Client, id: &str) -> Account {
    client
        .get_account(GetAccountRequest {
            lookup: Some(get_account_request::Lookup::Id(id.into())),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
}

/// The mail to `to` titled `subject`, once the binary wrote it.
pub(crate) async fn mail_titled(service: &Service, to: &str, subject: &str) -> Mail {
    eventually(Duration::from_secs(10), || async {
        mails_to(service, to)
            .into_iter()
            .find(|m| m.subject == subject)
    })
    .await
    .unwrap_or_else(|| {
        let subjects: Vec<String> = mails_to(service, to)
            .into_iter()
            .map(|m| m.subject)
            .collect();
        panic!("no mail {subject:?} to {to}, only {subjects:?}")
    })
}

/// Waits for `n` events of two-step sign-in changes and answers the ids of
/// the accounts they name, in order.
pub(crate) async fn changes_seen(watcher: &Watcher, n: usize) -> Vec<String> {
    let events = watcher.wait_for(n).await;
    for e in &events {
        assert_eq!(e.r#type, EventType::SecondFactorChanged as i32, "{e:?}");
    }
    events.into_iter().map(|e| e.account_id).collect()
}

/// A recovery code as the contract shows it: `xxxxx-xxxxx`, lower-case
/// base32.
fn is_recovery_code(code: &str) -> bool {
    let base32 = |half: &str| {
        half.len() == 5
            && half
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    };
    code.split_once('-')
        .is_some_and(|(a, b)| base32(a) && base32(b))
}

/// Ten distinct codes of the shape the contract gives.
#[track_caller]
pub(crate) fn assert_recovery_codes(codes: &[String]) {
    assert_eq!(codes.len(), 10, "{codes:?}");
    for code in codes {
        assert!(is_recovery_code(code), "{code:?}");
    }
    let distinct: HashSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), 10, "{codes:?}");
}

/// The text a QR code in SVG holds: the document rendered, as a browser
/// would show it, and read back by a QR decoder.
fn read_qr_code(svg: &str) -> String {
    let tree = usvg::Tree::from_str(svg, &usvg::Options::default()).unwrap();
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    let (width, height) = (pixmap.width(), pixmap.height());
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(
        usize::try_from(width).unwrap(),
        usize::try_from(height).unwrap(),
        |x, y| {
            let (x, y) = (u32::try_from(x).unwrap(), u32::try_from(y).unwrap());
            pixmap.pixel(x, y).unwrap().demultiply().red()
        },
    );
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the SVG");
    grids[0].decode().unwrap().1
}

async fn enrolment_answers_a_secret_its_uri_and_a_qr_code_of_it(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    // '+' and '@' are what an address holds that a URI must escape.
    let email = format!("ann+shop-{}@example.com", uuid::Uuid::new_v4().simple());
    let id = crate::attacks::verified(&shop.service, &mut shop.client, &email).await;

    let started = start_enrollment(&mut shop.client, &id, PASSWORD)
        .await
        .unwrap();
    // 160 bits in base32 without padding: 32 characters of A-Z and 2-7.
    let secret = &started.secret;
    assert_eq!(secret.len(), 32, "{secret}");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
        "{secret}"
    );
    let bytes = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    assert_eq!(bytes.len(), 20);

    let label = email.replace('+', "%2B").replace('@', "%40");
    assert_eq!(
        started.otpauth_uri,
        format!(
            "otpauth://totp/{SITE}:{label}?secret={secret}&issuer={SITE}&algorithm=SHA1&digits=6&period=30"
        )
    );
    // An app reading the URI sees the site, the address and the secret.
    let app = Authenticator::scan(&started.otpauth_uri);
    assert_eq!(app.issuer(), Some(SITE));
    assert_eq!(app.account_name(), email);
    assert_eq!(app.secret(), bytes);
    // The QR code, rendered and scanned, is the same URI.
    assert!(started.qr_code_svg.starts_with("<?xml") || started.qr_code_svg.starts_with("<svg"));
    assert_eq!(read_qr_code(&started.qr_code_svg), started.otpauth_uri);

    // Each enrolment has a secret of its own.
    let other = shop.account().await;
    let elsewhere = start_enrollment(&mut shop.client, &other.1, PASSWORD)
        .await
        .unwrap();
    assert_ne!(elsewhere.secret, started.secret);
    let label = other.0.replace('@', "%40");
    assert!(
        elsewhere
            .otpauth_uri
            .starts_with(&format!("otpauth://totp/{SITE}:{label}?secret=")),
        "{}",
        elsewhere.otpauth_uri
    );
    assert_eq!(read_qr_code(&elsewhere.qr_code_svg), elsewhere.otpauth_uri);
}

async fn enrolment_needs_the_password_and_a_code_of_the_pending_secret(backend: Backend) {
    let settings = [("LOGIN_MAX_FAILURES", "3"), ("LOGIN_LOCKOUT", "600")];
    let mut shop = Shop::start(backend, &settings).await;
    let (email, id) = shop.account().await;
    let (locked, locked_id) = shop.account().await;
    let watcher = watch_changes(&shop).await;
    let client = &mut shop.client;

    // Nothing pending yet.
    assert_refused(
        confirm(client, &id, "123456").await,
        Code::FailedPrecondition,
        "SECOND_FACTOR_NOT_STARTED",
    );
    // A wrong password is ChangePassword's refusal, and counts: three lock
    // the address out, and then even the right one is refused.
    for _ in 0..3 {
        let status = start_enrollment(client, &locked_id, "wrong-pass1")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(reason(&status).as_deref(), Some("INVALID_CREDENTIALS"));
        assert_eq!(
            status.message(),
            "Unable to log in with provided credentials."
        );
    }
    assert_refused(
        start_enrollment(client, &locked_id, PASSWORD).await,
        Code::ResourceExhausted,
        "LOGIN_LOCKED",
    );
    assert_refused(
        check(client, &locked, PASSWORD).await,
        Code::ResourceExhausted,
        "LOGIN_LOCKED",
    );

    // Starting again replaces the pending secret: a code of the first one
    // no longer confirms.
    with_time_left(5).await;
    let first = start_enrollment(client, &id, PASSWORD).await.unwrap();
    let second = start_enrollment(client, &id, PASSWORD).await.unwrap();
    assert_ne!(first.secret, second.secret);
    let replaced = Authenticator::scan(&first.otpauth_uri);
    let mut app = Authenticator::scan(&second.otpauth_uri);
    for code in [replaced.code_from_now(0), app.wrong_code()] {
        assert_refused(
            confirm(client, &id, &code).await,
            Code::InvalidArgument,
            "SECOND_FACTOR_INVALID",
        );
    }
    // Two steps away either way is too far.
    for offset in [-60, 60] {
        assert_refused(
            confirm(client, &id, &app.code_from_now(offset)).await,
            Code::InvalidArgument,
            "SECOND_FACTOR_INVALID",
        );
    }
    // Nothing of that turned it on.
    assert!(!account_of(client, &id).await.totp_enabled);
    try_sign_in(client, &email, PASSWORD, None).await.unwrap();

    let confirmed = confirm(client, &id, &app.previous_code()).await.unwrap();
    let account = confirmed.account.unwrap();
    assert_eq!(
        (account.id.as_str(), account.totp_enabled),
        (id.as_str(), true)
    );
    assert!(account_of(client, &id).await.totp_enabled);
    assert_recovery_codes(&confirmed.recovery_codes);
    let mail = mail_titled(&shop.service, &email, "Ecoms Two-Step Sign-In Turned On").await;
    assert_eq!(mail.to, email);
    assert_eq!(changes_seen(&watcher, 1).await, std::slice::from_ref(&id));

    // Once on, it cannot be started or confirmed again.
    assert_refused(
        start_enrollment(client, &id, PASSWORD).await,
        Code::FailedPrecondition,
        "SECOND_FACTOR_ALREADY_ENABLED",
    );
    assert_refused(
        confirm(client, &id, &app.fresh_code().await).await,
        Code::FailedPrecondition,
        "SECOND_FACTOR_ALREADY_ENABLED",
    );
    // The password alone no longer signs in.
    challenge_of(try_sign_in(client, &email, PASSWORD, None).await);
    // Only one change happened.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(watcher.events().await.len(), 1);
}
