#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod listing;
mod pool;
mod protocol;
mod retrieval;
mod session;
mod source;

pub use config::{FtpConfig, NetrcMode};
pub use error::FtpError;
pub use listing::{
    FtpListing, MAX_DEPTH, MAX_ENTRIES, MAX_LISTING_BYTES, MAX_PATH_BYTES, MAX_TREE_BYTES,
};
pub use protocol::{FtpProtocol, SCHEMES, SECTION, register, register_with};
pub use source::FtpSource;
