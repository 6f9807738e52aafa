//! Access tokens on one core: what signing one costs the service, and what
//! verifying one costs a calling service that checks it offline against the
//! published JWKS with the `jsonwebtoken` crate, as the README shows.
//! `cargo bench --bench access_tokens` prints each as time and tokens/s.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use account_service::auth::{AccessTokens, Keyring, SigningKeys};
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

const KEY: &[u8] = b"benchmark-secret-key-0123456789abcdef";
const ISSUER: &str = "https://shop.example.com";
const AUDIENCE: &str = "ecoms";

/// What a calling service reads from a verified token.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    sid: String,
}

/// A calling service's verifier: the JWKS fetched once, a key per `kid`.
struct OfflineVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl OfflineVerifier {
    fn from_jwks(jwks: &str) -> Self {
        let set: JwkSet = serde_json::from_str(jwks).expect("a JWKS document");
        let keys = set
            .keys
            .iter()
            .map(|jwk| {
                let kid = jwk.common.key_id.clone().expect("a kid");
                (kid, DecodingKey::from_jwk(jwk).expect("an Ed25519 key"))
            })
            .collect();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        OfflineVerifier { keys, validation }
    }

    fn verify(&self, token: &str) -> Option<Claims> {
        let kid = decode_header(token).ok()?.kid?;
        let key = self.keys.get(&kid)?;
        decode::<Claims>(token, key, &self.validation)
            .ok()
            .map(|t| t.claims)
    }
}

fn access_tokens(c: &mut Criterion) {
    let tokens = AccessTokens::new(
        SigningKeys::derive(&Keyring::new(KEY, Some(b"the-previous-secret-key"))),
        ISSUER.into(),
        AUDIENCE.into(),
        Duration::from_secs(300),
    );
    let (account, session, now) = (Uuid::now_v7(), Uuid::now_v7(), Utc::now());
    let token = tokens
        .issue(account, session, now, now)
        .expect("a token")
        .token;
    let verifier = OfflineVerifier::from_jwks(tokens.jwks_json());
    let claims = verifier.verify(&token).expect("the token verifies");
    assert_eq!(
        (claims.sub, claims.sid),
        (account.to_string(), session.to_string())
    );

    let mut group = c.benchmark_group("access_token");
    group.throughput(Throughput::Elements(1));
    group.bench_function("issue", |b| {
        b.iter(|| tokens.issue(black_box(account), session, now, now))
    });
    group.bench_function("verify_offline_jwks", |b| {
        b.iter(|| verifier.verify(black_box(&token)))
    });
    group.bench_function("verify_in_service", |b| {
        b.iter(|| tokens.verify(black_box(&token), now))
    });
    group.finish();
}

criterion_group!(benches, access_tokens);
criterion_main!(benches);
