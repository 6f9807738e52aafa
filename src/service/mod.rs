//! The account use cases, free of any transport: register, confirm, look up.

mod credentials;
mod lifecycle;

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use secrecy::SecretString;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::access::AccessError;
use crate::auth::{
    ConfirmationCodes, ConfirmationTokens, EmailChangeTokens, FailureFloor, HashError, PageTokens,
    PasswordHasher, ResetTokens, StoredCode, TokenError,
};
use crate::domain::{self, Account, Email, FieldViolation, NewAccount, Password, ValidationErrors};
use crate::events::EventFeed;
use crate::mail::{MailComposer, TemplateError};
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::storage::{Batcher, CodeTry, OutboxMessage, Storage, StorageError};

pub use lifecycle::{
    parse_deletion, parse_email_change, AccountPage, ListQuery, DEFAULT_PAGE_SIZE, INVALID_CURSOR,
    INVALID_PAGE_TOKEN, MAX_PAGE_SIZE, SAME_EMAIL,
};

/// Renders a confirmation mail: for the account, with the link's token and
/// the code, at a time.
type RenderConfirmation =
    fn(&MailComposer, &Account, &str, &str, DateTime<Utc>) -> Result<OutboxMessage, TemplateError>;

/// Why a confirmation code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("the confirmation code is invalid")]
    Invalid,
    #[error("the confirmation code has expired; ask for a new mail")]
    Expired,
    #[error("too many wrong confirmation codes; ask for a new mail")]
    Exhausted,
}

impl CodeError {
    /// The `google.rpc.ErrorInfo` reason clients match on.
    pub fn reason(self) -> &'static str {
        match self {
            CodeError::Invalid => "CODE_INVALID",
            CodeError::Expired => "CODE_EXPIRED",
            CodeError::Exhausted => "CODE_EXHAUSTED",
        }
    }
}

/// Message for a registration whose address is taken.
pub const EMAIL_TAKEN: &str = "user with this email already exists.";
/// Message for an id that is not a UUID.
pub const INVALID_UUID: &str = "Must be a valid UUID.";

/// Every way a use case can fail; transports map these to their own answers.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No caller, an unknown one, or one without the scope the call needs.
    #[error(transparent)]
    Access(AccessError),
    /// A password reset token that is missing, invalid, expired or spent.
    #[error("{}", reset_token_message(*.0))]
    ResetToken(TokenError),
    /// The same address asked for a password reset mail too recently.
    #[error("a password reset was requested for this address recently; try again in {} s", .0.as_secs().max(1))]
    ResetCoolingDown(std::time::Duration),
    /// Wrong password, or no account with that address.
    #[error("{INVALID_CREDENTIALS}")]
    InvalidCredentials,
    /// The password matched, but the address was never confirmed.
    #[error("E-mail is not verified.")]
    EmailNotVerified,
    /// Too many failed password checks for this address.
    #[error("too many failed sign-in attempts; try again in {} s", .0.as_secs().max(1))]
    LockedOut(std::time::Duration),
    /// The caller used up its requests_per_minute.
    #[error("this caller's request quota is used up; try again in {} s", .0.as_secs().max(1))]
    QuotaExceeded(std::time::Duration),
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error("{EMAIL_TAKEN}")]
    EmailTaken,
    #[error(transparent)]
    Token(TokenError),
    /// A confirmation code that is wrong (or for an address without one),
    /// expired, or burned by too many wrong tries.
    #[error(transparent)]
    Code(CodeError),
    #[error("account not found")]
    NotFound,
    /// An event cursor older than the retention.
    #[error("{}", crate::events::CursorError::Expired)]
    CursorExpired,
    #[error("the service is busy, try again shortly")]
    Busy,
    /// This instance is shutting down: try another, or again shortly.
    #[error("the service is shutting down; resume from the last cursor")]
    ShuttingDown,
    /// Too many calls from one client or for one address.
    #[error("too many requests; try again in {} s", .0.as_secs().max(1))]
    RateLimited(std::time::Duration),
    /// The same address asked for a confirmation mail too recently.
    #[error("a confirmation mail was requested for this address recently; try again in {} s", .0.as_secs().max(1))]
    CoolingDown(std::time::Duration),
    #[error("the database is unavailable")]
    Unavailable(#[source] StorageError),
    #[error("unexpected error")]
    Unexpected(#[source] anyhow::Error),
}

fn reset_token_message(e: TokenError) -> &'static str {
    match e {
        TokenError::Missing => "the password reset token is missing",
        TokenError::Invalid => "the password reset token is invalid",
        TokenError::Expired => "the password reset token has expired",
    }
}

