//! Credentials: the keyring, password hashing off the async executor,
//! confirmation and password reset tokens, codes, page tokens, and the
//! access and refresh tokens of sessions.

mod access_token;
mod code;
mod kdf;
mod keyring;
mod page;
mod password;
mod refresh_token;
mod timing;
mod token;

pub use access_token::{
    AccessClaims, AccessTokenError, AccessTokens, IssuedAccessToken, SigningKeyError, SigningKeys,
};
pub use code::{ConfirmationCodes, StoredCode, MAX_CODE_FAILURES};
pub use kdf::pbkdf2_sha256;
pub use keyring::Keyring;
pub use page::PageTokens;
pub use password::{
    hash_blocking, hash_cost_bounds, hash_cost_within_bounds, is_supported_hash, HashError,
    PasswordHash, PasswordHasher, Verified,
};
pub use refresh_token::RefreshTokens;
pub use timing::FailureFloor;
pub use token::{
    ConfirmationTokens, EmailChangeClaim, EmailChangeTokens, ResetClaim, ResetTokens, TokenError,
};
