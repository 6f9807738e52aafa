//! Every locale's mail text, loaded once at start-up: the built-in words
//! and layouts, overridden file by file from `TEMPLATES_DIR`, then checked
//! by rendering every mail in every locale.

use std::path::Path;

use fluent_bundle::FluentArgs;

use super::bundles::{TemplateError, Words, CATALOGUE};
use super::negotiation::LAST_RESORT;
use super::templates::{self, Fill, Layouts, Rendered, Template};
use crate::domain::canonical_locale;

/// Override files larger than this are refused: they are not mail text.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Counts that reach every plural category of the shipped languages (and
/// the exact-number variants a catalogue may have for 0 or 1).
const PLURAL_PROBES: [usize; 10] = [0, 1, 2, 3, 5, 11, 21, 22, 100, 1_000_000];

/// Every locale's catalogues and layouts, checked.
pub struct Catalogues {
    default: String,
    words: Words,
    layouts: Layouts,
}

impl std::fmt::Debug for Catalogues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogues")
            .field("default", &self.default)
            .field("locales", &self.words.tags())
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
            default: canonical_locale(default).unwrap_or_else(|| LAST_RESORT.to_owned()),
            words: Words::built_in()?,
            layouts: Layouts::built_in()?,
        };
        if let Some(dir) = overrides {
            catalogues.add_overrides(dir)?;
        }
        catalogues.words.settle();
        if !catalogues.words.covers(&catalogues.default) {
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
        self.words.tags()
    }

    /// Renders `template` in `locale` (a canonical tag; empty for the
    /// default).
    pub fn render(
        &self,
        template: Template,
        locale: &str,
        fill: &Fill<'_>,
    ) -> Result<Rendered, TemplateError> {
        let chain = self.words.chain(locale, &self.default);
        templates::render(&self.words, &self.layouts, &chain, template, fill)
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
            let tag = canonical_locale(&name).ok_or_else(|| {
                TemplateError::file(
                    &entry.path().display().to_string(),
                    "a folder here must be named by a language tag (en, de, fr-CA, …)",
                )
            })?;
            folders.push((tag, entry.path()));
        }
        folders.sort();
        for (tag, folder) in folders {
            let shown = folder.display().to_string();
            let catalogue = folder.join(CATALOGUE);
            if catalogue.exists() {
                let text = read_override(&catalogue)?;
                self.words
                    .add_catalogue(&tag, text, &catalogue.display().to_string())?;
            } else {
                // Layouts alone: the words come from along the chain.
                self.words.add_locale(&tag, &shown)?;
            }
            let entries = std::fs::read_dir(&folder)
                .map_err(|e| TemplateError::file(&shown, e.to_string()))?;
            for entry in entries {
                let entry = entry.map_err(|e| TemplateError::file(&shown, e.to_string()))?;
                let file = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                if file == CATALOGUE || file.starts_with('.') {
                    continue;
                }
                if !Layouts::is_layout(&file) {
                    tracing::warn!(file = %path.display(), "ignoring a file that is not a mail layout or {CATALOGUE}");
                    continue;
                }
                let text = read_override(&path)?;
                self.layouts
                    .add(&tag, &file, &text, &path.display().to_string())?;
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
            let chain = self.words.chain(tag, &self.default);
            for unit in ["second", "minute", "hour", "day"] {
                for count in PLURAL_PROBES {
                    let mut args = FluentArgs::new();
                    args.set("count", count);
                    args.set("unit", unit);
                    self.words.lookup(&chain, "valid-for", &args)?;
                }
            }
            // Likewise every branch of the recovery codes left.
            for codes_left in PLURAL_PROBES {
                let mut fill = Template::RecoveryCodeUsed.sample();
                fill.codes_left = Some(codes_left);
                self.render(Template::RecoveryCodeUsed, tag, &fill)?;
            }
        }
        Ok(())
    }
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
