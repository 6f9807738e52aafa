//! Renders the mail templates and builds RFC 5322 messages from outbox rows.

use chrono::{DateTime, Utc};
use lettre::message::{header, Mailbox, MultiPart};
use lettre::Message;
use tera::{Context, Tera};
use uuid::Uuid;

use super::{MailKind, OutgoingMail};
use crate::domain::Account;
use crate::storage::OutboxMessage;

/// Templates are compiled into the binary, so it runs from any directory.
const TEMPLATES: [(&str, &str); 14] = [
    (
        "account_exists_mail.html",
        include_str!("../../templates/account_exists_mail.html"),
    ),
    (
        "account_exists_mail.txt",
        include_str!("../../templates/account_exists_mail.txt"),
    ),
    (
        "welcome_mail.html",
        include_str!("../../templates/welcome_mail.html"),
    ),
    (
        "welcome_mail.txt",
        include_str!("../../templates/welcome_mail.txt"),
    ),
    (
        "password_reset.html",
        include_str!("../../templates/password_reset.html"),
    ),
    (
        "password_reset.txt",
        include_str!("../../templates/password_reset.txt"),
    ),
    (
        "password_changed.html",
        include_str!("../../templates/password_changed.html"),
    ),
    (
        "password_changed.txt",
        include_str!("../../templates/password_changed.txt"),
    ),
    (
        "email_change_confirm.html",
        include_str!("../../templates/email_change_confirm.html"),
    ),
    (
        "email_change_confirm.txt",
        include_str!("../../templates/email_change_confirm.txt"),
    ),
    (
        "email_change_requested.html",
        include_str!("../../templates/email_change_requested.html"),
    ),
    (
        "email_change_requested.txt",
        include_str!("../../templates/email_change_requested.txt"),
    ),
    (
        "account_deleted.html",
        include_str!("../../templates/account_deleted.html"),
    ),
    (
        "account_deleted.txt",
        include_str!("../../templates/account_deleted.txt"),
    ),
];

/// Path of the confirmation link on the HTTP sidecar.
pub const CONFIRM_PATH: &str = "/account/confirm-registration/";
/// Path of the password reset link on the HTTP sidecar.
pub const RESET_PATH: &str = "/account/reset-password/";
/// Path of the new-address confirmation link on the HTTP sidecar.
pub const CONFIRM_EMAIL_PATH: &str = "/account/confirm-email/";

