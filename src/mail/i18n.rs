//! Mail text per locale: Fluent catalogues and Tera layouts, built in or overridden from `TEMPLATES_DIR`, chosen along a locale's fallback chain.
//!
//! Each locale is a folder named by its language tag holding `messages.ftl`
//! (every word of every mail) and, optionally, layouts (`welcome_mail.txt`,
//! `welcome_mail.html`, …) that place those words. A message or a layout a
//! locale lacks comes from the next locale of its chain (`fr-CA`, `fr`,
//! `DEFAULT_LOCALE`, then the built-in `en`), so an override folder may hold a
//! single file. Everything is rendered once at start-up, so a broken file
//! stops the service there, by name, instead of failing a shopper's mail.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use chrono::format::StrftimeItems;
use chrono::{DateTime, Utc};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_syntax::ast;
use tera::{Context, Tera};
use unic_langid::LanguageIdentifier;

/// The catalogue's file name in each locale folder.
const CATALOGUE: &str = "messages.ftl";
/// The locale every chain ends in: the built-in English text is complete.
const LAST_RESORT: &str = "en";
/// Shared messages that feed other messages through variables rather than
/// appear in a layout.
const HELPERS: [&str; 2] = ["valid-for", "date-format"];
/// Override files larger than this are refused: they are not mail text.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The catalogues compiled into the binary, so it runs from any directory.
const BUILT_IN_CATALOGUES: [(&str, &str); 4] = [
    ("en", include_str!("../../templates/en/messages.ftl")),
    ("de", include_str!("../../templates/de/messages.ftl")),
    ("fr", include_str!("../../templates/fr/messages.ftl")),
    ("es", include_str!("../../templates/es/messages.ftl")),
];

