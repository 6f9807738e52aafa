//! Mail text per locale: Fluent catalogues and Tera layouts, built in or overridden from `TEMPLATES_DIR`, chosen along a locale's fallback chain.
//!
//! Each locale is a folder named by its language tag holding `messages.ftl`
//! (every word of every mail) and, optionally, layouts (`welcome_mail.txt`,
//! `welcome_mail.html`, …) that place those words. A message or a layout a
//! locale lacks comes from the next locale of its chain (`fr-CA`, `fr`,
//! `DEFAULT_LOCALE`, then the built-in `en`), so an override folder may hold a
//! single file. Everything is rendered once at start-up, so a broken file
//! stops the service there, by name, instead of failing a shopper's mail.
//!
//! `catalogues` loads and checks it all, `bundles` holds the words,
//! `templates` places them in the layouts, `negotiation` picks the locales
//! a mail's words come from.

mod bundles;
mod catalogues;
mod negotiation;
mod templates;
#[cfg(test)]
mod tests;

pub use bundles::TemplateError;
pub use catalogues::Catalogues;
pub use templates::{Fill, Rendered, Template};
