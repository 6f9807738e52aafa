use super::*;
use account_service::auth::{AccessTokens, Keyring, SigningKeys};

fn access_tokens(secret: &[u8], previous: Option<&[u8]>) -> AccessTokens {
    AccessTokens::new(
        SigningKeys::derive(&Keyring::new(secret, previous)),
        "https://bench.example".into(),
        "ecoms".into(),
        Duration::from_secs(300),
    )
}

fn token(tokens: &AccessTokens) -> (String, uuid::Uuid) {
    let (account, session, now) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        chrono::Utc::now(),
    );
    let token = tokens.issue(account, session, now, now).unwrap().token;
    (token, session)
}

#[test]
fn a_token_verifies_against_the_jwks_and_gives_its_claims() {
    let tokens = access_tokens(b"current-key", Some(b"previous-key"));
    let verifier =
        OfflineVerifier::from_jwks(tokens.jwks_json(), "https://bench.example", "ecoms").unwrap();
    assert_eq!(verifier.keys.len(), 2);
    let (token, session) = token(&tokens);
    let claims = verifier.verify(&token).unwrap();
    assert_eq!(claims["sid"], session.to_string());
}

#[test]
fn a_token_of_another_key_issuer_or_audience_does_not_verify() {
    let tokens = access_tokens(b"current-key", None);
    let (token, _) = token(&tokens);
    let jwks = tokens.jwks_json();
    let other_key = access_tokens(b"another-key", None);
    let verifier =
        OfflineVerifier::from_jwks(other_key.jwks_json(), "https://bench.example", "ecoms")
            .unwrap();
    assert!(verifier.verify(&token).is_none());
    for (issuer, audience) in [
        ("https://other.example", "ecoms"),
        ("https://bench.example", "other"),
    ] {
        let verifier = OfflineVerifier::from_jwks(jwks, issuer, audience).unwrap();
        assert!(verifier.verify(&token).is_none(), "{issuer} {audience}");
    }
    let verifier = OfflineVerifier::from_jwks(jwks, "https://bench.example", "ecoms").unwrap();
    assert!(verifier.verify("not.a.token").is_none());
}

#[test]
fn a_document_that_is_no_jwks_or_holds_no_usable_key_is_refused() {
    for document in [
        "",
        "{}",
        r#"{"keys":[]}"#,
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
    ] {
        assert!(
            OfflineVerifier::from_jwks(document, "https://bench.example", "ecoms").is_err(),
            "{document:?}"
        );
    }
}
