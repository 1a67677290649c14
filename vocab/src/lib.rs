//! # strata-vocab
//!
//! The vocabulary of Prometheus that every Strata crate speaks, in one place: label
//! matchers as plain data ([`LabelMatcher`], from the parser through the plan to storage),
//! regexes anchored and made to accept what Go's RE2 accepts ([`pattern`]), durations
//! ([`duration`], `model.ParseDuration` / `model.Duration.String`), Go float formatting
//! ([`float`]), the legacy name rules ([`name`]) and Go string quoting ([`quote`]).
//!
//! No I/O and no dependency on any other Strata crate: the grammar (which must stay free of
//! I/O) and storage (which must not know PromQL) both build on it.

pub mod duration;
pub mod float;
pub mod histogram;
pub mod matcher;
pub mod name;
pub mod pattern;
pub mod quote;

pub use histogram::kahan::kahan_inc;
pub use histogram::{CounterResetHint, FloatHistogram};
pub use matcher::{LabelMatcher, MatchOp};