/// The built-in layouts: each mail's body inside `base.txt` or `base.html`.
/// They hold no words of their own, so they serve every locale (they are
/// the `en` folder's, the end of every chain).
const BUILT_IN_LAYOUTS: [(&str, &str); 16] = [
    // First: the others extend them.
    ("base.txt", include_str!("../../templates/en/base.txt")),
    ("base.html", include_str!("../../templates/en/base.html")),
    (
        "welcome_mail.txt",
        include_str!("../../templates/en/welcome_mail.txt"),
    ),
    (
        "welcome_mail.html",
        include_str!("../../templates/en/welcome_mail.html"),
    ),
    (
        "account_exists_mail.txt",
        include_str!("../../templates/en/account_exists_mail.txt"),
    ),
    (
        "account_exists_mail.html",
        include_str!("../../templates/en/account_exists_mail.html"),
    ),
    (
        "password_reset.txt",
        include_str!("../../templates/en/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("../../templates/en/password_reset.html"),
    ),
    (
        "password_changed.txt",
        include_str!("../../templates/en/password_changed.txt"),
    ),
    (
        "password_changed.html",
        include_str!("../../templates/en/password_changed.html"),
    ),
    (
        "email_change_confirm.txt",
        include_str!("../../templates/en/email_change_confirm.txt"),
    ),
    (
        "email_change_confirm.html",
        include_str!("../../templates/en/email_change_confirm.html"),
    ),
    (
        "email_change_requested.txt",
        include_str!("../../templates/en/email_change_requested.txt"),
    ),
    (
        "email_change_requested.html",
        include_str!("../../templates/en/email_change_requested.html"),
    ),
    (
        "account_deleted.txt",
        include_str!("../../templates/en/account_deleted.txt"),
    ),
    (
        "account_deleted.html",
        include_str!("../../templates/en/account_deleted.html"),
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
}

impl Template {
    pub const ALL: [Template; 7] = [
        Template::Welcome,
        Template::AccountExists,
        Template::PasswordReset,
        Template::PasswordChanged,
        Template::EmailChangeConfirm,
        Template::EmailChangeRequested,
        Template::AccountDeleted,
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
    fn sample(self) -> Fill<'static> {
        let mut fill = Fill {
            name: "Ann",
            site_name: "Ecoms",
            link: None,
            code: None,
            valid_for_secs: None,
            new_email: None,
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

/// A template or catalogue that cannot be used, by file.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("DEFAULT_LOCALE {0} has no catalogue (built in: en, de, fr, es; or add a folder to TEMPLATES_DIR)")]
    NoDefault(String),
}

impl TemplateError {
    fn file(file: &str, reason: impl Into<String>) -> Self {
        TemplateError::File {
            file: file.to_owned(),
            reason: reason.into(),
        }
    }
}

struct Catalogue {
    bundle: FluentBundle<FluentResource>,
    /// Its message ids, in file order.
    ids: Vec<String>,
    /// Where it came from, for errors.
    source: String,
}

struct Locale {
    /// An override first, then the built-in one.
    catalogues: Vec<Catalogue>,
    dates: chrono::Locale,
}

/// Every locale's catalogues and layouts, checked.
pub struct Catalogues {
    default: String,
    locales: HashMap<String, Locale>,
    tera: Tera,
    /// Template name (`<locale>/<file>`) to the file it came from.
    layout_sources: HashMap<String, String>,
}

impl std::fmt::Debug for Catalogues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut locales: Vec<_> = self.locales.keys().collect();
        locales.sort();
        f.debug_struct("Catalogues")
            .field("default", &self.default)
            .field("locales", &locales)
            .finish()
    }
}

impl Catalogues {
    /// The built-in text only, with English as the default.
    pub fn built_in() -> Result<Self, TemplateError> {
        Self::load(LAST_RESORT, None)
    }

    /// The built-in text, overridden file by file from `overrides` (a
    /// folder per locale), with `default` at the end of every chain.
    pub fn load(default: &str, overrides: Option<&Path>) -> Result<Self, TemplateError> {
        let mut catalogues = Catalogues {
            default: canonical(default).unwrap_or_else(|| LAST_RESORT.to_owned()),
            locales: HashMap::new(),
            tera: Tera::default(),
            layout_sources: HashMap::new(),
        };
        for (tag, text) in BUILT_IN_CATALOGUES {
            catalogues.add_catalogue(
                tag,
                text.to_owned(),
                &format!("templates/{tag}/{CATALOGUE}"),
            )?;
        }
        for (file, text) in BUILT_IN_LAYOUTS {
            catalogues.add_layout(
                LAST_RESORT,
                file,
                text,
                &format!("templates/{LAST_RESORT}/{file}"),
            )?;
        }
        if let Some(dir) = overrides {
            catalogues.add_overrides(dir)?;
        }
        if catalogues.chain(&catalogues.default.clone())[0] == LAST_RESORT
            && primary(&catalogues.default) != LAST_RESORT
        {
            return Err(TemplateError::NoDefault(catalogues.default));
        }
        catalogues.check()?;
        Ok(catalogues)
    }

    /// The locale of mail for accounts that chose none.
    pub fn default_locale(&self) -> &str {
        &self.default
    }

    /// The locales that have a catalogue, sorted.
    pub fn locales(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self.locales.keys().map(String::as_str).collect();
        tags.sort_unstable();
        tags
    }

    /// Renders `template` in `locale` (a canonical tag; empty for the
    /// default).
    pub fn render(
        &self,
        template: Template,
        locale: &str,
        fill: &Fill<'_>,
    ) -> Result<Rendered, TemplateError> {
        let chain = self.chain(locale);
        let first = chain.first().copied().unwrap_or(LAST_RESORT);
        let args = self.args(&chain, fill)?;
        let mut words = BTreeMap::new();
        for tag in &chain {
            for catalogue in &self.locales[*tag].catalogues {
                for id in &catalogue.ids {
                    let key = match Template::of_message(id) {
                        Some(t) if t == template => id[t.prefix().len() + 1..].replace('-', "_"),
                        Some(_) => continue,
                        None if HELPERS.contains(&id.as_str()) => continue,
                        None => id.replace('-', "_"),
                    };
                    if words.contains_key(&key) {
                        continue;
                    }
                    words.insert(key, format(catalogue, id, &args)?);
                }
            }
        }
        let subject = words.get("subject").cloned().ok_or_else(|| {
            TemplateError::file(
                &self.catalogue_source(first),
                format!("no message {}-subject", template.prefix()),
            )
        })?;
        let mut context = Context::new();
        context.insert("t", &words);
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
        // The formatted values too, so that a layout may place them itself
        // (as layouts written before the catalogues did with `valid_for`).
        for key in ["date", "valid_for", "until"] {
            if let Some(FluentValue::String(value)) = args.get(key) {
                context.insert(key, value.as_ref());
            }
        }
        let text =
            self.render_layout(&chain, &format!("{}.txt", template.file_stem()), &context)?;
        let html =
            self.render_layout(&chain, &format!("{}.html", template.file_stem()), &context)?;
        Ok(Rendered {
            subject,
            text,
            html,
            locale: first.to_owned(),
        })
    }

    /// The locales to look in, most specific first: the tag, its parents,
    /// the default's, and the built-in English; only those present.
    fn chain(&self, locale: &str) -> Vec<&str> {
        let mut chain: Vec<&str> = Vec::with_capacity(4);
        let candidates = parents(locale)
            .into_iter()
            .chain(parents(&self.default))
            .chain([LAST_RESORT.to_owned()]);
        for candidate in candidates {
            if let Some((key, _)) = self.locales.get_key_value(&candidate) {
                if !chain.contains(&key.as_str()) {
                    chain.push(key.as_str());
                }
            }
        }
        chain
    }

    fn args(&self, chain: &[&str], fill: &Fill<'_>) -> Result<FluentArgs<'static>, TemplateError> {
        let mut args = FluentArgs::new();
        args.set("name", fill.name.to_owned());
        args.set("site_name", fill.site_name.to_owned());
        let date_format = self.lookup(chain, "date-format", &FluentArgs::new())?;
        let dates = chain
            .first()
            .and_then(|tag| self.locales.get(*tag))
            .map_or(chrono::Locale::POSIX, |l| l.dates);
        let date = |at: DateTime<Utc>| -> Result<String, TemplateError> {
            let items = StrftimeItems::new_with_locale(&date_format, dates)
                .parse()
                .map_err(|_| {
                    TemplateError::file(
                        &self.source_of(chain, "date-format"),
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
                    &self.source_of(chain, "date-format"),
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
            let valid_for = self.lookup(chain, "valid-for", &args)?;
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
        Ok(args)
    }

    /// One message from the first catalogue along `chain` that has it.
    fn lookup(
        &self,
        chain: &[&str],
        id: &str,
        args: &FluentArgs<'_>,
    ) -> Result<String, TemplateError> {
        for tag in chain {
            for catalogue in &self.locales[*tag].catalogues {
                if catalogue.bundle.has_message(id) {
                    return format(catalogue, id, args);
                }
            }
        }
        Err(TemplateError::file(
            &self.catalogue_source(chain.first().copied().unwrap_or(LAST_RESORT)),
            format!("no message {id}"),
        ))
    }

    fn source_of(&self, chain: &[&str], id: &str) -> String {
        chain
            .iter()
            .flat_map(|tag| &self.locales[*tag].catalogues)
            .find(|c| c.bundle.has_message(id))
            .map_or_else(|| self.catalogue_source(LAST_RESORT), |c| c.source.clone())
    }

    fn catalogue_source(&self, tag: &str) -> String {
        self.locales
            .get(tag)
            .and_then(|l| l.catalogues.first())
            .map_or_else(
                || format!("templates/{tag}/{CATALOGUE}"),
                |c| c.source.clone(),
            )
    }

    fn render_layout(
        &self,
        chain: &[&str],
        file: &str,
        context: &Context,
    ) -> Result<String, TemplateError> {
        let name = chain
            .iter()
            .map(|tag| format!("{tag}/{file}"))
            .find(|name| self.layout_sources.contains_key(name))
            .ok_or_else(|| TemplateError::file(file, "no layout for this mail"))?;
        self.tera
            .render(&name, context)
            .map_err(|e| TemplateError::file(&self.layout_sources[&name], chain_of(&e)))
    }

    fn add_catalogue(
        &mut self,
        tag: &str,
        text: String,
        source: &str,
    ) -> Result<(), TemplateError> {
        let resource = FluentResource::try_new(text).map_err(|(resource, errors)| {
            let reasons: Vec<String> = errors
                .iter()
                .map(|e| {
                    format!(
                        "line {}: {}",
                        line_of(resource.source(), e.pos.start),
                        e.kind
                    )
                })
                .collect();
            TemplateError::file(source, reasons.join("; "))
        })?;
        let ids = resource
            .entries()
            .filter_map(|entry| match entry {
                ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect();
        let langid: LanguageIdentifier = tag
            .parse()
            .map_err(|_| TemplateError::file(source, format!("{tag:?} is not a language tag")))?;
        let dates = dates_locale(&langid);
        let mut bundle = FluentBundle::new_concurrent(vec![langid]);
        bundle.set_use_isolating(false);
        bundle
            .add_builtins()
            .map_err(|e| TemplateError::file(source, e.to_string()))?;
        bundle.add_resource(resource).map_err(|errors| {
            let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
            TemplateError::file(source, reasons.join("; "))
        })?;
        let locale = self
            .locales
            .entry(tag.to_owned())
            .or_insert_with(|| Locale {
                catalogues: Vec::new(),
                dates,
            });
        // An override goes in front of the built-in catalogue.
        locale.catalogues.insert(
            0,
            Catalogue {
                bundle,
                ids,
                source: source.to_owned(),
            },
        );
        Ok(())
    }

    fn add_layout(
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
        self.layout_sources.insert(name, source.to_owned());
        Ok(())
    }

    fn add_overrides(&mut self, dir: &Path) -> Result<(), TemplateError> {
        let shown = dir.display().to_string();
        let entries =
            std::fs::read_dir(dir).map_err(|e| TemplateError::file(&shown, e.to_string()))?;
        let mut folders = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| TemplateError::file(&shown, e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            let tag = canonical(&name).ok_or_else(|| {
                TemplateError::file(
                    &entry.path().display().to_string(),
                    "a folder here must be named by a language tag (en, de, fr-CA, …)",
                )
            })?;
            folders.push((tag, entry.path()));
        }
        folders.sort();
        let layout_names: Vec<&str> = BUILT_IN_LAYOUTS.iter().map(|(f, _)| *f).collect();
        for (tag, folder) in folders {
            let catalogue = folder.join(CATALOGUE);
            if catalogue.exists() {
                let text = read_override(&catalogue)?;
                self.add_catalogue(&tag, text, &catalogue.display().to_string())?;
            } else if !self.locales.contains_key(&tag) {
                // Layouts alone: the words come from along the chain.
                let langid: LanguageIdentifier = tag.parse().map_err(|_| {
                    TemplateError::file(&folder.display().to_string(), "not a language tag")
                })?;
                self.locales.insert(
                    tag.clone(),
                    Locale {
                        catalogues: Vec::new(),
                        dates: dates_locale(&langid),
                    },
                );
            }
            let entries = std::fs::read_dir(&folder)
                .map_err(|e| TemplateError::file(&folder.display().to_string(), e.to_string()))?;
            for entry in entries {
                let entry = entry.map_err(|e| {
                    TemplateError::file(&folder.display().to_string(), e.to_string())
                })?;
                let file = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                if file == CATALOGUE || file.starts_with('.') {
                    continue;
                }
                if !layout_names.contains(&file.as_str()) {
                    tracing::warn!(file = %path.display(), "ignoring a file that is not a mail layout or {CATALOGUE}");
                    continue;
                }
                let text = read_override(&path)?;
                self.add_layout(&tag, &file, &text, &path.display().to_string())?;
            }
        }
        Ok(())
    }

    /// Renders every mail in every locale, so that a missing message, an
    /// unknown variable or a bad date pattern is found now.
    fn check(&self) -> Result<(), TemplateError> {
        for tag in self.locales() {
            for template in Template::ALL {
                self.render(template, tag, &template.sample())?;
            }
            // Every branch of the lifetime's plural forms, whatever the
            // settings make of it later.
            let chain = self.chain(tag);
            for unit in ["second", "minute", "hour", "day"] {
                for count in [0_u64, 1, 2, 3, 5, 11, 21, 22, 100, 1_000_000] {
                    let mut args = FluentArgs::new();
                    args.set("count", count);
                    args.set("unit", unit);
                    self.lookup(&chain, "valid-for", &args)?;
                }
            }
        }
        Ok(())
    }
}

/// The canonical form of a language tag (`fr-ca` → `fr-CA`), if it is one.
pub fn canonical(tag: &str) -> Option<String> {
    let tag = tag.trim();
    if tag.is_empty() || tag.len() > 64 {
        return None;
    }
    tag.parse::<LanguageIdentifier>()
        .ok()
        .map(|id| id.to_string())
}

/// `zh-Hant-TW` → `zh-Hant-TW`, `zh-Hant`, `zh`; nothing for junk.
fn parents(tag: &str) -> Vec<String> {
    let Ok(mut id) = tag.parse::<LanguageIdentifier>() else {
        return Vec::new();
    };
    let mut out = vec![id.to_string()];
    if id.variants().len() > 0 {
        id.clear_variants();
        out.push(id.to_string());
    }
    if id.region.take().is_some() {
        out.push(id.to_string());
    }
    if id.script.take().is_some() {
        out.push(id.to_string());
    }
    out
}

fn primary(tag: &str) -> String {
    tag.parse::<LanguageIdentifier>()
        .map(|id| id.language.to_string())
        .unwrap_or_default()
}

/// Month and day names for a locale: its region's, or its language's main
/// country's (`de` → `de_DE`), or the POSIX ones.
fn dates_locale(id: &LanguageIdentifier) -> chrono::Locale {
    let language = id.language.as_str();
    let mut candidates = Vec::new();
    if let Some(region) = id.region {
        candidates.push(format!("{language}_{}", region.as_str()));
    }
    candidates.push(format!("{language}_{}", language.to_ascii_uppercase()));
    if language == "en" {
        candidates.push("en_US".to_owned());
    }
    candidates.push(language.to_owned());
    candidates
        .iter()
        .find_map(|c| chrono::Locale::try_from(c.as_str()).ok())
        .unwrap_or(chrono::Locale::POSIX)
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

fn format(catalogue: &Catalogue, id: &str, args: &FluentArgs<'_>) -> Result<String, TemplateError> {
    let pattern = catalogue
        .bundle
        .get_message(id)
        .and_then(|m| m.value())
        .ok_or_else(|| {
            TemplateError::file(&catalogue.source, format!("message {id} has no value"))
        })?;
    let mut errors = Vec::new();
    let text = catalogue
        .bundle
        .format_pattern(pattern, Some(args), &mut errors);
    if let Some(e) = errors.first() {
        return Err(TemplateError::file(
            &catalogue.source,
            format!("message {id}: {e}"),
        ));
    }
    Ok(text.into_owned())
}

fn read_override(path: &Path) -> Result<String, TemplateError> {
    let shown = path.display().to_string();
    let size = std::fs::metadata(path)
        .map_err(|e| TemplateError::file(&shown, e.to_string()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(TemplateError::file(&shown, "larger than 1 MiB"));
    }
    let bytes = std::fs::read(path).map_err(|e| TemplateError::file(&shown, e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| TemplateError::file(&shown, "not UTF-8"))
}

fn line_of(text: &str, byte: usize) -> usize {
    text.as_bytes()[..byte.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ids(text: &str) -> Vec<String> {
        let resource = FluentResource::try_new(text.to_owned()).unwrap();
        let mut ids: Vec<String> = resource
            .entries()
            .filter_map(|e| match e {
                ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids
    }

    fn fill(template: Template) -> Fill<'static> {
        let mut fill = template.sample();
        fill.now = Utc.with_ymd_and_hms(2026, 11, 30, 23, 30, 0).unwrap();
        fill
    }

    #[test]
    fn every_locale_has_every_message_and_renders_every_mail() {
        let english = ids(BUILT_IN_CATALOGUES[0].1);
        for template in Template::ALL {
            assert!(english.contains(&format!("{}-subject", template.prefix())));
        }
        let catalogues = Catalogues::built_in().unwrap();
        assert_eq!(catalogues.locales(), ["de", "en", "es", "fr"]);
        for (tag, text) in BUILT_IN_CATALOGUES {
            assert_eq!(ids(text), english, "{tag} has other messages than en");
            for template in Template::ALL {
                let mail = catalogues.render(template, tag, &fill(template)).unwrap();
                assert_eq!(mail.locale, tag);
                for part in [&mail.subject, &mail.text, &mail.html] {
                    assert!(
                        !part.contains('{') && !part.contains('}'),
                        "{tag} {template:?}: {part}"
                    );
                }
                assert!(mail.subject.starts_with("Ecoms"), "{tag}: {}", mail.subject);
                assert!(mail.html.contains(&format!("<html lang=\"{tag}\">")));
                assert!(mail.text.contains("Ann"));
                if tag != "en" {
                    let english = catalogues.render(template, "en", &fill(template)).unwrap();
                    assert_ne!(mail.subject, english.subject, "{tag} {template:?}");
                    assert_ne!(mail.text, english.text, "{tag} {template:?}");
                }
            }
        }
    }

    #[test]
    fn english_subjects_are_unchanged() {
        let c = Catalogues::built_in().unwrap();
        let subject = |t: Template| c.render(t, "en", &fill(t)).unwrap().subject;
        assert_eq!(subject(Template::Welcome), "Ecoms Welcome Mail");
        assert_eq!(
            subject(Template::AccountExists),
            "Ecoms Account Already Exists"
        );
        assert_eq!(subject(Template::PasswordReset), "Ecoms Password Reset");
        assert_eq!(subject(Template::PasswordChanged), "Ecoms Password Changed");
        assert_eq!(
            subject(Template::EmailChangeConfirm),
            "Ecoms Confirm Your New E-mail Address"
        );
        assert_eq!(
            subject(Template::EmailChangeRequested),
            "Ecoms E-mail Change Requested"
        );
        assert_eq!(subject(Template::AccountDeleted), "Ecoms Account Deleted");
    }

    #[test]
    fn plurals_and_dates_come_from_the_locale() {
        let c = Catalogues::built_in().unwrap();
        let text = |tag: &str, secs: u64| {
            let mut f = fill(Template::PasswordReset);
            f.valid_for_secs = Some(secs);
            c.render(Template::PasswordReset, tag, &f).unwrap().text
        };
        // 23:30 on 30 November plus the lifetime.
        assert!(text("en", 3600).contains("1 hour (until 1 December 2026, 00:30 UTC)"));
        assert!(text("en", 7200).contains("2 hours"));
        assert!(text("en", 90).contains("90 seconds"));
        assert!(text("de", 3600).contains("1 Stunde"));
        assert!(text("de", 172_800).contains("2 Tage"));
        assert!(text("de", 3600).contains("1. Dezember 2026"));
        assert!(text("fr", 60).contains("1 minute"));
        assert!(text("fr", 7200).contains("2 heures"));
        assert!(text("fr", 3600).contains("1 décembre 2026"));
        assert!(text("es", 3600).contains("1 hora"));
        assert!(text("es", 7200).contains("2 horas"));
        assert!(text("es", 3600).contains("diciembre de 2026"));
        // Far beyond any date: still a date, never a panic.
        assert!(!text("en", u64::MAX).is_empty());
    }

    #[test]
    fn tags_fall_back_along_their_chain() {
        let c = Catalogues::built_in().unwrap();
        let locale = |tag: &str| {
            c.render(Template::Welcome, tag, &fill(Template::Welcome))
                .unwrap()
                .locale
        };
        assert_eq!(locale("fr-CA"), "fr");
        assert_eq!(locale("de-AT-1996"), "de");
        assert_eq!(locale("es-419"), "es");
        assert_eq!(locale("pt-BR"), "en");
        assert_eq!(locale(""), "en");
        assert_eq!(locale("not a tag"), "en");
        let german = Catalogues::load("de", None).unwrap();
        assert_eq!(german.default_locale(), "de");
        let mail = german
            .render(Template::Welcome, "pt-BR", &fill(Template::Welcome))
            .unwrap();
        assert_eq!(mail.locale, "de");
        assert_eq!(mail.subject, "Ecoms: Willkommen");
        assert!(matches!(
            Catalogues::load("it", None),
            Err(TemplateError::NoDefault(tag)) if tag == "it"
        ));
        assert_eq!(
            Catalogues::load("en-GB", None).unwrap().default_locale(),
            "en-GB"
        );
    }

    fn write(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn overrides_replace_single_files_and_the_rest_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "de/welcome_mail.txt",
            "{{ t.hello }} CODE {{ code }} {{ link }}\n",
        );
        // A layout in the style of the ones before the catalogues: its own
        // words and the formatted values.
        write(
            dir.path(),
            "es/password_reset.txt",
            "Hola {{ name }}: {{ link }} ({{ valid_for }}, {{ until }}, {{ date }})\n",
        );
        write(
            dir.path(),
            "fr/messages.ftl",
            "welcome-subject = { $site_name } : bonjour\n",
        );
        write(
            dir.path(),
            "it/messages.ftl",
            "hello = Ciao { $name },\nwelcome-subject = Benvenuto su { $site_name }\n",
        );
        write(dir.path(), "it/notes.md", "not a layout");
        write(dir.path(), ".git/config", "ignored");
        let c = Catalogues::load("en", Some(dir.path())).unwrap();
        let render = |tag: &str| {
            c.render(Template::Welcome, tag, &fill(Template::Welcome))
                .unwrap()
        };
        let de = render("de");
        assert!(
            de.text.starts_with("Hallo Ann, CODE 012345 https://"),
            "{}",
            de.text
        );
        assert!(
            de.html.contains("Willkommen bei Ecoms"),
            "the built-in de html stays"
        );
        let fr = render("fr-CA");
        assert_eq!(fr.subject, "Ecoms : bonjour");
        assert!(
            fr.text.contains("Bonjour Ann"),
            "other messages stay built in"
        );
        let it = render("it");
        assert_eq!(it.locale, "it");
        assert_eq!(it.subject, "Benvenuto su Ecoms");
        assert!(it.text.starts_with("Ciao Ann,"));
        assert!(
            it.text.contains("Welcome to Ecoms!"),
            "missing messages come from the default"
        );
        let en = render("en");
        assert_eq!(en.subject, "Ecoms Welcome Mail");
        let reset = c
            .render(
                Template::PasswordReset,
                "es",
                &fill(Template::PasswordReset),
            )
            .unwrap();
        assert!(
            reset.text.starts_with("Hola Ann: https://")
                && reset.text.contains(
                    "(1 hora, 1 de diciembre de 2026, 00:30 (UTC), 30 de noviembre de 2026, 23:30 (UTC))"
                ),
            "{}",
            reset.text
        );
    }

    #[test]
    fn a_broken_override_is_an_error_naming_its_file() {
        let cases = [
            ("de/messages.ftl", "welcome-subject = { $site_name\n"),
            ("de/messages.ftl", "welcome-subject = { $nobody }\n"),
            ("de/messages.ftl", "welcome-subject = { missing-message }\n"),
            ("de/messages.ftl", "date-format = %Q %\n"),
            (
                "de/messages.ftl",
                "valid-for = { $unit ->\n    [day] { $cuont } Tage\n   *[other] { $count }\n}\n",
            ),
            ("de/welcome_mail.html", "{% if %}"),
            ("de/welcome_mail.txt", "{{ t.no_such_message }}"),
            ("de/welcome_mail.txt", "{{ nothing_here }}"),
            ("de/account_deleted.txt", "\u{0}\u{fffe}{{"),
        ];
        for (file, text) in cases {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), file, text);
            let err = Catalogues::load("en", Some(dir.path()))
                .unwrap_err()
                .to_string();
            let path = dir.path().join(file).display().to_string();
            assert!(err.starts_with(&path), "{file} {text:?}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("de").with_extension(""), b"").ok();
        write(dir.path(), "not a tag!/messages.ftl", "hello = x\n");
        let err = Catalogues::load("en", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a tag!"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("de")).unwrap();
        std::fs::write(dir.path().join("de/messages.ftl"), [0xff, 0xfe, 0x00]).unwrap();
        let err = Catalogues::load("en", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("de/messages.ftl") && err.contains("UTF-8"),
            "{err}"
        );
        let missing = Catalogues::load("en", Some(Path::new("/no/such/folder")))
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("/no/such/folder"), "{missing}");
    }
}
