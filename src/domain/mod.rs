//! Parsed, validated domain types: what a registration and an account are.

mod account;
mod email;
mod event;
mod locale;
mod mail_kind;
mod new_account;
mod password;
mod profile;
mod requests;
mod session;

pub use account::{Account, AccountFilter, ProfileImage};
pub use email::{Email, EMAIL_MAX_CHARS};
pub use event::EventType;
pub use locale::{canonical_locale, INVALID_LANGUAGE_TAG};
pub use mail_kind::{MailKind, UnknownMailKind};
pub use new_account::{
    parse_new_password, FieldViolation, NewAccount, Profile, RegistrationForm, ValidationErrors,
};
pub use password::Password;
pub use profile::{ProfileChanges, ProfileForm, PROFILE_PATHS};
pub use requests::{
    parse_credentials, parse_deletion, parse_email, parse_email_change, parse_password_change,
    parse_password_check, parse_required_id, Lookup, INVALID_UUID,
};
pub use session::{
    parse_account_session, parse_session_id, ClientInfo, Session, SessionEnd, USER_AGENT_MAX_CHARS,
};

/// Message for an empty required field.
pub const REQUIRED: &str = "This field is required.";
/// Message for a string holding U+0000, which no backend stores as text.
pub const NULL_CHARACTERS: &str = "Null characters are not allowed.";

/// Whether `s` holds a NUL character. Such a field gets exactly
/// [`NULL_CHARACTERS`], whatever else may be wrong with it.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// Message for a field longer than `max` characters.
pub fn too_long(max: usize) -> String {
    format!("Ensure this field has no more than {max} characters.")
}

/// Length in Unicode scalar values, the unit every limit is expressed in.
pub(crate) fn char_len(s: &str) -> usize {
    s.chars().count()
}
