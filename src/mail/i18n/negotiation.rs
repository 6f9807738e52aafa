//! Which locales a mail's words and layouts come from: the shopper's tag
//! negotiated against the locales that have text, then DEFAULT_LOCALE's,
//! then the built-in English.

use fluent_langneg::{negotiate_languages, NegotiationStrategy};
use unic_langid::LanguageIdentifier;

/// The locale every chain ends in: the built-in English text is complete.
pub(super) const LAST_RESORT: &str = "en";

/// A locale that has text, as fluent-langneg compares it and as the
/// catalogues are keyed.
#[derive(Debug, PartialEq)]
pub(super) struct Available {
    id: LanguageIdentifier,
    tag: String,
}

impl AsRef<LanguageIdentifier> for Available {
    fn as_ref(&self) -> &LanguageIdentifier {
        &self.id
    }
}

/// The locales that have text, most specific first: fluent-langneg offers
/// every locale that covers a request in the order it is given them, and
/// `fr-CA` must come before `fr`.
pub(super) fn available<'a>(tags: impl IntoIterator<Item = &'a String>) -> Vec<Available> {
    let mut available: Vec<Available> = tags
        .into_iter()
        .filter_map(|tag| {
            let id = tag.parse::<LanguageIdentifier>().ok()?;
            Some(Available {
                id,
                tag: tag.clone(),
            })
        })
        .collect();
    available.sort_by(|a, b| {
        specificity(&b.id)
            .cmp(&specificity(&a.id))
            .then_with(|| a.tag.cmp(&b.tag))
    });
    available
}

/// How many subtags narrow a language: `zh-Hant-TW` 2, `zh` 0.
fn specificity(id: &LanguageIdentifier) -> usize {
    usize::from(id.script.is_some()) + usize::from(id.region.is_some()) + id.variants().len()
}

/// The locales to look in, best first: those that serve `locale` (a
/// canonical tag; empty or junk for none), then those that serve
/// `default`, then the built-in English.
pub(super) fn chain<'a>(locale: &str, default: &str, available: &'a [Available]) -> Vec<&'a str> {
    let requested: Vec<LanguageIdentifier> = [locale, default, LAST_RESORT]
        .into_iter()
        .filter_map(|tag| tag.parse().ok())
        .collect();
    // Filtering keeps every match, in the order of the requests: the
    // shopper's locale and its parents first, DEFAULT_LOCALE's next. Of
    // those, only a request itself or a parent (a truncation: `fr` of
    // `fr-CA`, never `fr-CA` of `fr` nor `zh-TW` of `zh-Hant-TW`) serves it.
    negotiate_languages(&requested, available, None, NegotiationStrategy::Filtering)
        .into_iter()
        .filter(|a| requested.iter().any(|r| is_parent_or_same(&a.id, r)))
        .map(|a| a.tag.as_str())
        .collect()
}

/// Whether `candidate` is `tag` or a truncation of it.
fn is_parent_or_same(candidate: &LanguageIdentifier, tag: &LanguageIdentifier) -> bool {
    let (candidate, tag) = (candidate.to_string(), tag.to_string());
    tag == candidate
        || tag
            .strip_prefix(candidate.as_str())
            .is_some_and(|rest| rest.starts_with('-'))
}

/// Whether `tag` has words of its own or its language's: a default that
/// would only ever get the built-in English is a mistake, unless it is an
/// English one.
pub(super) fn covers(tag: &str, available: &[Available]) -> bool {
    chain(tag, tag, available).first().copied() != Some(LAST_RESORT)
        || tag
            .parse::<LanguageIdentifier>()
            .is_ok_and(|id| id.language.as_str() == LAST_RESORT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_falls_back_to_its_parents_then_the_default_then_english() {
        let tags = ["de", "en", "es", "fr", "fr-CA", "zh", "zh-Hant"].map(String::from);
        let available = available(&tags);
        let chain = |tag: &str| chain(tag, "de", &available);
        assert_eq!(chain("fr-CA"), ["fr-CA", "fr", "de", "en"]);
        assert_eq!(chain("zh-Hant-TW"), ["zh-Hant", "zh", "de", "en"]);
        assert_eq!(chain("de-AT-1996"), ["de", "en"]);
        assert_eq!(chain("es-419"), ["es", "de", "en"]);
        assert_eq!(chain("pt-BR"), ["de", "en"]);
        assert_eq!(chain(""), ["de", "en"]);
        assert_eq!(chain("not a tag"), ["de", "en"]);
        assert_eq!(chain("en-GB"), ["en", "de"]);
        // A regional folder serves its region only.
        assert_eq!(chain("fr"), ["fr", "de", "en"]);
        assert_eq!(chain("zh-TW"), ["zh", "de", "en"]);
        assert!(covers("zh-Hant-HK", &available));
        assert!(covers("en-GB", &available));
        assert!(!covers("it", &available));
        // A default with only a regional folder of its language is refused.
        let tags = ["en", "it-CH"].map(String::from);
        assert!(!covers("it", &super::available(&tags)));
    }
}
