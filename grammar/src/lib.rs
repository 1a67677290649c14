//! # strata-grammar
//!
//! The PromQL front end of Strata: a pest grammar (`promql.pest`) for the
//! whole PromQL language of Prometheus 3.x, a typed AST ([`Expr`]), a type
//! checker with Prometheus-compatible error messages, and a formatter
//! ([`std::fmt::Display`] on [`Expr`]) that prints canonical PromQL the way
//! Prometheus's `String()` does (used by `/api/v1/format_query`).
//!
//! ```
//! let expr = strata_grammar::parse("sum by(job) (rate(http_requests_total[5m]))").unwrap();
//! assert_eq!(expr.to_string(), "sum by (job) (rate(http_requests_total[5m]))");
//! assert_eq!(expr.value_type(), strata_grammar::ValueType::Vector);
//!
//! let err = strata_grammar::parse("rate(foo)").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"
//! );
//! ```
//!
//! Newer syntax (duration arithmetic, `step()`/`range()`, `anchored` /
//! `smoothed`, `fill*()` modifiers, `limitk`, `info()`, ...) is enabled by
//! default. The crate does no I/O.

mod ast;
mod durations;
mod error;
mod format;
mod functions;
mod gofmt;
mod lex;
mod parser;
mod pest_error;
mod regex_check;
mod typecheck;

mod grammar {
    #![allow(unreachable_pub, missing_docs, clippy::all)]
    //! The pest-generated parser.
    #[derive(pest_derive::Parser)]
    #[grammar = "promql.pest"]
    pub(crate) struct PromQLParser;
}

pub use ast::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Cardinality, Duration,
    DurationExpr, DurationOp, Expr, MatchOp, Matcher, MatrixSelector, NumberLiteral, Pos,
    SubqueryExpr, UnaryExpr, UnaryOp, ValueType, VectorMatching, VectorSelector,
};
pub use error::ParseError;
pub use format::{
    civil_from_unix, days_from_civil, format_duration_ms, format_float, format_label_name,
    format_rfc3339, is_legacy_label_name, is_legacy_metric_name, quote_string,
};
pub use functions::{FUNCTIONS, Function, get_function};
pub use gofmt::format_go_float;
pub use parser::parse;
