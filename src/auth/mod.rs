//! Credentials: password hashing off the async executor, confirmation and
//! password reset tokens.

mod code;
mod page;
mod password;
mod token;

pub use code::{ConfirmationCodes, StoredCode, MAX_CODE_FAILURES};
pub use page::PageTokens;
pub use password::{
    hash_blocking, hash_cost_bounds, hash_cost_within_bounds, is_supported_hash, HashError,
    PasswordHash, PasswordHasher, Verified,
};
pub use token::{
    ConfirmationTokens, EmailChangeClaim, EmailChangeTokens, ResetClaim, ResetTokens, TokenError,
};
