#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod client;
mod config;
mod connector;
pub mod content_disposition;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod headers;
mod protocol;
mod source;

pub use client::{HttpClient, HttpResponse};
pub use config::{HttpConfig, NetrcMode};
pub use error::HttpError;
pub use protocol::{HttpProtocol, OPTION_HEADER, SCHEMES, SECTION, register, register_with};
pub use source::HttpSource;
