//! Renders each mail in its shopper's language and builds RFC 5322 messages from outbox rows.

use chrono::{DateTime, Utc};
use lettre::message::{header, Mailbox, MultiPart};
use lettre::Message;
use uuid::Uuid;

use super::i18n::{Catalogues, Fill, Template, TemplateError};
use super::{MailKind, OutgoingMail};
use crate::domain::{canonical_locale, Account};
use crate::storage::OutboxMessage;

/// Path of the confirmation link on the HTTP sidecar.
pub const CONFIRM_PATH: &str = "/account/confirm-registration/";
/// Path of the password reset link on the HTTP sidecar.
pub const RESET_PATH: &str = "/account/reset-password/";
/// Path of the new-address confirmation link on the HTTP sidecar.
pub const CONFIRM_EMAIL_PATH: &str = "/account/confirm-email/";

pub struct MailComposer {
    catalogues: Catalogues,
    from: Mailbox,
    site_name: String,
    public_base_url: String,
    link_lifetime_secs: u64,
    reset_lifetime_secs: u64,
}

impl MailComposer {
    pub fn new(
        from: Mailbox,
        site_name: String,
        public_base_url: &str,
        link_lifetime_secs: u64,
        catalogues: Catalogues,
    ) -> Self {
        MailComposer {
            catalogues,
            from,
            site_name,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            link_lifetime_secs,
            reset_lifetime_secs: link_lifetime_secs,
        }
    }

    /// The language of mail for accounts that chose none.
    pub fn default_locale(&self) -> &str {
        self.catalogues.default_locale()
    }

    /// How long a password reset link is valid, as its mail says.
    pub fn with_reset_lifetime(mut self, secs: u64) -> Self {
        self.reset_lifetime_secs = secs;
        self
    }

    /// Renders a password reset mail carrying `token`.
    pub fn password_reset(
        &self,
        account: &Account,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        let link = format!("{}{RESET_PATH}?token={token}", self.public_base_url);
        let mut fill = self.fill(account, now);
        fill.link = Some(&link);
        fill.valid_for_secs = Some(self.reset_lifetime_secs);
        self.row(
            MailKind::PasswordReset,
            account,
            Template::PasswordReset,
            &fill,
        )
    }

    /// Renders the notice that an account's password was changed.
    pub fn password_changed(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        self.notice(
            MailKind::PasswordChanged,
            Template::PasswordChanged,
            account,
            now,
        )
    }

    /// Renders the notice that two-step sign-in was turned on.
    pub fn second_factor_enabled(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        self.notice(
            MailKind::SecondFactorEnabled,
            Template::SecondFactorEnabled,
            account,
            now,
        )
    }

    /// Renders the notice that two-step sign-in was turned off.
    pub fn second_factor_disabled(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        self.notice(
            MailKind::SecondFactorDisabled,
            Template::SecondFactorDisabled,
            account,
            now,
        )
    }

    /// Renders the notice that a recovery code was used, saying how many
    /// unused ones the account has left (never which one was used).
    pub fn recovery_code_used(
        &self,
        account: &Account,
        codes_left: usize,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        let mut fill = self.fill(account, now);
        fill.codes_left = Some(codes_left);
        self.row(
            MailKind::RecoveryCodeUsed,
            account,
            Template::RecoveryCodeUsed,
            &fill,
        )
    }

    /// Renders the mail to a new address asking to confirm it: `account`
    /// as it is now, `new_email` the address asked for.
    pub fn email_change_confirmation(
        &self,
        account: &Account,
        new_email: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        let link = format!("{}{CONFIRM_EMAIL_PATH}?token={token}", self.public_base_url);
        let mut fill = self.fill(account, now);
        fill.link = Some(&link);
        fill.valid_for_secs = Some(self.link_lifetime_secs);
        let mut row = self.row(
            MailKind::EmailChangeConfirmation,
            account,
            Template::EmailChangeConfirm,
            &fill,
        )?;
        new_email.clone_into(&mut row.recipient);
        Ok(row)
    }

    /// Renders the notice to an account's current address that a change to
    /// `new_email` was asked for; the new address is shown masked.
    pub fn email_change_requested(
        &self,
        account: &Account,
        new_email: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        let masked = mask_email(new_email);
        let mut fill = self.fill(account, now);
        fill.new_email = Some(&masked);
        self.row(
            MailKind::EmailChangeRequested,
            account,
            Template::EmailChangeRequested,
            &fill,
        )
    }

    /// Renders the goodbye notice of a deleted account (rendered before its
    /// personal data is erased).
    pub fn account_deleted(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        self.notice(
            MailKind::AccountDeleted,
            Template::AccountDeleted,
            account,
            now,
        )
    }

