//! account-service: registers shoppers, confirms their e-mail address through a
//! signed link and looks accounts up, over gRPC, with an HTTP sidecar for the link.

#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod access;
pub mod admin;
pub mod auth;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod housekeeping;
pub mod http;
pub mod import;
pub mod limits;
pub mod mail;
pub mod media;
pub mod media_cleanup;
pub mod metrics;
pub mod net;
pub mod pool;
pub mod readiness;
pub mod service;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tls;

/// Code generated from `proto/account/v1/account.proto`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    pub mod account {
        pub mod v1 {
            tonic::include_proto!("account.v1");
        }
    }

    /// Encoded descriptor set of the contract, served through gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("account_descriptor");
}