/// ChangePassword's answer to a new password equal to the current one.
pub const SAME_PASSWORD: &str = "The new password must differ from the current one.";

/// What a failed password check answers, known address or not.
pub const INVALID_CREDENTIALS: &str = "Unable to log in with provided credentials.";

impl From<StorageError> for ServiceError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => ServiceError::NotFound,
            StorageError::Conflict => ServiceError::EmailTaken,
            e @ (StorageError::Unavailable(_) | StorageError::NotReady) => {
                ServiceError::Unavailable(e)
            }
            other => ServiceError::Unexpected(other.into()),
        }
    }
}

/// A template that does not render is a bug in the templates, never the
/// caller's doing.
impl From<TemplateError> for ServiceError {
    fn from(e: TemplateError) -> Self {
        ServiceError::Unexpected(e.into())
    }
}

impl From<HashError> for ServiceError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ServiceError::Busy,
            HashError::Failed(e) => ServiceError::Unexpected(e),
        }
    }
}

/// A token holding NUL is refused like any other field holding it.
fn refuse_nul_token(token: &str) -> Result<(), ServiceError> {
    if domain::has_nul(token) {
        return Err(ServiceError::Invalid(ValidationErrors::single(
            "token",
            domain::NULL_CHARACTERS,
        )));
    }
    Ok(())
}

/// Names what was being done when a call failed unexpectedly, so that the
/// logged error chain says which step broke; the expected outcomes (not
/// found, taken, unavailable, busy) pass through unchanged.
trait Context<T> {
    fn context(self, doing: &'static str) -> Result<T, ServiceError>;
}

impl<T, E: Into<ServiceError>> Context<T> for Result<T, E> {
    fn context(self, doing: &'static str) -> Result<T, ServiceError> {
        self.map_err(|e| match e.into() {
            ServiceError::Unexpected(e) => ServiceError::Unexpected(e.context(doing)),
            expected => expected,
        })
    }
}

/// The public fields of a registration, echoed back by a quiet answer.
struct NewAccountView {
    email: String,
    username: String,
    first_name: String,
    last_name: String,
    phone_number: String,
    address: String,
    term_and_condition: bool,
    created_from: String,
    locale: String,
}

impl From<NewAccount> for NewAccountView {
    fn from(n: NewAccount) -> Self {
        NewAccountView {
            email: n.email.into_string(),
            username: n.username,
            first_name: n.first_name,
            last_name: n.last_name,
            phone_number: n.phone_number,
            address: n.address,
            term_and_condition: n.term_and_condition,
            created_from: n.created_from,
            locale: n.locale,
        }
    }
}

impl NewAccountView {
    /// A new, unverified account with these fields.
    fn into_account(self, id: Uuid, now: DateTime<Utc>) -> Account {
        Account {
            id,
            email: self.email,
            username: self.username,
            first_name: self.first_name,
            last_name: self.last_name,
            phone_number: self.phone_number,
            address: self.address,
            verified: false,
            term_and_condition: self.term_and_condition,
            created_from: self.created_from,
            locale: self.locale,
            created_at: now,
            updated_at: now,
        }
    }
}

fn new_account_of(a: &Account) -> NewAccountView {
    NewAccountView {
        email: a.email.clone(),
        username: a.username.clone(),
        first_name: a.first_name.clone(),
        last_name: a.last_name.clone(),
        phone_number: a.phone_number.clone(),
        address: a.address.clone(),
        term_and_condition: a.term_and_condition,
        created_from: a.created_from.clone(),
        locale: a.locale.clone(),
    }
}

/// How an account is looked up.
#[derive(Debug, Clone)]
pub enum Lookup {
    Id(Uuid),
    Email(Email),
}

impl Lookup {
    /// An id as a client sent it: a UUID, surrounding white space ignored.
    pub fn id(raw: &str) -> Result<Lookup, ValidationErrors> {
        if domain::has_nul(raw) {
            return Err(ValidationErrors::single("id", domain::NULL_CHARACTERS));
        }
        Uuid::parse_str(raw.trim())
            .map(Lookup::Id)
            .map_err(|_| ValidationErrors::single("id", INVALID_UUID))
    }

