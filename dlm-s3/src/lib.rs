//! S3 for dlm (work in progress: issue 5).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod address;
mod config;
mod error;
mod profile;
mod reqsign_io;
mod signer;

pub use address::S3Location;
pub use config::{S3Config, StaticCredentials};
pub use error::{MAX_ERROR_BODY_BYTES, S3Error};
