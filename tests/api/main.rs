//! Integration tests: the real application on port 0, driven through a
//! generated gRPC client and a real HTTP client.

mod abuse;
mod access;
mod access_binary;
mod attacks;
mod batching;
mod certificates_binary;
mod confirm;
mod confirm_code;
mod credentials_binary;
mod delivery;
mod django_hardening;
mod event_streams;
mod events;
mod faults;
mod get_account;
mod grpc_meta;
mod hardening;
mod hostile;
mod http;
mod idle;
mod import;
mod jwks;
mod lifecycle;
mod lifecycle_binary;
mod locale;
mod mail_wakeups;
mod memory;
mod offline_verification;
mod operations;
mod password_reset;
mod register;
mod resend;
mod sessions;
mod sessions_access;
mod sessions_everywhere;
mod sessions_instances;
mod sessions_refresh;
mod sessions_revoke;
mod sessions_sign_in;
mod sign_in;
mod storage;
mod tls;
mod worker;

use account_testkit as helpers;
use account_testkit::{on_both_backends, smtp_server};
