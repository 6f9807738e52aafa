//! A shopper's language for mail: a BCP 47 tag in its canonical form.

use unic_langid::LanguageIdentifier;

use super::{has_nul, FieldViolation, ValidationErrors, NULL_CHARACTERS};

/// Message for a locale that is not a language tag.
pub const INVALID_LANGUAGE_TAG: &str = "Enter a valid language tag.";

/// Longest tag accepted; real ones are far shorter.
const MAX_TAG_BYTES: usize = 64;

/// The canonical form of a language tag (` fr-ca ` → `fr-CA`, `EN` → `en`),
/// or `None` when it is not one.
pub fn canonical_locale(raw: &str) -> Option<String> {
    let tag = raw.trim();
    if tag.is_empty() || tag.len() > MAX_TAG_BYTES || !tag.is_ascii() {
        return None;
    }
    tag.parse::<LanguageIdentifier>()
        .ok()
        .map(|id| id.to_string())
}

/// Parses the `locale` field: empty stays empty (the service's default),
/// anything else must be a language tag.
pub(super) fn parse_locale(errors: &mut ValidationErrors, raw: &str) -> String {
    let tag = raw.trim();
    if tag.is_empty() {
        return String::new();
    }
    if has_nul(tag) {
        errors.0.push(FieldViolation {
            field: "locale",
            description: NULL_CHARACTERS.to_owned(),
        });
        return String::new();
    }
    match canonical_locale(tag) {
        Some(tag) => tag,
        None => {
            errors.0.push(FieldViolation {
                field: "locale",
                description: INVALID_LANGUAGE_TAG.to_owned(),
            });
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_canonical_and_junk_is_refused() {
        assert_eq!(canonical_locale(" fr-ca ").as_deref(), Some("fr-CA"));
        assert_eq!(canonical_locale("EN").as_deref(), Some("en"));
        assert_eq!(
            canonical_locale("zh-hant-tw").as_deref(),
            Some("zh-Hant-TW")
        );
        for junk in [
            "",
            "x",
            "en-",
            "-en",
            "de DE",
            "ü",
            "en\0",
            "toolonglanguage",
            &"a".repeat(65_000),
        ] {
            assert_eq!(canonical_locale(junk), None, "{junk:?}");
        }
        let mut errors = ValidationErrors::default();
        assert_eq!(parse_locale(&mut errors, "  "), "");
        assert!(errors.0.is_empty());
        parse_locale(&mut errors, "12");
        parse_locale(&mut errors, "d\0e");
        assert_eq!(
            errors.0,
            vec![
                FieldViolation {
                    field: "locale",
                    description: INVALID_LANGUAGE_TAG.to_owned()
                },
                FieldViolation {
                    field: "locale",
                    description: NULL_CHARACTERS.to_owned()
                },
            ]
        );
    }
}
