use super::*;

fn temp_file(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "account-loadgen-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn access_tokens(issuer: &str) -> AccessTokens {
    AccessTokens::new(
        SigningKeys::derive(&Keyring::new(b"loadgen-test-key", None)),
        issuer.into(),
        "ecoms".into(),
        MINTED_TTL,
    )
}

#[test]
fn a_session_line_is_an_account_id_and_a_session_id() {
    let (account, session) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    assert_eq!(
        parse_session_line(&format!("{account} {session}")).unwrap(),
        (account, session)
    );
    // psql -F '\t' separates with a tab.
    assert_eq!(
        parse_session_line(&format!("{account}\t{session}")).unwrap(),
        (account, session)
    );
}

#[test]
fn a_session_line_with_a_field_missing_extra_or_malformed_is_refused() {
    let id = uuid::Uuid::new_v4();
    for line in [
        String::new(),
        id.to_string(),
        format!("{id} {id} {id}"),
        format!("{id} not-a-uuid"),
        format!("not-a-uuid {id}"),
    ] {
        assert!(parse_session_line(&line).is_err(), "{line:?}");
    }
}

#[test]
fn the_session_of_a_minted_token_is_its_sid() {
    let (account, session) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let now = chrono::Utc::now();
    let token = access_tokens("https://bench.example")
        .issue(account, session, now, now)
        .unwrap()
        .token;
    assert_eq!(session_of(&token).unwrap(), session.to_string());
}

#[test]
fn a_string_that_is_no_jwt_has_no_session() {
    for token in ["", "not.a.token", "a.b", "acr_abcdef"] {
        assert!(session_of(token).is_err(), "{token:?}");
    }
}

#[test]
fn lines_are_trimmed_blank_ones_skipped_and_an_empty_file_refused() {
    let path = temp_file("lines", "  one \n\n two\n   \n");
    assert_eq!(read_lines(&path, "lines").unwrap(), ["one", "two"]);
    let empty = temp_file("empty", "\n  \n");
    assert!(read_lines(&empty, "lines").is_err());
    for p in [path, empty] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn the_verify_body_frames_the_first_token_of_the_file() {
    let path = temp_file("tokens", "first-token\nsecond-token\n");
    let body = verify_body(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(body[0], 0, "uncompressed");
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    assert_eq!(len + 5, body.len());
    let request = VerifyAccessTokenRequest::decode(&body[5..]).unwrap();
    assert_eq!(request.access_token, "first-token");
}

fn refresh_answer(refresh_token: &str) -> Bytes {
    use account_service::proto::account::v1::Tokens;
    RefreshSessionResponse {
        session: None,
        tokens: Some(Tokens {
            refresh_token: refresh_token.into(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
    .into()
}

#[test]
fn a_refresh_answer_gives_its_new_token() {
    assert_eq!(
        successor(refresh_answer("acr_new"), "acr_old").as_deref(),
        Some("acr_new")
    );
}

#[test]
fn a_refresh_answer_without_a_new_token_gives_none() {
    assert_eq!(successor(refresh_answer(""), "acr_old"), None);
    assert_eq!(successor(refresh_answer("acr_old"), "acr_old"), None);
    let no_tokens = RefreshSessionResponse::default().encode_to_vec().into();
    assert_eq!(successor(no_tokens, "acr_old"), None);
    assert_eq!(successor(Bytes::from_static(b"\xff\xff"), "acr_old"), None);
}
