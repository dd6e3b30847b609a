//! S3 for dlm (work in progress: issue 5).
#![deny(missing_docs)]
#![forbid(unsafe_code)]