    /// An address as a client sent it, validated like everywhere else.
    pub fn email(raw: &str) -> Result<Lookup, ValidationErrors> {
        parse_email(raw).map(Lookup::Email)
    }
}

/// Parses sign-in credentials: the address as Register would take it, and
/// the password (required and without NUL once trimmed, as Register trims
/// it), with every violation at once. No other rule applies to the
/// password: it is only compared, and handed over as typed, since a Django
/// hash may have been made of surrounding spaces.
pub fn parse_credentials(
    email: &str,
    password: &str,
) -> Result<(Email, SecretString), ValidationErrors> {
    let email = parse_email(email);
    let trimmed = password.trim();
    let password_problem = if trimmed.is_empty() {
        Some(domain::REQUIRED)
    } else if domain::has_nul(trimmed) {
        Some(domain::NULL_CHARACTERS)
    } else {
        None
    };
    match (email, password_problem) {
        (Ok(email), None) => Ok((email, SecretString::from(password.to_owned()))),
        (email, problem) => {
            let mut errors = email.err().unwrap_or(ValidationErrors(Vec::new()));
            if let Some(problem) = problem {
                errors.0.push(FieldViolation {
                    field: "password",
                    description: problem.to_owned(),
                });
            }
            Err(errors)
        }
    }
}

/// Parses a password change: the account id, the current password (required
/// and without NUL once trimmed, handed over as typed like a sign-in's) and
/// the new one with its confirmation under Register's rules, every violation
/// at once.
pub fn parse_password_change(
    id: &str,
    current: &str,
    password: &str,
    confirm: &str,
) -> Result<(Uuid, SecretString, Password), ValidationErrors> {
    let mut errors = ValidationErrors(Vec::new());
    let id = match Lookup::id(id) {
        Ok(Lookup::Id(id)) => Some(id),
        Ok(Lookup::Email(_)) => None,
        Err(e) => {
            errors.0.extend(e.0);
            None
        }
    };
    let trimmed = current.trim();
    let problem = if trimmed.is_empty() {
        Some(domain::REQUIRED)
    } else if domain::has_nul(trimmed) {
        Some(domain::NULL_CHARACTERS)
    } else {
        None
    };
    if let Some(problem) = problem {
        errors.0.push(FieldViolation {
            field: "current_password",
            description: problem.to_owned(),
        });
    }
    let new = domain::parse_new_password(password, confirm)
        .map_err(|e| errors.0.extend(e.0))
        .ok();
    match (id, new) {
        (Some(id), Some(new)) if errors.0.is_empty() => {
            // The same password typed with spaces around is still the same
            // (both are compared trimmed): handed over trimmed, it meets the
            // same-password rule.
            let current = if trimmed == new.expose() {
                trimmed
            } else {
                current
            };
            Ok((id, SecretString::from(current.to_owned()), new))
        }
        _ => Err(errors),
    }
}

/// Parses an address sent on its own (ResendConfirmation, GetAccount), with
/// the messages Register gives for the same field.
pub fn parse_email(raw: &str) -> Result<Email, ValidationErrors> {
    Email::parse(raw).map_err(|problems| {
        ValidationErrors(
            problems
                .into_iter()
                .map(|description| FieldViolation {
                    field: "email",
                    description,
                })
                .collect(),
        )
    })
}

/// Stands in for a missing account so that an unknown address costs what a
/// known one does; nothing made from it is stored or sent.
fn placeholder_account(email: &Email, now: DateTime<Utc>) -> Account {
    NewAccountView {
        email: email.as_str().to_owned(),
        username: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        phone_number: String::new(),
        address: String::new(),
        term_and_condition: false,
        created_from: String::new(),
        locale: String::new(),
    }
    .into_account(Uuid::nil(), now)
}

pub struct Accounts {
    storage: Arc<dyn Storage>,
    hasher: PasswordHasher,
    tokens: ConfirmationTokens,
    composer: Arc<MailComposer>,
    /// Wakes the delivery worker as soon as a mail is queued.
    mail_queued: Arc<Notify>,
    resend_cooldown: std::time::Duration,
    /// Until the database was first reached, every use case answers UNAVAILABLE.
    readiness: Arc<Readiness>,
    /// Answer a taken address like a success, so Register reveals nothing.
    enumeration_protection: bool,
    metrics: Arc<Metrics>,
    /// Concurrent confirmations, sent to the database as one statement.
    confirmations: Arc<Batcher>,
    /// Concurrent look-ups by id, sent to the database as one statement.
    lookups: Arc<Batcher>,
    sign_in: SignInPolicy,
    resets: Option<PasswordResets>,
    email_changes: Option<EmailChangeTokens>,
    pages: PageTokens,
    /// The six-digit codes mailed beside confirmation links.
    codes: ConfirmationCodes,
    /// Woken after every commit that writes events.
    events: Arc<EventFeed>,
    /// The soonest a failed sign-in answers.
    failure_floor: Arc<FailureFloor>,
}

/// How password resets are issued: their tokens and how often an address
/// may ask for one.
#[derive(Clone)]
pub struct PasswordResets {
    pub tokens: ResetTokens,
    pub cooldown: std::time::Duration,
}

/// The key under which a password reset request's cooldown is kept, beside
/// the confirmation mail cooldowns (keyed by the bare address).
fn reset_cooldown_key(email: &Email) -> String {
    format!("password-reset:{}", email.as_str())
}

/// What reset and e-mail change tokens are bound to: the password hash and
/// the address, so that they stop working when either changes.
fn credential_binding(email: &str, hash: &str) -> String {
    format!("{email}\n{hash}")
}

/// When failed password checks lock an address out.
#[derive(Debug, Clone, Copy)]
pub struct SignInPolicy {
    /// Consecutive failures that start a lockout.
    pub max_failures: u32,
    /// The first lockout; each further one lasts twice the one before.
    pub lockout: std::time::Duration,
}

/// The longest lockout, however many came before.
pub const MAX_LOCKOUT: std::time::Duration = std::time::Duration::from_secs(3600);

impl SignInPolicy {
    /// How long the lockout after `earlier` previous ones lasts.
    pub fn lockout_after(&self, earlier: i64) -> std::time::Duration {
        let doublings = u32::try_from(earlier.clamp(0, 31)).unwrap_or(31);
        self.lockout
            .saturating_mul(1u32 << doublings)
            .min(MAX_LOCKOUT)
    }
}

impl Default for SignInPolicy {
    fn default() -> Self {
        SignInPolicy {
            max_failures: 5,
            lockout: std::time::Duration::from_secs(60),
        }
    }
}

/// Database timestamps keep microseconds; rounding here makes what Register
/// answers equal to what a later read returns.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl Accounts {
    /// `readiness` is marked by start-up once the database was reached;
    /// `metrics` is where the use cases count what they do.
    pub fn new(
        storage: Arc<dyn Storage>,
        hasher: PasswordHasher,
        tokens: ConfirmationTokens,
        composer: Arc<MailComposer>,
        mail_queued: Arc<Notify>,
        readiness: Arc<Readiness>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let verify = Arc::clone(&storage);
        let read = Arc::clone(&storage);
        Accounts {
            confirmations: Batcher::new(move |ids| {
                let storage = Arc::clone(&verify);
                async move { storage.mark_all_verified(&ids, now()).await }
            }),
            lookups: Batcher::new(move |ids| {
                let storage = Arc::clone(&read);
                async move { storage.accounts_by_ids(&ids).await }
            }),
            hasher,
            tokens,
            composer,
            mail_queued,
            resend_cooldown: std::time::Duration::from_secs(60),
            readiness,
            enumeration_protection: false,
            metrics,
            sign_in: SignInPolicy::default(),
            resets: None,
            email_changes: None,
            pages: PageTokens::new(&rand::random::<[u8; 32]>(), None),
            codes: ConfirmationCodes::new(&rand::random::<[u8; 32]>(), None, 3600),
            events: Arc::new(EventFeed::new(Arc::clone(&storage))),
            failure_floor: Arc::new(FailureFloor::default()),
            storage,
        }
    }