pub struct MailComposer {
    tera: Tera,
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
    ) -> Result<Self, tera::Error> {
        let mut tera = Tera::default();
        tera.add_raw_templates(TEMPLATES)?;
        Ok(MailComposer {
            tera,
            from,
            site_name,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            link_lifetime_secs,
            reset_lifetime_secs: link_lifetime_secs,
        })
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
    ) -> Result<OutboxMessage, tera::Error> {
        let mut context = self.greeting(account);
        context.insert(
            "link",
            &format!("{}{RESET_PATH}?token={token}", self.public_base_url),
        );
        context.insert("valid_for", &human_duration(self.reset_lifetime_secs));
        self.row(
            MailKind::PasswordReset,
            account,
            "Password Reset",
            "password_reset",
            &context,
            now,
        )
    }

    /// Renders the notice that an account's password was changed.
    pub fn password_changed(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, tera::Error> {
        let context = self.greeting(account);
        self.row(
            MailKind::PasswordChanged,
            account,
            "Password Changed",
            "password_changed",
            &context,
            now,
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
    ) -> Result<OutboxMessage, tera::Error> {
        let mut context = self.greeting(account);
        context.insert(
            "link",
            &format!("{}{CONFIRM_EMAIL_PATH}?token={token}", self.public_base_url),
        );
        context.insert("valid_for", &human_duration(self.link_lifetime_secs));
        let mut row = self.row(
            MailKind::EmailChangeConfirmation,
            account,
            "Confirm Your New E-mail Address",
            "email_change_confirm",
            &context,
            now,
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
    ) -> Result<OutboxMessage, tera::Error> {
        let mut context = self.greeting(account);
        context.insert("new_email", &mask_email(new_email));
        self.row(
            MailKind::EmailChangeRequested,
            account,
            "E-mail Change Requested",
            "email_change_requested",
            &context,
            now,
        )
    }

    /// Renders the goodbye notice of a deleted account (rendered before its
    /// personal data is erased).
    pub fn account_deleted(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, tera::Error> {
        let context = self.greeting(account);
        self.row(
            MailKind::AccountDeleted,
            account,
            "Account Deleted",
            "account_deleted",
            &context,
            now,
        )
    }

    /// What every template gets: whom to greet, and the site's name.
    fn greeting(&self, account: &Account) -> Context {
        let mut context = Context::new();
        context.insert("name", account.greeting_name());
        context.insert("site_name", &self.site_name);
        context
    }

    fn row(
        &self,
        kind: MailKind,
        account: &Account,
        subject: &str,
        template: &str,
        context: &Context,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, tera::Error> {
        Ok(OutboxMessage {
            id: Uuid::now_v7(),
            account_id: account.id,
            kind,
            recipient: account.email.clone(),
            subject: format!("{} {subject}", self.site_name),
            text_body: self.tera.render(&format!("{template}.txt"), context)?,
            html_body: self.tera.render(&format!("{template}.html"), context)?,
            created_at: now,
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
    ) -> Result<OutboxMessage, tera::Error> {
        self.confirmation_mail(MailKind::Welcome, account, token, code, now)
    }

    /// Renders a fresh confirmation mail (same templates, a new link) for an
    /// account that asked for one again.
    pub fn resent_confirmation(
        &self,
        account: &Account,
        token: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, tera::Error> {
        self.confirmation_mail(MailKind::Confirmation, account, token, code, now)
    }

    /// Renders the notice sent instead of a welcome mail when someone
    /// registers an address that already has an account (with enumeration
    /// protection on). It carries no link.
    pub fn account_exists(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, tera::Error> {
        let context = self.greeting(account);
        self.row(
            MailKind::AccountExists,
            account,
            "Account Already Exists",
            "account_exists_mail",
            &context,
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
    ) -> Result<OutboxMessage, tera::Error> {
        let mut context = self.greeting(account);
        context.insert("link", &self.confirmation_link(token));
        context.insert("code", code);
        context.insert("valid_for", &human_duration(self.link_lifetime_secs));
        self.row(kind, account, "Welcome Mail", "welcome_mail", &context, now)
    }

    /// Builds the message for an outbox row: multipart/alternative, with a
    /// Message-ID derived from the row so every retry is the same message.
    pub fn message(&self, row: &OutboxMessage) -> Result<OutgoingMail, anyhow::Error> {
        let to: Mailbox = row
            .recipient
            .parse()
            .map_err(|e| anyhow::anyhow!("recipient address not accepted by the mailer: {e}"))?;
        let domain = self.from.email.domain();
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(row.subject.clone())
            .message_id(Some(format!("<{}@{domain}>", row.id)))
            .date(row.created_at.into())
            .header(header::MIME_VERSION_1_0)
            .multipart(MultiPart::alternative_plain_html(
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

fn human_duration(secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s >= 60 && s % 60 == 0 => plural(s / 60, "minute"),
        s => plural(s, "second"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(username: &str) -> Account {
        let now = Utc::now();
        Account {
            id: Uuid::now_v7(),
            email: "shopper@example.com".into(),
            username: username.into(),
            first_name: String::new(),
            last_name: String::new(),
            phone_number: String::new(),
            address: String::new(),
            verified: false,
            term_and_condition: true,
            created_from: String::new(),
            created_at: now,
            updated_at: now,
        }
    }

    fn composer() -> MailComposer {
        MailComposer::new(
            "noreply@example.com".parse().unwrap(),
            "Ecoms".into(),
            "http://localhost:8080/",
            3600,
        )
        .unwrap()
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
    }
}
