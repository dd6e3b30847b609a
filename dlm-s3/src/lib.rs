#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod address;
mod checksum;
mod client;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod listing;
mod profile;
mod protocol;
mod reqsign_io;
mod signer;
mod source;

pub use address::S3Location;
pub use client::{DEFAULT_REGION, S3Client};
pub use config::{MAX_LIST_PAGES, S3Config, StaticCredentials};
pub use error::{MAX_ERROR_BODY_BYTES, S3Error};
pub use listing::{MAX_LIST_PAGE_BYTES, S3Listing};
pub use protocol::{S3Protocol, SCHEMES, SECTION, register, register_with};
pub use source::{PREFETCH_MAX_BYTES, S3Source};
