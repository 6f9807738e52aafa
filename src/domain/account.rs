//! A stored account as the rest of the service sees it (never its password
//! hash), and which accounts a listing holds.

use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: String,
    pub address: String,
    pub verified: bool,
    pub term_and_condition: bool,
    pub created_from: String,
    /// Canonical language tag for mail; empty for the service's default.
    pub locale: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Signing in needs an authenticator code after the password.
    pub totp_enabled: bool,
    /// The profile image, when there is one.
    pub image: Option<ProfileImage>,
}

/// An account's profile image: the keys of its two sizes in the media store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileImage {
    /// The 512-pixel square.
    pub large: String,
    /// The 128-pixel square.
    pub thumbnail: String,
}

impl ProfileImage {
    /// Both keys, or none: a row holds both or neither.
    pub fn from_keys(large: String, thumbnail: String) -> Option<ProfileImage> {
        (!large.is_empty() && !thumbnail.is_empty()).then_some(ProfileImage { large, thumbnail })
    }

    pub fn keys(&self) -> [&str; 2] {
        [&self.large, &self.thumbnail]
    }
}

impl Account {
    /// How the welcome mail addresses the shopper.
    pub fn greeting_name(&self) -> &str {
        if self.username.is_empty() {
            &self.email
        } else {
            &self.username
        }
    }
}

#[cfg(test)]
impl Account {
    /// A new, unverified account with `email` and `username`, for unit tests.
    pub(crate) fn example(email: &str, username: &str) -> Account {
        let now = Utc::now();
        Account {
            id: Uuid::now_v7(),
            email: email.into(),
            username: username.into(),
            first_name: String::new(),
            last_name: String::new(),
            phone_number: String::new(),
            address: String::new(),
            verified: false,
            term_and_condition: true,
            created_from: String::new(),
            locale: String::new(),
            created_at: now,
            updated_at: now,
            totp_enabled: false,
            image: None,
        }
    }
}

/// Which accounts a listing holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// Addresses that start with this (normalised: lower case); empty for all.
    pub email_prefix: String,
    /// Only accounts whose `verified` is this.
    pub verified: Option<bool>,
}
