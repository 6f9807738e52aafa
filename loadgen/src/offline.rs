//! Access tokens verified as a calling service verifies them: offline,
//! against the JWKS document the sidecar publishes, with the `jsonwebtoken`
//! crate's JWK support, and how many one core verifies per second.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::print_result;
use crate::sessions::read_lines;

/// A calling service's verifier: the JWKS read once, a key per `kid`.
pub struct OfflineVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl OfflineVerifier {
    /// From a JWKS document (`{"keys":[…]}`), for tokens of `issuer` and
    /// `audience`.
    pub fn from_jwks(jwks: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let set: JwkSet = serde_json::from_str(jwks).context("not a JWKS document")?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone().context("a key has no kid")?;
            let key = DecodingKey::from_jwk(jwk).with_context(|| format!("key {kid}"))?;
            keys.insert(kid, key);
        }
        anyhow::ensure!(!keys.is_empty(), "the JWKS holds no keys");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Ok(OfflineVerifier { keys, validation })
    }

    /// The claims of a token one of the keys signed, for this issuer and
    /// audience, unexpired; `None` for any other.
    pub fn verify(&self, token: &str) -> Option<Value> {
        let kid = decode_header(token).ok()?.kid?;
        let key = self.keys.get(&kid)?;
        decode::<Value>(token, key, &self.validation)
            .ok()
            .map(|t| t.claims)
    }
}

/// Verifies the first token of `tokens` against the JWKS in `jwks` again
/// and again on this one thread for `duration`, and prints the rate: what
/// one core of a calling service verifies per second.
pub fn jwks_verify(
    jwks: &str,
    tokens: &str,
    (issuer, audience): (&str, &str),
    duration: f64,
    json: bool,
) -> anyhow::Result<()> {
    let document = std::fs::read_to_string(jwks).with_context(|| format!("cannot read {jwks}"))?;
    let verifier = OfflineVerifier::from_jwks(&document, issuer, audience)?;
    let token = &read_lines(tokens, "access tokens")?[0];
    anyhow::ensure!(
        verifier.verify(token).is_some(),
        "the token does not verify against the JWKS"
    );
    let deadline = Duration::from_secs_f64(duration);
    let started = Instant::now();
    let mut verified = 0u64;
    // The clock is read once per batch, so that reading it costs the
    // measurement nothing worth counting.
    while started.elapsed() < deadline {
        for _ in 0..64 {
            anyhow::ensure!(
                black_box(verifier.verify(black_box(token))).is_some(),
                "a verification failed"
            );
            verified += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let per_second = verified as f64 / elapsed;
    let keys = verifier.keys.len();
    let value = serde_json::json!({
        "scenario": "jwks-verify",
        "keys": keys,
        "verifications": verified,
        "duration_s": elapsed,
        "per_second": per_second,
        "microseconds": 1e6 / per_second,
    });
    print_result(json, &value, || {
        format!(
            "jwks-verify: {verified} tokens verified against {keys} key(s) on one thread in {elapsed:.2} s = {per_second:.0}/s ({:.1} µs each)",
            1e6 / per_second
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests;