    /// A mail that says only what happened to the account and when.
    fn notice(
        &self,
        kind: MailKind,
        template: Template,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        self.row(kind, account, template, &self.fill(account, now))
    }

    /// What every mail gets: whom to greet, the site's name, and when.
    fn fill<'a>(&'a self, account: &'a Account, now: DateTime<Utc>) -> Fill<'a> {
        Fill {
            name: account.greeting_name(),
            site_name: &self.site_name,
            link: None,
            code: None,
            valid_for_secs: None,
            new_email: None,
            codes_left: None,
            now,
        }
    }

    /// Renders `template` in the account's language as an outbox row.
    fn row(
        &self,
        kind: MailKind,
        account: &Account,
        template: Template,
        fill: &Fill<'_>,
    ) -> Result<OutboxMessage, TemplateError> {
        let mail = self.catalogues.render(template, &account.locale, fill)?;
        Ok(OutboxMessage {
            id: Uuid::now_v7(),
            account_id: account.id,
            kind,
            recipient: account.email.clone(),
            subject: mail.subject,
            text_body: mail.text,
            html_body: mail.html,
            created_at: fill.now,
            locale: mail.locale,
        })
    }

    /// The confirmation link for a token.
    pub fn confirmation_link(&self, token: &str) -> String {
        format!("{}{CONFIRM_PATH}?token={token}", self.public_base_url)
    }

    /// Renders the welcome mail for a new account as an outbox row.
    pub fn welcome(
        &self,
        account: &Account,
        token: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        self.confirmation_mail(MailKind::Welcome, account, token, code, now)
    }

    /// Renders a fresh confirmation mail (same text, a new link and code)
    /// for an account that asked for one again.
    pub fn resent_confirmation(
        &self,
        account: &Account,
        token: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        self.confirmation_mail(MailKind::Confirmation, account, token, code, now)
    }

    /// Renders the notice sent instead of a welcome mail when someone
    /// registers an address that already has an account (with enumeration
    /// protection on), in the existing account's language. It carries no
    /// link.
    pub fn account_exists(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        self.notice(
            MailKind::AccountExists,
            Template::AccountExists,
            account,
            now,
        )
    }

    fn confirmation_mail(
        &self,
        kind: MailKind,
        account: &Account,
        token: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, TemplateError> {
        let link = self.confirmation_link(token);
        let mut fill = self.fill(account, now);
        fill.link = Some(&link);
        fill.code = Some(code);
        fill.valid_for_secs = Some(self.link_lifetime_secs);
        self.row(kind, account, Template::Welcome, &fill)
    }

    /// Builds the message for an outbox row: multipart/alternative, with a
    /// Message-ID derived from the row so every retry is the same message.
    pub fn message(&self, row: &OutboxMessage) -> Result<OutgoingMail, anyhow::Error> {
        let to: Mailbox = row
            .recipient
            .parse()
            .map_err(|e| anyhow::anyhow!("recipient address not accepted by the mailer: {e}"))?;
        let domain = self.from.email.domain();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(row.subject.clone())
            .message_id(Some(format!("<{}@{domain}>", row.id)))
            .date(row.created_at.into())
            .header(header::MIME_VERSION_1_0);
        // Only a well-formed tag goes into a header (rows from before
        // locales have none).
        if let Some(tag) = canonical_locale(&row.locale) {
            builder = builder.header(ContentLanguage(tag));
        }
        let message = builder.multipart(MultiPart::alternative_plain_html(
            row.text_body.clone(),
            row.html_body.clone(),
        ))?;
        Ok(OutgoingMail {
            outbox_id: row.id,
            message,
            text_body: row.text_body.clone(),
        })
    }
}

/// The language a message is written in (RFC 3282), so that mail clients
/// can offer translation and screen readers pick a voice.
#[derive(Debug, Clone)]
struct ContentLanguage(String);

impl header::Header for ContentLanguage {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Content-Language")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ContentLanguage(s.trim().to_owned()))
    }

    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `a***@example.com`: the first character of the local part, then `***`.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(username: &str) -> Account {
        Account::example("shopper@example.com", username)
    }

    fn composer() -> MailComposer {
        MailComposer::new(
            "noreply@example.com".parse().unwrap(),
            "Ecoms".into(),
            "http://localhost:8080/",
            3600,
            Catalogues::built_in().unwrap(),
        )
    }

    #[test]
    fn welcome_mail_greets_and_links() {
        let row = composer()
            .welcome(&account("<b>Ann</b>"), "abc.def.ghi", "012345", Utc::now())
            .unwrap();
        assert_eq!(row.subject, "Ecoms Welcome Mail");
        let link = "http://localhost:8080/account/confirm-registration/?token=abc.def.ghi";
        assert!(row.text_body.contains("Hello <b>Ann</b>,"));
        assert!(row.text_body.contains(link));
        assert!(row.text_body.contains("1 hour"));
        assert!(row.text_body.contains("    012345\n"));
        assert!(row.html_body.contains(">012345</p>"));
        assert!(row.html_body.contains("Hello &lt;b&gt;Ann&lt;&#x2F;b&gt;,"));
        assert!(row.html_body.contains(&format!("href=\"{link}\"")));
    }

