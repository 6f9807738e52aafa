//! The account use cases, free of any transport: register, confirm, look up.

mod confirmation;
mod credentials;
mod error;
mod lifecycle;
mod lookup;
mod profile_images;
mod registration;
mod second_factor;
mod sessions;

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};

use crate::auth::{
    ConfirmationCodes, ConfirmationTokens, EmailChangeTokens, FailureFloor, PageTokens,
    PasswordHasher,
};
use crate::domain::Account;
use crate::events::EventFeed;
use crate::mail::{MailComposer, TemplateError};
use crate::metrics::Metrics;
use crate::storage::{Batcher, OutboxMessage, Rotated, SessionState, Storage};

pub use crate::config::{SignInPolicy, MAX_LOCKOUT};
pub use crate::domain::{
    parse_credentials, parse_deletion, parse_email, parse_email_change, parse_password_change,
    parse_password_check, Lookup, INVALID_UUID,
};
pub use credentials::PasswordResets;
pub use error::{
    CodeError, SecondFactorError, ServiceError, SessionError, EMAIL_TAKEN, INVALID_CREDENTIALS,
    SAME_PASSWORD,
};
pub use lifecycle::{
    AccountPage, ListQuery, DEFAULT_PAGE_SIZE, INVALID_CURSOR, INVALID_PAGE_TOKEN, MAX_PAGE_SIZE,
    SAME_EMAIL,
};
pub use profile_images::{image_too_large, ProfileImages, IMAGE_TOO_WIDE, INVALID_IMAGE};
pub use second_factor::{Factor, SecondFactors, TotpEnrollment};
pub use sessions::{SessionTokens, Sessions, SignedIn};

/// Renders a confirmation mail: for the account, with the link's token and
/// the code, at a time.
type RenderConfirmation =
    fn(&MailComposer, &Account, &str, &str, DateTime<Utc>) -> Result<OutboxMessage, TemplateError>;

pub struct Accounts {
    storage: Arc<dyn Storage>,
    hasher: PasswordHasher,
    tokens: ConfirmationTokens,
    composer: Arc<MailComposer>,
    resend_cooldown: std::time::Duration,
    /// Answer a taken address like a success, so Register reveals nothing.
    enumeration_protection: bool,
    metrics: Arc<Metrics>,
    /// Concurrent confirmations, sent to the database as one statement.
    confirmations: Arc<Batcher<Account>>,
    /// Concurrent look-ups by id, sent to the database as one statement.
    lookups: Arc<Batcher<Account>>,
    /// Concurrent reads of sessions (access-token checks), likewise.
    session_reads: Arc<Batcher<SessionState>>,
    /// Concurrent refreshes of current tokens, likewise.
    rotations: Arc<Batcher<Rotated>>,
    sign_in: SignInPolicy,
    resets: Option<PasswordResets>,
    email_changes: Option<EmailChangeTokens>,
    pages: PageTokens,
    /// The six-digit codes mailed beside confirmation links.
    codes: ConfirmationCodes,
    /// The event stream's feed; storage commits wake it.
    events: Arc<EventFeed>,
    /// The soonest a failed sign-in answers.
    failure_floor: Arc<FailureFloor>,
    /// Sign-in sessions: their tokens and policy.
    sessions: Option<Sessions>,
    /// Two-step sign-in: sealed secrets, recovery codes, challenges.
    second_factors: Option<SecondFactors>,
    /// Profile images: processing, the store, where they are served.
    profile_images: Option<Arc<ProfileImages>>,
}

/// Database timestamps keep microseconds; rounding here makes what Register
/// answers equal to what a later read returns.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl Accounts {
    /// `metrics` is where the use cases count what they do. The transports
    /// check readiness before any use case runs, and the storage's commit
    /// hooks wake the mail worker and the event feed.
    pub fn new(
        storage: Arc<dyn Storage>,
        hasher: PasswordHasher,
        tokens: ConfirmationTokens,
        composer: Arc<MailComposer>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let verify = Arc::clone(&storage);
        let read = Arc::clone(&storage);
        let read_sessions = Arc::clone(&storage);
        let rotate = Arc::clone(&storage);
        Accounts {
            rotations: Batcher::new(move |batch| {
                let storage = Arc::clone(&rotate);
                async move { storage.rotate_current(&batch).await }
            }),
            session_reads: Batcher::new(move |ids| {
                let storage = Arc::clone(&read_sessions);
                async move { storage.session_states(&ids).await }
            }),
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
            resend_cooldown: std::time::Duration::from_secs(60),
            enumeration_protection: false,
            metrics,
            sign_in: SignInPolicy::default(),
            resets: None,
            email_changes: None,
            pages: PageTokens::new(&crate::auth::Keyring::new(
                &rand::random::<[u8; 32]>(),
                None,
            )),
            codes: ConfirmationCodes::new(
                &crate::auth::Keyring::new(&rand::random::<[u8; 32]>(), None),
                3600,
            ),
            events: Arc::new(EventFeed::new(Arc::clone(&storage))),
            failure_floor: Arc::new(FailureFloor::default()),
            sessions: None,
            second_factors: None,
            profile_images: None,
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

    /// Enables sign-in sessions.
    pub fn with_sessions(mut self, sessions: Sessions) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Enables two-step sign-in.
    pub fn with_second_factors(mut self, second_factors: SecondFactors) -> Self {
        self.second_factors = Some(second_factors);
        self
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

    /// How soon the same address may ask for another confirmation mail.
    pub fn with_resend_cooldown(mut self, cooldown: std::time::Duration) -> Self {
        self.resend_cooldown = cooldown;
        self
    }
}
