//! Code shared by dlm's example embeddings: the `dlm` CLI and the `dlmd`
//! daemon. Not published.
//!
//! - [`api`]: the REST API's JSON request and response types, used by the
//!   daemon's handlers and by the CLI's `dlm remote` client, so the two
//!   cannot drift.
//! - [`client`]: a small REST client for `dlm remote`.
//! - [`state`]: where the daemon's state and token live.
#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod state;
