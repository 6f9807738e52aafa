//! Placing the words in the mail: which mails there are, what fills them,
//! and the Tera layouts (built in or read from `TEMPLATES_DIR`) they are
//! rendered with.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::format::StrftimeItems;
use chrono::{DateTime, Utc};
use fluent_bundle::{FluentArgs, FluentValue};
use tera::{Context, Tera};

use super::bundles::{TemplateError, Words};
use super::negotiation::LAST_RESORT;

/// Shared messages that feed other messages through variables rather than
/// appear in a layout.
const HELPERS: [&str; 2] = ["valid-for", "date-format"];

/// The built-in layouts: each mail's body inside `base.txt` or `base.html`.
/// They hold no words of their own, so they serve every locale (they are
/// the `en` folder's, the end of every chain).
const BUILT_IN_LAYOUTS: [(&str, &str); 22] = [
    // First: the others extend them.
    ("base.txt", include_str!("../../../templates/en/base.txt")),
    ("base.html", include_str!("../../../templates/en/base.html")),
    (
        "welcome_mail.txt",
        include_str!("../../../templates/en/welcome_mail.txt"),
    ),
    (
        "welcome_mail.html",
        include_str!("../../../templates/en/welcome_mail.html"),
    ),
    (
        "account_exists_mail.txt",
        include_str!("../../../templates/en/account_exists_mail.txt"),
    ),
    (
        "account_exists_mail.html",
        include_str!("../../../templates/en/account_exists_mail.html"),
    ),
    (
        "password_reset.txt",
        include_str!("../../../templates/en/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("../../../templates/en/password_reset.html"),
    ),
    (
        "password_changed.txt",
        include_str!("../../../templates/en/password_changed.txt"),
    ),
    (
        "password_changed.html",
        include_str!("../../../templates/en/password_changed.html"),
    ),
    (
        "email_change_confirm.txt",
        include_str!("../../../templates/en/email_change_confirm.txt"),
    ),
    (
        "email_change_confirm.html",
        include_str!("../../../templates/en/email_change_confirm.html"),
    ),
    (
        "email_change_requested.txt",
        include_str!("../../../templates/en/email_change_requested.txt"),
    ),
    (
        "email_change_requested.html",
        include_str!("../../../templates/en/email_change_requested.html"),
    ),
    (
        "account_deleted.txt",
        include_str!("../../../templates/en/account_deleted.txt"),
    ),
    (
        "account_deleted.html",
        include_str!("../../../templates/en/account_deleted.html"),
    ),
    (
        "second_factor_enabled.txt",
        include_str!("../../../templates/en/second_factor_enabled.txt"),
    ),
    (
        "second_factor_enabled.html",
        include_str!("../../../templates/en/second_factor_enabled.html"),
    ),
    (
        "second_factor_disabled.txt",
        include_str!("../../../templates/en/second_factor_disabled.txt"),
    ),
    (
        "second_factor_disabled.html",
        include_str!("../../../templates/en/second_factor_disabled.html"),
    ),
    (
        "recovery_code_used.txt",
        include_str!("../../../templates/en/recovery_code_used.txt"),
    ),
    (
        "recovery_code_used.html",
        include_str!("../../../templates/en/recovery_code_used.html"),
    ),
];

/// One kind of mail text: its layout files and its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    Welcome,
    AccountExists,
    PasswordReset,
    PasswordChanged,
    EmailChangeConfirm,
    EmailChangeRequested,
    AccountDeleted,
    SecondFactorEnabled,
    SecondFactorDisabled,
    RecoveryCodeUsed,
}

impl Template {
    pub const ALL: [Template; 10] = [
        Template::Welcome,
        Template::AccountExists,
        Template::PasswordReset,
        Template::PasswordChanged,
        Template::EmailChangeConfirm,
        Template::EmailChangeRequested,
        Template::AccountDeleted,
        Template::SecondFactorEnabled,
        Template::SecondFactorDisabled,
        Template::RecoveryCodeUsed,
    ];

