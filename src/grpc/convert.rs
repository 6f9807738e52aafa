//! Proto <-> domain: the API's messages as domain forms, and accounts and
//! times as the API shows them.

use crate::domain::{Account, RegistrationForm};
use crate::proto::account::v1 as pb;
use crate::service::ProfileImages;

pub(super) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

impl pb::ConfirmRegistrationRequest {
    /// A confirmation with the token of a link.
    pub fn with_token(token: impl Into<String>) -> Self {
        pb::ConfirmRegistrationRequest {
            proof: Some(pb::confirm_registration_request::Proof::Token(token.into())),
        }
    }
}

/// An account as the API shows it; `default_locale` stands in for an
/// account that never chose one, and `images` says where its image is served.
fn to_proto(a: Account, default_locale: &str, images: Option<&ProfileImages>) -> pb::Account {
    let ts = timestamp;
    let locale = if a.locale.is_empty() {
        default_locale.to_owned()
    } else {
        a.locale
    };
    let (image_url, thumbnail_url) = match (&a.image, images) {
        (Some(image), Some(images)) => (images.url(&image.large), images.url(&image.thumbnail)),
        _ => (String::new(), String::new()),
    };
    pb::Account {
        id: a.id.to_string(),
        email: a.email,
        username: a.username,
        first_name: a.first_name,
        last_name: a.last_name,
        phone_number: a.phone_number,
        address: a.address,
        verified: a.verified,
        term_and_condition: a.term_and_condition,
        created_from: a.created_from,
        created_at: Some(ts(a.created_at)),
        updated_at: Some(ts(a.updated_at)),
        locale,
        totp_enabled: a.totp_enabled,
        image_url,
        thumbnail_url,
    }
}

impl From<pb::RegisterRequest> for RegistrationForm {
    fn from(r: pb::RegisterRequest) -> Self {
        RegistrationForm {
            email: r.email,
            username: r.username,
            password: r.password,
            confirm_password: r.confirm_password,
            term_and_condition: r.term_and_condition,
            address: r.address,
            first_name: r.first_name,
            last_name: r.last_name,
            phone_number: r.phone_number,
            created_from: r.created_from,
            locale: r.locale,
        }
    }
}

impl super::AccountGrpc {
    /// An account as this server shows it.
    pub(super) fn account_to_proto(&self, a: Account) -> pb::Account {
        to_proto(
            a,
            self.accounts.default_locale(),
            self.accounts.profile_images().map(|i| &**i),
        )
    }
}
