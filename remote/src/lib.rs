//! # strata-remote
//!
//! Remote storage: the remote-write sender and the remote-read endpoint's protocol. Every `remote_write` entry of the
//! configuration gets a queue ([`write::RemoteWrite`]) fed from the WAL, so what Strata
//! stores is what it forwards: samples survive a receiver that is down for minutes and a
//! restart of Strata, and are sent in WAL order per series.
//!
//! Apart from `strata-ingest` (which brings data in) because data flows the other way
//! here; it reuses ingest's protocol types, relabeling and HTTP clients.

pub mod read;
pub mod write;
