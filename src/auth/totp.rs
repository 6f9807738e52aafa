//! Authenticator-app codes (RFC 6238 TOTP: HMAC-SHA1, 6 digits, 30-second
//! steps) through `totp-rs`: the secret, its otpauth URI and QR code, and
//! which time step a typed code belongs to.

use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use subtle::ConstantTimeEq;
use totp_rs::{Rfc6238, TOTP};

use super::ConfirmationCodes;

/// 160 bits, the length RFC 4226 recommends and authenticator apps expect.
const SECRET_BYTES: usize = 20;
const DIGITS: usize = 6;
const STEP_SECS: i64 = 30;
/// Steps of clock skew accepted either way: a phone a little fast or slow,
/// or a code typed just as it changed.
const SKEW_STEPS: i64 = 1;

/// Everything but RFC 3986's unreserved characters is escaped, so neither a
/// space in the site's name nor an address's '@', '+' or ':' can change how
/// an app reads the label or the query.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A TOTP secret. Debug shows nothing of it, and it is wiped from memory
/// when dropped.
#[derive(Clone)]
pub struct TotpSecret {
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A new secret: 160 bits from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        TotpSecret { bytes }
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpSecret {
            bytes: Zeroizing::new(bytes),
        }
    }

    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// RFC 4648 base32 without padding, as a person types it into an app.
    pub fn base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.bytes)
    }

    /// The Key URI an authenticator app reads from the QR code:
    /// `otpauth://totp/<site>:<email>?secret=…&issuer=<site>&algorithm=SHA1&digits=6&period=30`,
    /// the site and the address percent-encoded.
    pub fn otpauth_uri(&self, site_name: &str, email: &str) -> String {
        let site = utf8_percent_encode(site_name, COMPONENT);
        let email = utf8_percent_encode(email, COMPONENT);
        format!(
            "otpauth://totp/{site}:{email}?secret={}&issuer={site}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            self.base32()
        )
    }

    /// The time step (unix seconds / 30) whose code is `code`, looking at
    /// `now`'s step and one either side; `None` when no step's code is, or
    /// when `code` is not six ASCII digits (white space around them
    /// ignored). Every step is computed and compared in constant time, so
    /// the answer's timing tells nothing of which step matched. Should two
    /// steps share a code, the latest is answered: a caller that refuses
    /// steps at or before the last one used then refuses more, never less.
    pub fn matching_step(&self, code: &str, now: DateTime<Utc>) -> Option<i64> {
        // The same six digits a confirmation code is typed as.
        let code = ConfirmationCodes::parse(code)?;
        let current = now.timestamp().div_euclid(STEP_SECS);
        let mut found = None;
        for step in current.saturating_sub(SKEW_STEPS)..=current.saturating_add(SKEW_STEPS) {
            let Some(expected) = self.code_at(DIGITS, step) else {
                continue;
            };
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }

    /// The `digits`-digit code of time step `step`; `None` for a step
    /// before 1970, or a secret shorter than RFC 4226's 128 bits (which no
    /// secret made here is).
    fn code_at(&self, digits: usize, step: i64) -> Option<String> {
        let time = u64::try_from(step.checked_mul(STEP_SECS)?).ok()?;
        // `with_defaults` is SHA1, 30 s, and keeps one signature whatever
        // features of totp-rs another crate of the build turns on.
        let mut rfc = Rfc6238::with_defaults(self.bytes.to_vec()).ok()?;
        rfc.digits(digits).ok()?;
        let totp = TOTP::try_from(rfc).ok()?;
        Some(totp.generate(time))
    }
}

/// `text` as a QR code in SVG, dark on light with a quiet zone, at medium
/// error correction: a URI of this size stays small enough to scan from a
/// screen and survives a smudge.
pub fn qr_code_svg(text: &str) -> Result<String, anyhow::Error> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests;
