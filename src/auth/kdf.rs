//! PBKDF2-HMAC-SHA256, as Django's default hasher computes it.
//!
//! ring's implementation is one non-generic, assembly-backed function: fast
//! in every build profile, where the generic RustCrypto one is instantiated
//! in this crate and runs unoptimised in debug builds.

use std::num::NonZeroU32;

/// Derives `out.len()` bytes of PBKDF2-HMAC-SHA256.
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password,
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_7914_test_vector() {
        // RFC 7914 section 11: P = "passwd", S = "salt", c = 1, dkLen = 64.
        let mut out = [0u8; 64];
        pbkdf2_sha256(b"passwd", b"salt", NonZeroU32::MIN, &mut out);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
    }
}
