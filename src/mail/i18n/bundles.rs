//! The words of every mail: one Fluent bundle per catalogue file, kept per
//! locale (an override in front of the built-in one), and looked up along
//! a locale's chain.

use std::collections::HashMap;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use fluent_syntax::ast;
use unic_langid::LanguageIdentifier;

use super::negotiation::{self, Available, LAST_RESORT};

/// The catalogue's file name in each locale folder.
pub(super) const CATALOGUE: &str = "messages.ftl";

/// The catalogues compiled into the binary, so it runs from any directory.
pub(super) const BUILT_IN_CATALOGUES: [(&str, &str); 4] = [
    ("en", include_str!("../../../templates/en/messages.ftl")),
    ("de", include_str!("../../../templates/de/messages.ftl")),
    ("fr", include_str!("../../../templates/fr/messages.ftl")),
    ("es", include_str!("../../../templates/es/messages.ftl")),
];

/// A template or catalogue that cannot be used, by file.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("DEFAULT_LOCALE {0} has no catalogue (built in: en, de, fr, es; or add a folder to TEMPLATES_DIR)")]
    NoDefault(String),
}

impl TemplateError {
    pub(super) fn file(file: &str, reason: impl Into<String>) -> Self {
        TemplateError::File {
            file: file.to_owned(),
            reason: reason.into(),
        }
    }
}

/// One catalogue file.
pub(super) struct Catalogue {
    bundle: FluentBundle<FluentResource>,
    /// Its message ids, in file order.
    pub(super) ids: Vec<String>,
    /// Where it came from, for errors.
    source: String,
}

impl Catalogue {
    /// Message `id` with `args`; an error names this file.
    pub(super) fn format(&self, id: &str, args: &FluentArgs<'_>) -> Result<String, TemplateError> {
        let pattern = self
            .bundle
            .get_message(id)
            .and_then(|m| m.value())
            .ok_or_else(|| {
                TemplateError::file(&self.source, format!("message {id} has no value"))
            })?;
        let mut errors = Vec::new();
        let text = self.bundle.format_pattern(pattern, Some(args), &mut errors);
        if let Some(e) = errors.first() {
            return Err(TemplateError::file(
                &self.source,
                format!("message {id}: {e}"),
            ));
        }
        Ok(text.into_owned())
    }
}

struct Locale {
    /// An override first, then the built-in one.
    catalogues: Vec<Catalogue>,
    dates: chrono::Locale,
}

/// Every locale's catalogues.
#[derive(Default)]
pub(super) struct Words {
    locales: HashMap<String, Locale>,
    /// The keys of `locales`, as negotiation takes them; set by `settle`.
    available: Vec<Available>,
}

impl Words {
    /// The built-in catalogues.
    pub(super) fn built_in() -> Result<Self, TemplateError> {
        let mut words = Words::default();
        for (tag, text) in BUILT_IN_CATALOGUES {
            words.add_catalogue(
                tag,
                text.to_owned(),
                &format!("templates/{tag}/{CATALOGUE}"),
            )?;
        }
        Ok(words)
    }

    /// Puts a catalogue in front of `tag`'s others.
    pub(super) fn add_catalogue(
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

    /// Makes `tag` a locale without words of its own (a folder of layouts
    /// only): its words come from along its chain.
    pub(super) fn add_locale(&mut self, tag: &str, source: &str) -> Result<(), TemplateError> {
        if self.locales.contains_key(tag) {
            return Ok(());
        }
        let langid: LanguageIdentifier = tag
            .parse()
            .map_err(|_| TemplateError::file(source, "not a language tag"))?;
        self.locales.insert(
            tag.to_owned(),
            Locale {
                catalogues: Vec::new(),
                dates: dates_locale(&langid),
            },
        );
        Ok(())
    }

    /// Done adding: the locales are ready for negotiation.
    pub(super) fn settle(&mut self) {
        self.available = negotiation::available(self.locales.keys());
    }

    /// Whether `tag` is served by more than the built-in English, or is
    /// English (see `negotiation::covers`).
    pub(super) fn covers(&self, tag: &str) -> bool {
        negotiation::covers(tag, &self.available)
    }

    /// The locales that have words or layouts, sorted.
    pub(super) fn tags(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self.locales.keys().map(String::as_str).collect();
        tags.sort_unstable();
        tags
    }

    /// The locales to look in for `locale`, best first (see `negotiation`).
    pub(super) fn chain(&self, locale: &str, default: &str) -> Vec<&str> {
        negotiation::chain(locale, default, &self.available)
    }

    /// The catalogues along `chain`, in the order they are asked.
    pub(super) fn along<'a>(&'a self, chain: &'a [&str]) -> impl Iterator<Item = &'a Catalogue> {
        chain
            .iter()
            .filter_map(|tag| self.locales.get(*tag))
            .flat_map(|locale| &locale.catalogues)
    }

    /// Month and day names for the first locale of `chain`.
    pub(super) fn dates(&self, chain: &[&str]) -> chrono::Locale {
        chain
            .first()
            .and_then(|tag| self.locales.get(*tag))
            .map_or(chrono::Locale::POSIX, |l| l.dates)
    }

    /// One message from the first catalogue along `chain` that has it.
    pub(super) fn lookup(
        &self,
        chain: &[&str],
        id: &str,
        args: &FluentArgs<'_>,
    ) -> Result<String, TemplateError> {
        match self.along(chain).find(|c| c.bundle.has_message(id)) {
            Some(catalogue) => catalogue.format(id, args),
            None => Err(TemplateError::file(
                &self.catalogue_source(chain.first().copied().unwrap_or(LAST_RESORT)),
                format!("no message {id}"),
            )),
        }
    }

    /// The file message `id` comes from along `chain`, for errors.
    pub(super) fn source_of(&self, chain: &[&str], id: &str) -> String {
        self.along(chain)
            .find(|c| c.bundle.has_message(id))
            .map_or_else(|| self.catalogue_source(LAST_RESORT), |c| c.source.clone())
    }

    /// `tag`'s first catalogue file, for errors.
    pub(super) fn catalogue_source(&self, tag: &str) -> String {
        self.locales
            .get(tag)
            .and_then(|l| l.catalogues.first())
            .map_or_else(
                || format!("templates/{tag}/{CATALOGUE}"),
                |c| c.source.clone(),
            )
    }
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

fn line_of(text: &str, byte: usize) -> usize {
    text.as_bytes()[..byte.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
