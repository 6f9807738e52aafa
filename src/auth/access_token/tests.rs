use chrono::TimeZone;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::EncodingKey;
use serde_json::{json, Value};

use super::*;

const TTL: Duration = Duration::from_secs(300);
const ISSUER: &str = "https://accounts.example.com/";
const AUDIENCE: &str = "ecoms";

/// RFC 8037 appendix A.1: an Ed25519 key pair, and (A.3) its thumbprint.
const RFC_8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC_8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC_8037_KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
}

fn tokens_with(keys: SigningKeys) -> AccessTokens {
    AccessTokens::new(keys, ISSUER.to_owned(), AUDIENCE.to_owned(), TTL)
}

fn tokens(current: &[u8], previous: Option<&[u8]>) -> AccessTokens {
    tokens_with(SigningKeys::derive(&Keyring::new(current, previous)))
}

fn issue(tokens: &AccessTokens) -> (Uuid, Uuid, String) {
    let (account, session) = (Uuid::new_v4(), Uuid::new_v4());
    let auth_time = now() - chrono::Duration::minutes(5);
    let issued = tokens.issue(account, session, auth_time, now()).unwrap();
    (account, session, issued.token)
}

/// A token with any header and claims, signed with the signing key of `tokens`.
fn forge(tokens: &AccessTokens, header: &Header, claims: &Value) -> String {
    // jsonwebtoken's own encoder, so these tokens do not depend on ours.
    let key = EncodingKey::from_ed_der(&tokens.keys.signing_der);
    jsonwebtoken::encode(header, claims, &key).unwrap()
}

fn good_header(tokens: &AccessTokens) -> Header {
    Header {
        typ: Some("at+jwt".to_owned()),
        kid: Some(tokens.keys.signing_kid().to_owned()),
        ..Header::new(Algorithm::EdDSA)
    }
}

fn good_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": Uuid::new_v4().to_string(),
        "sid": Uuid::new_v4().to_string(), "iat": now().timestamp(),
        "exp": now().timestamp() + 300, "jti": "j",
    })
}

fn with(claims: &Value, name: &str, value: &str) -> Value {
    let mut claims = claims.clone();
    claims[name] = json!(value);
    claims
}

fn part(token: &str, index: usize) -> Value {
    let text = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
}

#[test]
fn a_token_round_trips_with_every_rfc_9068_claim() {
    let tokens = tokens(b"key", None);
    let (account, session) = (Uuid::new_v4(), Uuid::new_v4());
    let auth_time = now() - chrono::Duration::minutes(5);
    let issued = tokens.issue(account, session, auth_time, now()).unwrap();
    assert_eq!(issued.expires_at, now() + chrono::Duration::seconds(300));

    let header = part(&issued.token, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], tokens.keys.signing_kid());
    let claims = part(&issued.token, 1);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["sub"], account.to_string());
    assert_eq!(claims["sid"], session.to_string());
    assert_eq!(claims["iat"], now().timestamp());
    assert_eq!(claims["exp"], now().timestamp() + 300);
    assert_eq!(claims["auth_time"], auth_time.timestamp());
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    assert_ne!(part(&issue(&tokens).2, 1)["jti"], claims["jti"]);

    let verified = tokens.verify(&issued.token, now()).unwrap();
    assert_eq!(
        verified,
        AccessClaims {
            account_id: account,
            session_id: session,
            expires_at: issued.expires_at,
        }
    );
    assert_eq!(tokens.ttl(), TTL);
}

#[test]
fn a_token_expires_at_its_exp_with_no_leeway() {
    let tokens = tokens(b"key", None);
    let (_, _, token) = issue(&tokens);
    let second = chrono::Duration::seconds(1);
    let exp = now() + chrono::Duration::seconds(300);
    assert!(tokens.verify(&token, exp - second).is_ok());
    assert_eq!(tokens.verify(&token, exp), Err(AccessTokenError::Expired));
    assert_eq!(
        tokens.verify(&token, exp + chrono::Duration::days(1)),
        Err(AccessTokenError::Expired)
    );
}

