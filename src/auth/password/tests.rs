//! Unit tests of hashing, checks, upgrades and the cost bounds.

use super::*;
use argon2::password_hash::{PasswordHash as Phc, PasswordVerifier};

fn verify(hash: &PasswordHash, password: &str) -> bool {
    let parsed = Phc::new(hash.expose()).unwrap();
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[tokio::test]
async fn produces_a_verifiable_argon2id_phc_string() {
    let hasher = PasswordHasher::new(1, 4);
    let hash = hasher
        .hash(Password::parse("secret123").unwrap())
        .await
        .unwrap();
    assert!(hash.expose().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(verify(&hash, "secret123"));
    assert!(!verify(&hash, "secret124"));
    // The reused work area gives the same results as a fresh one.
    let again = hasher
        .hash(Password::parse("other-pass1").unwrap())
        .await
        .unwrap();
    assert!(verify(&again, "other-pass1"));
    assert!(verify(&hash_blocking("pässwörd1").unwrap(), "pässwörd1"));
}

#[tokio::test]
async fn refuses_at_once_when_the_queue_is_full() {
    let hasher = PasswordHasher::new(1, 1);
    let password = Password::parse("secret123").unwrap();
    let calls = (0..8).map(|_| hasher.hash(password.clone()));
    let results = futures::future::join_all(calls).await;
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(HashError::Busy)))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(busy >= 1, "a full queue must refuse");
    assert!(ok >= 1);
    assert_eq!(busy + ok, 8);
    assert_eq!(hasher.queued(), 0);
}

fn check(stored: &str, password: &str) -> Verified {
    let mut blocks = vec![Block::default(); MEMORY_KIB as usize];
    verify_with_memory(password, stored, &mut blocks).unwrap()
}

#[test]
fn current_hashes_match_without_an_upgrade() {
    let hash = hash_blocking("secret123").unwrap();
    let ok = check(hash.expose(), "secret123");
    assert!(ok.matched && ok.upgrade.is_none());
    let wrong = check(hash.expose(), "secret124");
    assert!(!wrong.matched && wrong.upgrade.is_none());
}

#[test]
fn django_pbkdf2_hashes_match_and_are_upgraded() {
    // hashlib.pbkdf2_hmac('sha256', password, salt, iterations), base64:
    // Django's PBKDF2PasswordHasher.
    let cases = [
        (
            "secret123",
            "pbkdf2_sha256$1000$seasalt$Uxc9q1exjd73R/bOV1+XCRfBdA80RZQWCPtidXIAyIE=",
        ),
        (
            "lètmein-9",
            "pbkdf2_sha256$260000$Qm9vb2s$IIYzJJ4d0dMCWDGNcJVkEdQDVkxCrRNVCtrtlXPm9Ms=",
        ),
    ];
    for (password, stored) in cases {
        let ok = check(stored, password);
        assert!(ok.matched, "{stored}");
        let upgraded = ok.upgrade.expect("upgraded to argon2id");
        assert!(upgraded
            .expose()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(check(upgraded.expose(), password).matched);
        let wrong = check(stored, "not-the-password1");
        assert!(!wrong.matched && wrong.upgrade.is_none());
    }
}

#[test]
fn other_argon2_parameters_and_djangos_prefix_are_upgraded() {
    let weak = Params::new(1024, 1, 1, None).unwrap();
    let salt = SaltString::generate(&mut OsRng);
    let phc = argon2::password_hash::PasswordHasher::hash_password(
        &Argon2::new(Algorithm::Argon2id, Version::V0x13, weak.clone()),
        b"secret123",
        &salt,
    )
    .unwrap()
    .to_string();
    let ok = check(&phc, "secret123");
    assert!(ok.matched && ok.upgrade.is_some());
    let django = format!("argon2{phc}");
    let ok = check(&django, "secret123");
    assert!(ok.matched && ok.upgrade.is_some());
    assert!(!check(&django, "secret124").matched);
    let argon2i = argon2::password_hash::PasswordHasher::hash_password(
        &Argon2::new(Algorithm::Argon2i, Version::V0x13, weak),
        b"secret123",
        &salt,
    )
    .unwrap()
    .to_string();
    assert!(check(&argon2i, "secret123").upgrade.is_some());
}

#[test]
fn malformed_or_unknown_hashes_never_match() {
    for stored in [
        "",
        "plain",
        "md5$abc$def",
        "pbkdf2_sha256$",
        "pbkdf2_sha256$0$salt$AAAA",
        "pbkdf2_sha256$99999999999$salt$AAAA",
        "pbkdf2_sha256$1000$salt$not base64!",
        "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$garbage",
        "argon2$",
    ] {
        let v = check(stored, "secret123");
        assert!(!v.matched && v.upgrade.is_none(), "{stored}");
    }
}

#[tokio::test]
async fn unknown_accounts_are_checked_against_a_dummy() {
    let hasher = PasswordHasher::new(1, 4);
    let v = hasher
        .verify(SecretString::from("secret123".to_owned()), None)
        .await
        .unwrap();
    assert!(!v.matched && v.upgrade.is_none());
    assert!(hasher
        .dummy
        .expose_secret()
        .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
}

fn django_pbkdf2(password: &str, iterations: u32) -> String {
    use base64::Engine;
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), b"seasalt", iterations, &mut key);
    let key = base64::engine::general_purpose::STANDARD.encode(key);
    format!("pbkdf2_sha256${iterations}$seasalt${key}")
}