    /// Failed sign-ins answer no sooner than `floor` after the call began.
    pub fn with_failure_floor(mut self, floor: FailureFloor) -> Self {
        self.failure_floor = Arc::new(floor);
        self
    }

    /// The language of mail for accounts that chose none.
    pub fn default_locale(&self) -> &str {
        self.composer.default_locale()
    }

    /// Enables e-mail changes and stable page tokens (signed with the
    /// server key, so that any instance opens them), and feeds `events`.
    pub fn with_lifecycle(
        mut self,
        email_changes: EmailChangeTokens,
        pages: PageTokens,
        events: Arc<EventFeed>,
    ) -> Self {
        self.email_changes = Some(email_changes);
        self.pages = pages;
        self.events = events;
        self
    }

    /// Confirmation codes keyed with the server key, so that any instance
    /// checks a code another one mailed.
    pub fn with_confirmation_codes(mut self, codes: ConfirmationCodes) -> Self {
        self.codes = codes;
        self
    }

    /// The feed of the event stream.
    pub fn events(&self) -> &Arc<EventFeed> {
        &self.events
    }

    /// Enables password resets.
    pub fn with_password_resets(mut self, resets: PasswordResets) -> Self {
        self.resets = Some(resets);
        self
    }

    fn resets(&self) -> Result<&PasswordResets, ServiceError> {
        self.resets.as_ref().ok_or_else(|| {
            ServiceError::Unexpected(anyhow::anyhow!("password resets are not configured"))
        })
    }