#[test]
fn another_audience_or_issuer_is_refused() {
    let keys = SigningKeys::derive(&Keyring::new(b"key", None));
    let ours = tokens_with(keys.clone());
    let (_, _, token) = issue(&ours);
    let elsewhere = [
        AccessTokens::new(keys.clone(), ISSUER.to_owned(), "admin".to_owned(), TTL),
        AccessTokens::new(keys, "https://other/".to_owned(), AUDIENCE.to_owned(), TTL),
    ];
    for other in elsewhere {
        assert_eq!(other.verify(&token, now()), Err(AccessTokenError::Invalid));
    }
    // Missing claims are refused too.
    for claim in ["iss", "aud", "sub", "sid", "exp"] {
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().remove(claim);
        let forged = forge(&ours, &good_header(&ours), &claims);
        assert_eq!(
            ours.verify(&forged, now()),
            Err(AccessTokenError::Invalid),
            "{claim}"
        );
    }
    assert!(ours
        .verify(&forge(&ours, &good_header(&ours), &good_claims()), now())
        .is_ok());
}

#[test]
fn only_eddsa_at_jwt_tokens_under_a_known_kid_verify() {
    let tokens = tokens(b"key", None);
    let claims = good_claims();
    let kid = tokens.keys.signing_kid().to_owned();
    // HS256 keyed with the public key: the classic algorithm confusion.
    let public = URL_SAFE_NO_PAD.decode(&tokens.keys.public[0].x).unwrap();
    let hs256 = jsonwebtoken::encode(
        &Header {
            kid: Some(kid.clone()),
            typ: Some("at+jwt".to_owned()),
            ..Header::new(Algorithm::HS256)
        },
        &claims,
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    let signed = forge(&tokens, &good_header(&tokens), &claims);
    let (head, rest) = signed.split_once('.').unwrap();
    let payload = rest.split('.').next().unwrap();
    let none_head =
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
    let refused = [
        hs256,
        format!("{none_head}.{payload}."),
        forge(
            &tokens,
            &Header {
                typ: Some("JWT".to_owned()),
                ..good_header(&tokens)
            },
            &claims,
        ),
        forge(
            &tokens,
            &Header {
                typ: None,
                ..good_header(&tokens)
            },
            &claims,
        ),
        forge(
            &tokens,
            &Header {
                kid: None,
                ..good_header(&tokens)
            },
            &claims,
        ),
        forge(
            &tokens,
            &Header {
                kid: Some("unknown".to_owned()),
                ..good_header(&tokens)
            },
            &claims,
        ),
        // Signed by a key the verifier does not know, under a known kid.
        forge(
            &self::tokens(b"other", None),
            &good_header(&tokens),
            &claims,
        ),
        forge(
            &tokens,
            &good_header(&tokens),
            &with(&claims, "sub", "not a uuid"),
        ),
        forge(
            &tokens,
            &good_header(&tokens),
            &with(&claims, "sid", "not a uuid"),
        ),
        format!(
            "{head}.{}.{}",
            URL_SAFE_NO_PAD.encode("{}"),
            signed.rsplit('.').next().unwrap()
        ),
        String::new(),
        "a.b.c".to_owned(),
        "x".repeat(5000),
    ];
    for (i, token) in refused.iter().enumerate() {
        assert_eq!(
            tokens.verify(token, now()),
            Err(AccessTokenError::Invalid),
            "case {i}"
        );
    }
    // The full media type is the same type.
    let full = Header {
        typ: Some("application/AT+JWT".to_owned()),
        ..good_header(&tokens)
    };
    assert!(tokens
        .verify(&forge(&tokens, &full, &claims), now())
        .is_ok());
}

#[test]
fn tokens_signed_before_a_rotation_still_verify() {
    let before = tokens(b"old", None);
    let (account, _, old_token) = issue(&before);
    let after = tokens(b"new", Some(b"old"));
    assert_eq!(after.verify(&old_token, now()).unwrap().account_id, account);
    // The new key signs; the old one only verifies.
    let (_, _, new_token) = issue(&after);
    assert_ne!(part(&new_token, 0)["kid"], part(&old_token, 0)["kid"]);
    assert_eq!(
        part(&new_token, 0)["kid"],
        tokens(b"new", None).keys.signing_kid()
    );
    assert!(before.verify(&new_token, now()).is_err());
    // Once the previous key is dropped, so are its tokens.
    assert_eq!(
        tokens(b"new", None).verify(&old_token, now()),
        Err(AccessTokenError::Invalid)
    );
}

#[test]
fn the_jwks_lists_every_verifying_key_for_any_jwt_library() {
    let rotated = tokens(b"new", Some(b"old"));
    let document: Value = serde_json::from_str(rotated.jwks_json()).unwrap();
    let keys = document["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let kids: Vec<&str> = rotated.keys.key_ids().collect();
    for (key, kid) in keys.iter().zip(&kids) {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["kid"], *kid);
        assert_eq!(thumbprint(key["x"].as_str().unwrap()), *kid);
        assert!(key.get("d").is_none());
    }
    assert_eq!(kids[1], tokens(b"old", None).keys.signing_kid());
    // Verified as a calling service would: the key picked from the set by kid.
    let set: JwkSet = serde_json::from_str(rotated.jwks_json()).unwrap();
    for signer in [tokens(b"old", None), rotated.clone()] {
        let (account, _, token) = issue(&signer);
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        let key = DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], account.to_string());
    }
    // The same secret twice is one key.
    let doubled = tokens(b"same", Some(b"same"));
    assert_eq!(doubled.keys.key_ids().count(), 1);
}