    /// The layouts' file name without `.txt` or `.html`.
    pub fn file_stem(self) -> &'static str {
        match self {
            Template::Welcome => "welcome_mail",
            Template::AccountExists => "account_exists_mail",
            Template::PasswordReset => "password_reset",
            Template::PasswordChanged => "password_changed",
            Template::EmailChangeConfirm => "email_change_confirm",
            Template::EmailChangeRequested => "email_change_requested",
            Template::AccountDeleted => "account_deleted",
            Template::SecondFactorEnabled => "second_factor_enabled",
            Template::SecondFactorDisabled => "second_factor_disabled",
            Template::RecoveryCodeUsed => "recovery_code_used",
        }
    }

    /// What its message ids start with (then `-`).
    pub fn prefix(self) -> &'static str {
        match self {
            Template::Welcome => "welcome",
            Template::AccountExists => "account-exists",
            Template::PasswordReset => "password-reset",
            Template::PasswordChanged => "password-changed",
            Template::EmailChangeConfirm => "email-change-confirm",
            Template::EmailChangeRequested => "email-change-requested",
            Template::AccountDeleted => "account-deleted",
            Template::SecondFactorEnabled => "second-factor-enabled",
            Template::SecondFactorDisabled => "second-factor-disabled",
            Template::RecoveryCodeUsed => "recovery-code-used",
        }
    }

    /// The template a message id belongs to; `None` for shared messages.
    fn of_message(id: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| {
            id.strip_prefix(t.prefix())
                .is_some_and(|rest| rest.starts_with('-'))
        })
    }

    /// Values like the ones this template is rendered with, for the check
    /// at start-up.
    pub(super) fn sample(self) -> Fill<'static> {
        let mut fill = Fill {
            name: "Ann",
            site_name: "Ecoms",
            link: None,
            code: None,
            valid_for_secs: None,
            new_email: None,
            codes_left: None,
            now: DateTime::<Utc>::UNIX_EPOCH,
        };
        if matches!(
            self,
            Template::Welcome | Template::PasswordReset | Template::EmailChangeConfirm
        ) {
            fill.link = Some("https://shop.example/account/link/?token=t");
            fill.valid_for_secs = Some(3600);
        }
        if self == Template::Welcome {
            fill.code = Some("012345");
        }
        if self == Template::EmailChangeRequested {
            fill.new_email = Some("a***@example.com");
        }
        if self == Template::RecoveryCodeUsed {
            fill.codes_left = Some(3);
        }
        fill
    }
}

/// What a mail says beyond its fixed words.
#[derive(Debug, Clone, Copy)]
pub struct Fill<'a> {
    pub name: &'a str,
    pub site_name: &'a str,
    pub link: Option<&'a str>,
    pub code: Option<&'a str>,
    /// How long the link is valid; `until` is counted from `now`.
    pub valid_for_secs: Option<u64>,
    pub new_email: Option<&'a str>,
    /// How many unused recovery codes an account has left.
    pub codes_left: Option<usize>,
    pub now: DateTime<Utc>,
}

/// A mail's text in one locale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The locale whose catalogue gave the words (for `lang` and
    /// `Content-Language`).
    pub locale: String,
}

/// The layouts of every locale that has its own, by `<locale>/<file>`.
#[derive(Default)]
pub(super) struct Layouts {
    tera: Tera,
    /// Template name (`<locale>/<file>`) to the file it came from.
    sources: HashMap<String, String>,
}

impl Layouts {
    /// The built-in layouts, as the last resort's.
    pub(super) fn built_in() -> Result<Self, TemplateError> {
        let mut layouts = Layouts::default();
        for (file, text) in BUILT_IN_LAYOUTS {
            layouts.add(
                LAST_RESORT,
                file,
                text,
                &format!("templates/{LAST_RESORT}/{file}"),
            )?;
        }
        Ok(layouts)
    }

    /// Whether a file of this name in a locale folder is a mail layout.
    pub(super) fn is_layout(file: &str) -> bool {
        BUILT_IN_LAYOUTS.iter().any(|(name, _)| *name == file)
    }

    /// Adds `tag`'s layout `file`, checking its syntax.
    pub(super) fn add(
        &mut self,
        tag: &str,
        file: &str,
        text: &str,
        source: &str,
    ) -> Result<(), TemplateError> {
        let name = format!("{tag}/{file}");
        self.tera
            .add_raw_template(&name, text)
            .map_err(|e| TemplateError::file(source, chain_of(&e)))?;
        self.sources.insert(name, source.to_owned());
        Ok(())
    }

    fn render(
        &self,
        chain: &[&str],
        file: &str,
        context: &Context,
    ) -> Result<String, TemplateError> {
        let name = chain
            .iter()
            .map(|tag| format!("{tag}/{file}"))
            .find(|name| self.sources.contains_key(name))
            .ok_or_else(|| TemplateError::file(file, "no layout for this mail"))?;
        self.tera
            .render(&name, context)
            .map_err(|e| TemplateError::file(&self.sources[&name], chain_of(&e)))
    }
}