    /// Queues a password reset mail when the address has an account. Every
    /// valid address gets the same answer after the same work, and the same
    /// cooldown (RESOURCE_EXHAUSTED with the time to wait).
    #[tracing::instrument(name = "request_password_reset", skip_all)]
    pub async fn request_password_reset(&self, email: &Email) -> Result<(), ServiceError> {
        self.ensure_ready()?;
        let resets = self.resets()?;
        let now = now();
        let found = self
            .storage
            .credentials_by_email(email.as_str())
            .await
            .context("looking the address up")?;
        let deliver = found.is_some();
        let (account, hash) =
            found.unwrap_or_else(|| (placeholder_account(email, now), String::new()));
        let token = resets
            .tokens
            .issue(account.id, &credential_binding(&account.email, &hash), now)
            .map_err(|e| ServiceError::Unexpected(e.context("signing a password reset token")))?;
        let mail = self
            .composer
            .password_reset(&account, &token, now)
            .context("rendering the password reset mail")?;
        let key = reset_cooldown_key(email);
        if let Some(wait) = self
            .queue_after_cooldown(&key, now, resets.cooldown, (&mail, None), deliver)
            .await?
        {
            return Err(ServiceError::ResetCoolingDown(wait));
        }
        if deliver {
            tracing::info!(account_id = %account.id, "password reset mail queued");
        }
        Ok(())
    }