    #[test]
    fn addresses_are_masked_after_their_first_character() {
        assert_eq!(mask_email("ann@example.com"), "a***@example.com");
        assert_eq!(mask_email("é@x.org"), "é***@x.org");
        assert_eq!(mask_email("a@b@c.org"), "a***@c.org");
    }

    #[test]
    fn email_change_mails_go_to_the_right_addresses() {
        let c = composer();
        let a = account("ann");
        let confirm = c
            .email_change_confirmation(&a, "new@example.org", "tok", Utc::now())
            .unwrap();
        assert_eq!(confirm.recipient, "new@example.org");
        assert_eq!(confirm.subject, "Ecoms Confirm Your New E-mail Address");
        assert!(confirm
            .text_body
            .contains("http://localhost:8080/account/confirm-email/?token=tok"));
        let notice = c
            .email_change_requested(&a, "new@example.org", Utc::now())
            .unwrap();
        assert_eq!(notice.recipient, "shopper@example.com");
        assert_eq!(notice.subject, "Ecoms E-mail Change Requested");
        assert!(notice.text_body.contains("n***@example.org"));
        assert!(!notice.text_body.contains("new@example.org"));
        let bye = c.account_deleted(&a, Utc::now()).unwrap();
        assert_eq!(bye.subject, "Ecoms Account Deleted");
    }

    #[test]
    fn second_factor_notices_render_in_the_account_language() {
        let c = composer();
        let mut a = account("ann");
        let on = c.second_factor_enabled(&a, Utc::now()).unwrap();
        assert_eq!(on.kind, MailKind::SecondFactorEnabled);
        assert_eq!(on.subject, "Ecoms Two-Step Sign-In Turned On");
        assert_eq!(on.recipient, "shopper@example.com");
        assert!(on.text_body.contains("reset your password"));
        let off = c.second_factor_disabled(&a, Utc::now()).unwrap();
        assert_eq!(off.kind, MailKind::SecondFactorDisabled);
        assert_eq!(off.subject, "Ecoms Two-Step Sign-In Turned Off");
        a.locale = "fr".into();
        let on = c.second_factor_enabled(&a, Utc::now()).unwrap();
        assert_eq!(
            on.subject,
            "Ecoms\u{202f}: Connexion en deux étapes activée"
        );
        assert_eq!(on.locale, "fr");
        let off = c.second_factor_disabled(&a, Utc::now()).unwrap();
        assert_eq!(
            off.subject,
            "Ecoms\u{202f}: Connexion en deux étapes désactivée"
        );
        assert!(off.html_body.contains("<html lang=\"fr\">"));
    }

    #[test]
    fn recovery_code_notice_says_how_many_are_left() {
        let c = composer();
        let mut a = account("ann");
        let row = c.recovery_code_used(&a, 7, Utc::now()).unwrap();
        assert_eq!(row.kind, MailKind::RecoveryCodeUsed);
        assert_eq!(row.subject, "Ecoms Recovery Code Used");
        assert!(row.text_body.contains("You have 7 recovery codes left."));
        assert!(row.html_body.contains("You have 7 recovery codes left."));
        a.locale = "fr".into();
        let row = c.recovery_code_used(&a, 2, Utc::now()).unwrap();
        assert_eq!(row.subject, "Ecoms\u{202f}: Code de récupération utilisé");
        assert!(row
            .text_body
            .contains("Il vous reste 2 codes de récupération."));
        assert!(row.text_body.contains("avant d'en manquer"));
    }

    #[test]
    fn blank_username_greets_by_email() {
        let row = composer()
            .welcome(&account(""), "t", "000000", Utc::now())
            .unwrap();
        assert!(row.text_body.contains("Hello shopper@example.com,"));
    }

    #[test]
    fn message_is_multipart_with_stable_id() {
        let c = composer();
        let row = c
            .welcome(&account("ann"), "t", "000000", Utc::now())
            .unwrap();
        let text = String::from_utf8(c.message(&row).unwrap().message.formatted()).unwrap();
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains(&format!("Message-ID: <{}@example.com>", row.id)));
        assert!(text.contains("Content-Language: en\r\n"));
        let mut unknown = row.clone();
        unknown.locale = "x\r\nBcc: someone@example.com".into();
        let text = String::from_utf8(c.message(&unknown).unwrap().message.formatted()).unwrap();
        assert!(!text.contains("Content-Language") && !text.contains("Bcc"));
    }
}
