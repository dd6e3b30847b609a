//! Code shared by dlm's example embeddings: the `dlm` CLI and the `dlmd`
//! daemon. Not published.
//!
//! - [`api`]: the REST API's JSON request and response types, used by the
//!   daemon's handlers and by the CLI's `dlm remote` client, so the two
//!   cannot drift.
//! - [`client`]: a small REST client for `dlm remote`.
//! - [`state`]: where the daemon's state and token live.
//! - [`protocols`]: the one place that names protocols: the registry both
//!   embeddings use, built from `SECTION.KEY=VALUE` settings, the CLI's
//!   convenience flags for them, and the protocol-specific commands.
//! - [`size`]: sizes and rates on the command line.
#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod protocols;
pub mod size;
pub mod state;