    /// Records a request for `mail` under the cooldown `key` and queues the
    /// mail (and stores its confirmation code, if it has one) when `deliver`, in one transaction that does the same work
    /// either way. `Some(wait)` when the key asked less than `cooldown` ago.
    async fn queue_after_cooldown(
        &self,
        key: &str,
        now: DateTime<Utc>,
        cooldown: std::time::Duration,
        (mail, code): (&OutboxMessage, Option<&StoredCode>),
        deliver: bool,
    ) -> Result<Option<std::time::Duration>, ServiceError> {
        let span = chrono::Duration::from_std(cooldown).map_err(|e| {
            ServiceError::Unexpected(anyhow::Error::new(e).context("a cooldown as a date offset"))
        })?;
        let claimed = self
            .storage
            .request_resend(key, now, now - span, mail, deliver, code)
            .await
            .context("recording the request")?;
        let Some(last) = claimed else {
            // Woken whether or not a mail was queued, so that the work a
            // wake-up sets off does not tell the cases apart.
            self.mail_queued.notify_one();
            return Ok(None);
        };
        Ok(Some(
            (last + span - now)
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(1)),
        ))
    }

    /// The account a reset token may reset, if the token is genuine,
    /// unexpired and its password unchanged since it was issued. Reads only:
    /// the sidecar's link calls it for mail scanners and shoppers alike.
    pub async fn check_reset_token(&self, token: &str) -> Result<(Account, String), ServiceError> {
        self.ensure_ready()?;
        let resets = self.resets()?;
        let claim = resets
            .tokens
            .verify(token, Utc::now())
            .map_err(ServiceError::ResetToken)?;
        let found = self
            .storage
            .credentials_by_id(claim.account_id)
            .await
            .context("reading the account to reset")?;
        match found {
            Some((account, hash))
                if resets
                    .tokens
                    .binds(&claim, &credential_binding(&account.email, &hash)) =>
            {
                Ok((account, hash))
            }
            _ => Err(ServiceError::ResetToken(TokenError::Invalid)),
        }
    }

    /// Sets a new password with a reset token: the new hash is stored, the
    /// account becomes verified (the mailbox was proven), its lockout is
    /// cleared and a "password changed" notice is queued, in one
    /// transaction. The token stops working with it.
    #[tracing::instrument(name = "reset_password", skip_all)]
    pub async fn reset_password(
        &self,
        token: &str,
        password: Password,
    ) -> Result<Account, ServiceError> {
        let (account, old) = self.check_reset_token(token).await?;
        let new = self.hasher.hash(password).await?;
        let now = now();
        let notice = self
            .composer
            .password_changed(&account, now)
            .context("rendering the password changed notice")?;
        let changed = self
            .storage
            .replace_password(&account, &old, &new, now, true, &notice)
            .await
            .context("storing the new password")?;
        // Another reset or change won the race: this token is spent.
        let account = changed.ok_or(ServiceError::ResetToken(TokenError::Invalid))?;
        self.mail_queued.notify_one();
        self.events.committed();
        tracing::info!(account_id = %account.id, "password reset");
        Ok(account)
    }

    /// When failed password checks lock an address out.
    pub fn with_sign_in_policy(mut self, policy: SignInPolicy) -> Self {
        self.sign_in = policy;
        self
    }

    /// With protection on, Register with a taken address answers like a
    /// success, spends the same time, and mails the owner a notice instead.
    pub fn with_enumeration_protection(mut self, on: bool) -> Self {
        self.enumeration_protection = on;
        self
    }

    /// Until the database was first reached, every use case answers UNAVAILABLE.
    fn ensure_ready(&self) -> Result<(), ServiceError> {
        if self.readiness.is_ready() {
            Ok(())
        } else {
            Err(ServiceError::Unavailable(StorageError::NotReady))
        }
    }

    /// How soon the same address may ask for another confirmation mail.
    pub fn with_resend_cooldown(mut self, cooldown: std::time::Duration) -> Self {
        self.resend_cooldown = cooldown;
        self
    }

    /// Stores an unverified account and queues its welcome mail.
    #[tracing::instrument(name = "register", skip_all)]
    pub async fn register(&self, new: NewAccount) -> Result<Account, ServiceError> {
        self.ensure_ready()?;
        // Spares the ~20 ms hash for the common duplicate (unless protection
        // must spend it anyway); the unique index below still decides races.
        match self.storage.account_by_email(new.email.as_str()).await {
            Ok(existing) if self.enumeration_protection => {
                let _ = self
                    .hasher
                    .hash(new.password.clone())
                    .await
                    .context("hashing the password")?;
                return self.answer_taken_address(new.into(), existing).await;
            }
            Ok(_) => return Err(ServiceError::EmailTaken),
            Err(StorageError::NotFound) => {}
            Err(e) => return Err(e).context("looking the address up"),
        }
        let hash = self
            .hasher
            .hash(new.password.clone())
            .await
            .context("hashing the password")?;

        let now = now();
        let account = NewAccountView::from(new).into_account(Uuid::now_v7(), now);
        let (mail, code) = self.confirmation_mail(&account, now, MailComposer::welcome)?;
        match self
            .storage
            .create_account(&account, &hash, &mail, &code)
            .await
        {
            Ok(()) => {}
            Err(StorageError::Conflict) if self.enumeration_protection => {
                let existing = self
                    .storage
                    .account_by_email(&account.email)
                    .await
                    .context("reading the account that took the address")?;
                return self
                    .answer_taken_address(new_account_of(&account), existing)
                    .await;
            }
            Err(e) => return Err(e).context("storing the account and its welcome mail"),
        }
        self.mail_queued.notify_one();
        self.events.committed();
        self.metrics.registrations.inc();
        tracing::info!(account_id = %account.id, "account registered");
        Ok(account)
    }

    /// A mail carrying a fresh confirmation link for `account`, rendered by
    /// `render` (the welcome mail, or a resent confirmation).
    fn confirmation_mail(
        &self,
        account: &Account,
        now: DateTime<Utc>,
        render: RenderConfirmation,
    ) -> Result<(OutboxMessage, StoredCode), ServiceError> {
        let token = self
            .tokens
            .issue(account.id, now)
            .map_err(|e| ServiceError::Unexpected(e.context("signing a confirmation token")))?;
        let (code, stored) = self.codes.issue(account.id, now);
        let mail = render(&self.composer, account, &token, &code, now)
            .context("rendering a confirmation mail")?;
        Ok((mail, stored))
    }

    /// The quiet answer to a taken address: the owner is told by mail, and
    /// the caller gets what a new registration would have returned.
    async fn answer_taken_address(
        &self,
        new: NewAccountView,
        existing: Account,
    ) -> Result<Account, ServiceError> {
        let now = now();
        let notice = self
            .composer
            .account_exists(&existing, now)
            .context("rendering the account-exists notice")?;
        self.storage
            .queue_mail(&notice)
            .await
            .context("queueing the account-exists notice")?;
        self.mail_queued.notify_one();
        tracing::info!("registration for a taken address answered quietly");
        Ok(new.into_account(Uuid::now_v7(), now))
    }

    /// Verifies the account a confirmation token names.
    #[tracing::instrument(name = "confirm_registration", skip_all)]
    pub async fn confirm(&self, token: &str) -> Result<Account, ServiceError> {
        refuse_nul_token(token)?;
        self.ensure_ready()?;
        let id = self
            .tokens
            .verify(token, Utc::now())
            .map_err(ServiceError::Token)?;
        let account = self
            .confirmations
            .call(id)
            .await
            .context("marking the account verified")?;
        self.events.committed();
        self.metrics.confirmations.inc();
        tracing::info!(account_id = %account.id, "account confirmed");
        Ok(account)
    }

    /// Verifies the account of `email` with the code its confirmation mail
    /// carried. Every address costs the same: unknown ones, and ones without
    /// a code, answer as a wrong code does. Each try counts; after
    /// MAX_CODE_FAILURES wrong ones the code is burned.
    #[tracing::instrument(name = "confirm_code", skip_all)]
    pub async fn confirm_code(&self, email: &Email, code: &str) -> Result<Account, ServiceError> {
        self.ensure_ready()?;
        let Some(code) = ConfirmationCodes::parse(code) else {
            return Err(ServiceError::Code(CodeError::Invalid));
        };
        let tried = self
            .storage
            .try_code(email.as_str())
            .await
            .context("counting a confirmation code try")?;
        let stored = match tried {
            CodeTry::Counted(stored) => stored,
            CodeTry::Burned | CodeTry::NoCode => {
                // The same hashing as a real comparison.
                let _ = self.codes.matches(Uuid::nil(), code, "");
                return Err(ServiceError::Code(if tried == CodeTry::Burned {
                    CodeError::Exhausted
                } else {
                    CodeError::Invalid
                }));
            }
        };
        if !self.codes.matches(stored.account_id, code, &stored.hmac) {
            return Err(ServiceError::Code(CodeError::Invalid));
        }
        if stored.expires_at <= Utc::now() {
            return Err(ServiceError::Code(CodeError::Expired));
        }
        self.storage
            .refund_code_try(stored.account_id)
            .await
            .context("taking back a right code's try")?;
        let account = self
            .confirmations
            .call(stored.account_id)
            .await
            .context("marking the account verified")?;
        self.events.committed();
        self.metrics.confirmations.inc();
        tracing::info!(account_id = %account.id, "account confirmed by code");
        Ok(account)
    }

    /// Queues a fresh confirmation mail when `email` belongs to an unverified
    /// account; answers the same for unknown and verified addresses.
    ///
    /// Every case takes the same path, so the answer's timing reveals
    /// nothing: one lookup, one token and one rendering (of a mail that is
    /// thrown away unless it is for an unverified account), then one
    /// transaction that records the cooldown and queues the mail when there
    /// is one to queue.
    #[tracing::instrument(name = "resend_confirmation", skip_all)]
    pub async fn resend_confirmation(&self, email: &Email) -> Result<(), ServiceError> {
        self.ensure_ready()?;
        let now = now();
        let (account, deliver) = match self.storage.account_by_email(email.as_str()).await {
            Ok(account) => {
                let deliver = !account.verified;
                (account, deliver)
            }
            Err(StorageError::NotFound) => (placeholder_account(email, now), false),
            Err(e) => return Err(e).context("looking the address up"),
        };
        let (mail, code) =
            self.confirmation_mail(&account, now, MailComposer::resent_confirmation)?;
        if let Some(wait) = self
            .queue_after_cooldown(
                email.as_str(),
                now,
                self.resend_cooldown,
                (&mail, Some(&code)),
                deliver,
            )
            .await?
        {
            return Err(ServiceError::CoolingDown(wait));
        }
        if deliver {
            tracing::info!(account_id = %account.id, "confirmation mail queued again");
        } else {
            tracing::debug!("confirmation mail not queued: no unverified account");
        }
        Ok(())
    }

    /// Changes a password, given the current one. A wrong current password
    /// counts towards the sign-in lockout; success queues a "password
    /// changed" notice and ends every reset link issued before.
    #[tracing::instrument(name = "change_password", skip_all)]
    pub async fn change_password(
        &self,
        id: Uuid,
        current: SecretString,
        new: Password,
    ) -> Result<Account, ServiceError> {
        use secrecy::ExposeSecret;
        self.ensure_ready()?;
        if current.expose_secret() == new.expose() {
            return Err(ServiceError::Invalid(ValidationErrors::single(
                "password",
                SAME_PASSWORD,
            )));
        }
        let (account, stored) = self
            .storage
            .credentials_by_id(id)
            .await
            .context("reading the account")?
            .ok_or(ServiceError::NotFound)?;
        let now = now();
        self.check_current_password(&account.email, current, &stored, now)
            .await?;
        let new = self.hasher.hash(new).await?;
        let notice = self
            .composer
            .password_changed(&account, now)
            .context("rendering the password changed notice")?;
        let changed = self
            .storage
            .replace_password(&account, &stored, &new, now, false, &notice)
            .await
            .context("storing the new password")?;
        // Changed meanwhile by another call: the current password was not current.
        let account = changed.ok_or(ServiceError::InvalidCredentials)?;
        self.mail_queued.notify_one();
        self.events.committed();
        tracing::info!(account_id = %account.id, "password changed");
        Ok(account)
    }

    pub async fn get(&self, lookup: Lookup) -> Result<Account, ServiceError> {
        self.ensure_ready()?;
        match lookup {
            Lookup::Id(id) => self.lookups.call(id).await,
            Lookup::Email(email) => self.storage.account_by_email(email.as_str()).await,
        }
        .context("reading the account")
    }
}
