use chrono::TimeZone;

use super::*;

/// RFC 6238 appendix B's SHA1 seed: "12345678901234567890".
fn rfc_secret() -> TotpSecret {
    TotpSecret::from_bytes(b"12345678901234567890".to_vec())
}

fn at(unix_secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix_secs, 0).unwrap()
}

#[test]
fn codes_are_rfc_6238s_test_vectors() {
    let secret = rfc_secret();
    // Appendix B, SHA1: time, then the 8-digit TOTP.
    let vectors = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];
    for (time, expected) in vectors {
        let step = time / STEP_SECS;
        assert_eq!(secret.code_at(8, step).as_deref(), Some(expected), "{time}");
        // Six digits are the same number modulo 10^6: its last six digits.
        let six = &expected[2..];
        assert_eq!(secret.code_at(DIGITS, step).as_deref(), Some(six), "{time}");
        assert_eq!(secret.matching_step(six, at(time)), Some(step), "{time}");
    }
}

#[test]
fn a_fresh_secret_answers_its_neighbouring_steps() {
    let secret = TotpSecret::generate();
    let now = at(1_700_000_015);
    let current = now.timestamp() / STEP_SECS;
    for offset in [-1, 0, 1] {
        let code = secret.code_at(DIGITS, current + offset).unwrap();
        // A code may, rarely, repeat in a later neighbouring step.
        assert!(
            secret
                .matching_step(&code, now)
                .is_some_and(|step| step >= current + offset),
            "{offset}"
        );
    }
}

#[test]
fn one_step_of_skew_either_way_is_accepted_and_two_are_not() {
    // The RFC seed's codes around 1111111109 differ step to step, so which
    // step matches is certain.
    let secret = rfc_secret();
    let step = 1_111_111_109 / STEP_SECS;
    let code = secret.code_at(DIGITS, step).unwrap();
    let codes: Vec<String> = (-3..=3)
        .map(|o| secret.code_at(DIGITS, step + o).unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == code).count(), 1);
    for (offset, expected) in [(-2, None), (-1, Some(step)), (1, Some(step)), (2, None)] {
        let now = at((step + offset) * STEP_SECS);
        assert_eq!(secret.matching_step(&code, now), expected, "{offset}");
    }
}

#[test]
fn only_six_ascii_digits_are_looked_at() {
    let secret = rfc_secret();
    let now = at(1_111_111_109);
    let code = secret.code_at(DIGITS, now.timestamp() / STEP_SECS).unwrap();
    assert!(secret.matching_step(&format!(" {code}\n"), now).is_some());
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let fullwidth: String = code
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap())
        .collect();
    for bad in [
        String::new(),
        code[..5].to_owned(),
        format!("{code}0"),
        format!("0{code}"),
        spaced,
        fullwidth,
        format!("{code}\0"),
        "abcdef".to_owned(),
        "-12345".to_owned(),
    ] {
        assert_eq!(secret.matching_step(&bad, now), None, "{bad:?}");
    }
}

#[test]
fn before_1970_and_short_secrets_match_nothing() {
    let secret = rfc_secret();
    assert_eq!(secret.code_at(DIGITS, -1), None);
    let code = secret.code_at(DIGITS, 0).unwrap();
    assert_eq!(secret.matching_step(&code, at(-31)), None);
    assert_eq!(secret.matching_step(&code, at(0)), Some(0));
    let short = TotpSecret::from_bytes(vec![7; 15]);
    for digits in ["000000", "123456"] {
        assert_eq!(short.matching_step(digits, at(1_700_000_000)), None);
    }
}

#[test]
fn generated_secrets_are_160_random_bits() {
    let (a, b) = (TotpSecret::generate(), TotpSecret::generate());
    assert_eq!(a.expose().len(), 20);
    assert_ne!(a.expose(), b.expose());
    assert_eq!(a.base32().len(), 32);
    assert_eq!(
        TotpSecret::from_bytes(a.expose().to_vec()).base32(),
        a.base32()
    );
}

#[test]
fn base32_is_rfc_4648_without_padding() {
    assert_eq!(
        TotpSecret::from_bytes(b"foobar".to_vec()).base32(),
        "MZXW6YTBOI"
    );
    assert_eq!(rfc_secret().base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}

#[test]
fn the_uri_escapes_the_site_and_the_address() {
    let uri = rfc_secret().otpauth_uri("Ecoms Shop", "ann+tag@example.com");
    assert_eq!(
        uri,
        "otpauth://totp/Ecoms%20Shop:ann%2Btag%40example.com\
         ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Ecoms%20Shop\
         &algorithm=SHA1&digits=6&period=30"
    );
    // A URL parser reads back what was meant, '+' included.
    let parsed = url::Url::parse(&uri).unwrap();
    assert_eq!(parsed.scheme(), "otpauth");
    assert_eq!(parsed.host_str(), Some("totp"));
    let label = percent_encoding::percent_decode_str(&parsed.path()[1..])
        .decode_utf8()
        .unwrap();
    assert_eq!(label, "Ecoms Shop:ann+tag@example.com");
    let query: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    assert!(query.contains(&("issuer".into(), "Ecoms Shop".into())));
    assert!(query.contains(&("secret".into(), rfc_secret().base32())));
    // A colon in the site's name cannot move the label's split.
    let colon = rfc_secret().otpauth_uri("Shop: EU", "a@b.example");
    assert!(
        colon.starts_with("otpauth://totp/Shop%3A%20EU:a%40b.example?"),
        "{colon}"
    );
}

#[test]
fn debug_shows_nothing_of_the_secret() {
    let secret = rfc_secret();
    let shown = format!("{secret:?}");
    assert_eq!(shown, "TotpSecret(..)");
    assert!(!shown.contains(&secret.base32()));
}

#[test]
fn the_qr_code_reads_back_as_the_uri() {
    let uri = TotpSecret::generate().otpauth_uri("Ecoms Shop", "ann+tag@example.com");
    let svg = qr_code_svg(&uri).unwrap();
    assert!(svg.contains("<svg") && svg.contains("#000000") && svg.contains("#ffffff"));
    assert!(!svg.contains("otpauth"));

    let tree = resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    let width = pixmap.width() as usize;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, pixmap.height() as usize, |x, y| {
            pixmap.pixels()[y * width + x].red()
        });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, uri);
}

#[test]
fn text_too_long_for_a_qr_code_is_an_error() {
    assert!(qr_code_svg(&"x".repeat(8000)).is_err());
}