/// Renders `template` with the words and layouts along `chain`.
pub(super) fn render(
    words: &Words,
    layouts: &Layouts,
    chain: &[&str],
    template: Template,
    fill: &Fill<'_>,
) -> Result<Rendered, TemplateError> {
    let first = chain.first().copied().unwrap_or(LAST_RESORT);
    let args = args(words, chain, fill)?;
    let mut messages = BTreeMap::new();
    for catalogue in words.along(chain) {
        for id in &catalogue.ids {
            let key = match Template::of_message(id) {
                Some(t) if t == template => id[t.prefix().len() + 1..].replace('-', "_"),
                Some(_) => continue,
                None if HELPERS.contains(&id.as_str()) => continue,
                None => id.replace('-', "_"),
            };
            if messages.contains_key(&key) {
                continue;
            }
            messages.insert(key, catalogue.format(id, &args)?);
        }
    }
    let subject = messages.get("subject").cloned().ok_or_else(|| {
        TemplateError::file(
            &words.catalogue_source(first),
            format!("no message {}-subject", template.prefix()),
        )
    })?;
    let mut context = Context::new();
    context.insert("t", &messages);
    context.insert("lang", first);
    context.insert("name", fill.name);
    context.insert("site_name", fill.site_name);
    if let Some(link) = fill.link {
        context.insert("link", link);
    }
    if let Some(code) = fill.code {
        context.insert("code", code);
    }
    if let Some(new_email) = fill.new_email {
        context.insert("new_email", new_email);
    }
    if let Some(codes_left) = fill.codes_left {
        context.insert("codes_left", &codes_left);
    }
    // The formatted values too, so that a layout may place them itself
    // (as layouts written before the catalogues did with `valid_for`).
    for key in ["date", "valid_for", "until"] {
        if let Some(FluentValue::String(value)) = args.get(key) {
            context.insert(key, value.as_ref());
        }
    }
    let text = layouts.render(chain, &format!("{}.txt", template.file_stem()), &context)?;
    let html = layouts.render(chain, &format!("{}.html", template.file_stem()), &context)?;
    Ok(Rendered {
        subject,
        text,
        html,
        locale: first.to_owned(),
    })
}

fn args(
    words: &Words,
    chain: &[&str],
    fill: &Fill<'_>,
) -> Result<FluentArgs<'static>, TemplateError> {
    let mut args = FluentArgs::new();
    args.set("name", fill.name.to_owned());
    args.set("site_name", fill.site_name.to_owned());
    let date_format = words.lookup(chain, "date-format", &FluentArgs::new())?;
    let dates = words.dates(chain);
    let date = |at: DateTime<Utc>| -> Result<String, TemplateError> {
        let items = StrftimeItems::new_with_locale(&date_format, dates)
            .parse()
            .map_err(|_| {
                TemplateError::file(
                    &words.source_of(chain, "date-format"),
                    format!("date-format {date_format:?} is not a strftime pattern"),
                )
            })?;
        let mut out = String::new();
        write!(
            out,
            "{}",
            at.format_localized_with_items(items.iter(), dates)
        )
        .map_err(|_| {
            TemplateError::file(
                &words.source_of(chain, "date-format"),
                format!("date-format {date_format:?} cannot format a date"),
            )
        })?;
        Ok(out)
    };
    args.set("date", date(fill.now)?);
    if let Some(secs) = fill.valid_for_secs {
        let (count, unit) = in_largest_unit(secs);
        args.set("count", count);
        args.set("unit", unit);
        let valid_for = words.lookup(chain, "valid-for", &args)?;
        args.set("valid_for", valid_for);
        let until = i64::try_from(secs)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .and_then(|d| fill.now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        args.set("until", date(until)?);
    }
    if let Some(code) = fill.code {
        args.set("code", code.to_owned());
    }
    if let Some(new_email) = fill.new_email {
        args.set("new_email", new_email.to_owned());
    }
    // A number, not text, so that catalogues can choose plural forms.
    if let Some(codes_left) = fill.codes_left {
        args.set("codes_left", codes_left);
    }
    Ok(args)
}

/// 7200 → (2, "hour"): the largest unit that divides the duration.
fn in_largest_unit(secs: u64) -> (u64, &'static str) {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    }
}

/// Tera's error and its causes on one line (the cause says what is wrong).
fn chain_of(e: &tera::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