fn argon2_costs(m: u32, t: u32, p: u32) -> String {
    format!("$argon2id$v=19$m={m},t={t},p={p}$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
}

#[test]
fn cost_bounds_hold_at_their_edges() {
    for (iterations, within) in [
        (999_u64, false),
        (1_000, true),
        (10_000_000, true),
        (10_000_001, false),
        (4_000_000_000, false),
    ] {
        let stored = format!("pbkdf2_sha256${iterations}$salt$aGFzaA==");
        assert_eq!(hash_cost_within_bounds(&stored), within, "{stored}");
    }
    assert!(!hash_cost_within_bounds(
        "pbkdf2_sha256$99999999999$salt$aGFzaA=="
    ));
    for ((m, t, p), within) in [
        ((19_456, 1, 1), true),
        ((19_456, 10, 1), true),
        ((19_456, 11, 1), false),
        ((8, 2_000_000_000, 1), false),
        ((MAX_VERIFY_MEMORY_KIB, 2, 8), true),
        ((MAX_VERIFY_MEMORY_KIB + 1, 2, 1), false),
        ((102_400, 2, 9), false),
        ((19_456, 0, 1), false),
    ] {
        let phc = argon2_costs(m, t, p);
        assert_eq!(hash_cost_within_bounds(&phc), within, "{phc}");
        let django = format!("argon2{phc}");
        assert_eq!(hash_cost_within_bounds(&django), within, "{django}");
    }
    assert!(!hash_cost_within_bounds("argon2$garbage"));
    assert!(!hash_cost_within_bounds(""));
}

#[test]
fn a_hash_outside_the_bounds_never_matches_even_when_right() {
    let under = django_pbkdf2("secret123", 999);
    assert!(!check(&under, "secret123").matched);
    assert!(check(&django_pbkdf2("secret123", 1_000), "secret123").matched);
}

#[tokio::test]
async fn a_stalling_stored_hash_costs_what_a_wrong_password_does() {
    let hasher = PasswordHasher::new(1, 4);
    let stalling = format!("argon2{}", argon2_costs(8, 2_000_000_000, 1));
    let started = std::time::Instant::now();
    for _ in 0..2 {
        let v = hasher
            .verify(SecretString::from("secret123".to_owned()), Some(&stalling))
            .await
            .unwrap();
        assert!(!v.matched && v.upgrade.is_none());
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // Each was checked against the dummy: one computation apiece.
    assert_eq!(hasher.computed(), 2);
}

#[test]
fn django_hashes_are_checked_as_typed_then_trimmed() {
    let spaced = django_pbkdf2(" pass word1 ", 1_000);
    let ok = check(&spaced, " pass word1 ");
    assert!(ok.matched);
    // The upgrade is of the trimmed password: what later checks compare.
    let upgraded = ok.upgrade.expect("upgraded");
    assert!(check(upgraded.expose(), "pass word1").matched);
    assert!(check(upgraded.expose(), " pass word1 ").matched);
    assert!(!check(&spaced, "pass word1").matched);

    let plain = django_pbkdf2("pass word1", 1_000);
    assert!(check(&plain, "  pass word1\t").matched);
    let argon2 = format!("argon2{}", hash_blocking(" pass word1 ").unwrap().expose());
    assert!(check(&argon2, " pass word1 ").matched);

    // This service's own hashes compare the trimmed password only.
    let native = hash_blocking("pass word1").unwrap();
    assert!(check(native.expose(), " pass word1 ").matched);
    let native_spaced = hash_blocking(" pass word1 ").unwrap();
    assert!(!check(native_spaced.expose(), " pass word1 ").matched);
}
