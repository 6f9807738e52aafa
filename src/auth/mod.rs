//! Credentials: the keyring, password hashing off the async executor,
//! confirmation and password reset tokens, codes, page tokens, the
//! access and refresh tokens of sessions, and the second factor: TOTP,
//! recovery codes, sign-in challenges and the sealing of secrets at rest.

mod access_token;
mod challenge;
mod code;
mod kdf;
mod keyring;
mod one_time;
mod page;
mod password;
mod recovery_code;
mod refresh_token;
mod secret_box;
mod timing;
mod token;
mod totp;

pub use access_token::{
    AccessClaims, AccessTokenError, AccessTokens, IssuedAccessToken, SigningKeyError, SigningKeys,
    PASSWORD_AND_CODE, PASSWORD_ONLY,
};
pub use challenge::ChallengeTokens;
pub use code::{ConfirmationCodes, StoredCode, MAX_CODE_FAILURES};
pub use kdf::pbkdf2_sha256;
pub use keyring::Keyring;
pub use page::PageTokens;
pub use password::{
    hash_blocking, hash_cost_bounds, hash_cost_within_bounds, is_supported_hash, HashError,
    PasswordHash, PasswordHasher, Verified,
};
pub use recovery_code::{RecoveryCodes, RECOVERY_CODE_COUNT};
pub use refresh_token::RefreshTokens;
pub use secret_box::{Opened, SecretBox, SecretBoxError};
pub use timing::FailureFloor;
pub use token::{
    ConfirmationTokens, EmailChangeClaim, EmailChangeTokens, ResetClaim, ResetTokens, TokenError,
};
pub use totp::{qr_code_svg, TotpSecret};
