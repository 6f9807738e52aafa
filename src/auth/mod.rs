//! Credentials: password hashing off the async executor, and confirmation tokens.

mod password;
mod token;

pub use password::{hash_blocking, HashError, PasswordHash, PasswordHasher, Verified};
pub use token::{ConfirmationTokens, TokenError};
