//! Hardening: no request can wipe data, exhaust memory or crash the server. One module per
//! class of bug, each run against the real binary (`tests/common`): time bounds at append,
//! query memory, ingest decoding, WAL framing, disk full, output escaping, panics, HTTP
//! server hygiene, defaults, blocks under running queries.

mod common;
#[path = "hardening/defaults.rs"]
mod defaults;
#[path = "hardening/escaping.rs"]
mod escaping;
#[path = "hardening/http.rs"]
mod http;
#[path = "hardening/ingest.rs"]
mod ingest;
#[path = "hardening/panics.rs"]
mod panics;
#[path = "hardening/query.rs"]
mod query;
#[path = "hardening/storage.rs"]
mod storage;