#[test]
fn debug_shows_no_key_material() {
    let keyring = Keyring::new(b"hunter2", Some(b"swordfish"));
    let seed = keyring.derived_keys(SEED_LABEL);
    let private = ed25519_dalek::SigningKey::from_bytes(&seed[0]);
    let der = private.to_pkcs8_der().unwrap();
    let tokens = tokens_with(SigningKeys::derive(&keyring));
    let shown = format!("{:?} {tokens:?}", tokens.keys);
    for secret in [
        URL_SAFE_NO_PAD.encode(*seed[0]),
        URL_SAFE_NO_PAD.encode(der.as_bytes()),
        format!("{:?}", &seed[0][..4]),
        format!("{:?}", &der.as_bytes()[..4]),
        "hunter2".to_owned(),
    ] {
        assert!(!shown.contains(&secret), "{shown}");
    }
    assert!(shown.contains(tokens.keys.signing_kid()), "{shown}");
}

#[test]
fn the_thumbprint_is_rfc_7638s() {
    assert_eq!(thumbprint(RFC_8037_X), RFC_8037_KID);
}

#[test]
fn a_pem_key_signs_alone_and_is_published() {
    let seed: [u8; 32] = URL_SAFE_NO_PAD
        .decode(RFC_8037_D)
        .unwrap()
        .try_into()
        .unwrap();
    let pem = ed25519_dalek::SigningKey::from_bytes(&seed)
        .to_pkcs8_pem(Default::default())
        .unwrap();
    let keys = SigningKeys::from_pem(&pem).unwrap();
    assert_eq!(keys.key_ids().collect::<Vec<_>>(), [RFC_8037_KID]);
    let tokens = tokens_with(keys);
    let (account, _, token) = issue(&tokens);
    assert_eq!(part(&token, 0)["kid"], RFC_8037_KID);
    assert_eq!(tokens.verify(&token, now()).unwrap().account_id, account);
    let document: Value = serde_json::from_str(tokens.jwks_json()).unwrap();
    assert_eq!(document["keys"].as_array().unwrap().len(), 1);
    assert_eq!(document["keys"][0]["x"], RFC_8037_X);
    // Derived keys do not verify its tokens.
    assert!(self::tokens(b"key", None).verify(&token, now()).is_err());
}

#[test]
fn a_pem_that_is_no_ed25519_key_is_refused_without_showing_it() {
    let garbage =
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n";
    for pem in ["", "hunter2", garbage] {
        let err = SigningKeys::from_pem(pem).unwrap_err();
        assert_eq!(err, SigningKeyError::Malformed);
        assert!(!err.to_string().contains("hunter2"));
    }
}

#[test]
fn tokens_are_signed_byte_for_byte_as_jsonwebtoken_signs_them() {
    // Ed25519 signatures are deterministic, so the same header and claims
    // under the same key give the same token from either encoder.
    for keys in [
        SigningKeys::derive(&Keyring::new(b"hunter2", Some(b"swordfish"))),
        SigningKeys::derive(&Keyring::new(b"another key", None)),
    ] {
        let tokens = tokens_with(keys);
        let header = good_header(&tokens);
        let claims = json!({"iss": ISSUER, "sub": "a", "aud": AUDIENCE, "exp": 1, "amr": ["pwd"], "x": "\u{0}é"});
        assert_eq!(
            tokens.keys.sign(&header, &claims).unwrap(),
            forge(&tokens, &header, &claims)
        );
    }
}
