//! The names profile images are stored under, and the one parser that
//! decides whether a path names one (the /media route's guard).

use uuid::Uuid;

/// Every profile image's key starts with it.
pub const PROFILE_PREFIX: &str = "account/profile/";

/// The keys of an image's two sizes, 512 and 128 pixels a side:
/// `account/profile/<account>/<hash>-512.<ext>` and `…-128.<ext>`.
pub fn profile_keys(account_id: Uuid, content_hash: &str, extension: &str) -> (String, String) {
    let base = format!("{PROFILE_PREFIX}{}/{content_hash}", account_id.hyphenated());
    (
        format!("{base}-512.{extension}"),
        format!("{base}-128.{extension}"),
    )
}

/// A key that names a stored profile image, exactly as [`profile_keys`]
/// writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileKey {
    key: String,
    account_id: Uuid,
    /// Where the hash sits in `key`.
    hash: std::ops::Range<usize>,
    png: bool,
}

impl ProfileKey {
    /// `account/profile/<uuid>/<hash>-(512|128).(jpg|png)`, with the UUID in
    /// its canonical lowercase form and the hash 64 lowercase hex digits;
    /// nothing else. Whatever it accepts is safe to hand to a store as it
    /// is: no `.`, `..`, empty segment, escape or other character.
    pub fn parse(path: &str) -> Option<ProfileKey> {
        let rest = path.strip_prefix(PROFILE_PREFIX)?;
        let (account, file) = rest.split_once('/')?;
        // The canonical form only: one image, one name.
        let account_id = Uuid::try_parse(account).ok()?;
        if account_id.hyphenated().to_string() != account {
            return None;
        }
        let (hash, variant) = file.split_once('-')?;
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let png = match variant {
            "512.jpg" | "128.jpg" => false,
            "512.png" | "128.png" => true,
            _ => return None,
        };
        let start = PROFILE_PREFIX.len() + account.len() + 1;
        Some(ProfileKey {
            key: path.to_owned(),
            account_id,
            hash: start..start + hash.len(),
            png,
        })
    }

    /// The account the image belongs to.
    pub fn account_id(&self) -> Uuid {
        self.account_id
    }

    /// The lowercase hex SHA-256 of the large image, which names both sizes.
    pub fn hash(&self) -> &str {
        &self.key[self.hash.clone()]
    }

    /// `image/png` or `image/jpeg`, from the extension.
    pub fn content_type(&self) -> &'static str {
        if self.png {
            "image/png"
        } else {
            "image/jpeg"
        }
    }

    /// The key itself.
    pub fn as_str(&self) -> &str {
        &self.key
    }
}

impl std::fmt::Display for ProfileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "0190f3c4-7a2b-7cde-8f01-23456789abcd";
    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn good() -> String {
        format!("account/profile/{ACCOUNT}/{HASH}-512.jpg")
    }

    #[test]
    fn the_keys_of_both_sizes_parse_back() {
        let account = Uuid::parse_str(ACCOUNT).unwrap();
        for extension in ["jpg", "png"] {
            let (large, thumbnail) = profile_keys(account, HASH, extension);
            assert_eq!(
                large,
                format!("account/profile/{ACCOUNT}/{HASH}-512.{extension}")
            );
            assert_eq!(
                thumbnail,
                format!("account/profile/{ACCOUNT}/{HASH}-128.{extension}")
            );
            for key in [large, thumbnail] {
                let parsed = ProfileKey::parse(&key).unwrap();
                assert_eq!(parsed.account_id(), account);
                assert_eq!(parsed.hash(), HASH);
                assert_eq!(parsed.as_str(), key);
                assert_eq!(parsed.to_string(), key);
                let expected = if extension == "png" {
                    "image/png"
                } else {
                    "image/jpeg"
                };
                assert_eq!(parsed.content_type(), expected);
            }
        }
    }

    #[test]
    fn anything_but_an_image_key_is_refused() {
        let good = good();
        let upper_uuid = good.replace(ACCOUNT, &ACCOUNT.to_uppercase());
        let upper_hash = good.replace(HASH, &HASH.to_uppercase());
        let short_hash = good.replace(HASH, &HASH[..63]);
        let long_hash = good.replace(HASH, &format!("{HASH}0"));
        let not_hex = good.replace(HASH, &HASH.replace('9', "g"));
        let simple_uuid = good.replace(ACCOUNT, &ACCOUNT.replace('-', ""));
        let braced_uuid = good.replace(ACCOUNT, &format!("{{{ACCOUNT}}}"));
        let urn_uuid = good.replace(ACCOUNT, &format!("urn:uuid:{ACCOUNT}"));
        let refused = [
            String::new(),
            "/".into(),
            "account/profile/".into(),
            format!("account/profile/{ACCOUNT}"),
            format!("account/profile/{ACCOUNT}/"),
            format!("/{good}"),
            format!("{good}/"),
            format!("{good}/.."),
            format!("{good}/x"),
            format!("{good}.jpg"),
            format!("{good}%00"),
            format!("{good}?x=1"),
            format!("{good} "),
            format!(" {good}"),
            format!("account/profile/../profile/{ACCOUNT}/{HASH}-512.jpg"),
            format!("account/profile/{ACCOUNT}/../{ACCOUNT}/{HASH}-512.jpg"),
            format!("account/profile/./{ACCOUNT}/{HASH}-512.jpg"),
            format!("account/profile//{ACCOUNT}/{HASH}-512.jpg"),
            format!("account/profile/{ACCOUNT}//{HASH}-512.jpg"),
            format!("account/profile/%2e%2e/{ACCOUNT}/{HASH}-512.jpg"),
            format!("account%2Fprofile/{ACCOUNT}/{HASH}-512.jpg"),
            format!("account/profile%2F{ACCOUNT}/{HASH}-512.jpg"),
            format!("account/profile/{ACCOUNT}%2F{HASH}-512.jpg"),
            format!("account\\profile\\{ACCOUNT}\\{HASH}-512.jpg"),
            format!("account/profile/{ACCOUNT}/{HASH}-512.JPG"),
            format!("account/profile/{ACCOUNT}/{HASH}-512.jpeg"),
            format!("account/profile/{ACCOUNT}/{HASH}-512.gif"),
            format!("account/profile/{ACCOUNT}/{HASH}-512.webp"),
            format!("account/profile/{ACCOUNT}/{HASH}-512.svg"),
            format!("account/profile/{ACCOUNT}/{HASH}-512"),
            format!("account/profile/{ACCOUNT}/{HASH}-256.jpg"),
            format!("account/profile/{ACCOUNT}/{HASH}-0512.jpg"),
            format!("account/profile/{ACCOUNT}/{HASH}.jpg"),
            format!("account/profile/{ACCOUNT}/{HASH}-512-128.jpg"),
            format!("Account/profile/{ACCOUNT}/{HASH}-512.jpg"),
            format!("account/avatar/{ACCOUNT}/{HASH}-512.jpg"),
            format!("media/account/profile/{ACCOUNT}/{HASH}-512.jpg"),
            format!("/etc/passwd/{ACCOUNT}/{HASH}-512.jpg"),
            "/etc/passwd".into(),
            "../../etc/passwd".into(),
            upper_uuid,
            upper_hash,
            short_hash,
            long_hash,
            not_hex,
            simple_uuid,
            braced_uuid,
            urn_uuid,
        ];
        for path in refused {
            assert_eq!(ProfileKey::parse(&path), None, "{path:?} was accepted");
        }
        assert!(ProfileKey::parse(&good).is_some());
    }
}
