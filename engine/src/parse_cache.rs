//! Parsed queries by their text. Dashboards send the same query text on every refresh,
//! only with a new time range; parsing it again was about 7% of the CPU of a small range
//! query. Only successful parses are kept (a bad query is parsed, and reported, every
//! time); the cache is bounded by entry count and by query length.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use strata_grammar::{Expr, ParseError};

/// Entries kept before the cache starts over.
const MAX_ENTRIES: usize = 1024;
/// Longer queries are not kept (generated queries with huge regexes rarely repeat).
const MAX_TEXT: usize = 4096;

/// Query text → parsed expression.
#[derive(Default)]
pub(crate) struct ParseCache {
    map: Mutex<HashMap<Box<str>, Arc<Expr>>>,
}

impl ParseCache {
    /// The expression of `q`, parsed now or earlier.
    pub(crate) fn parse(&self, q: &str) -> Result<Arc<Expr>, ParseError> {
        if let Some(e) = self.map.lock().get(q) {
            return Ok(e.clone());
        }
        let expr = Arc::new(strata_grammar::parse(q)?);
        if q.len() <= MAX_TEXT {
            let mut map = self.map.lock();
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(q.into(), expr.clone());
        }
        Ok(expr)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn repeated_text_gets_the_same_expression_and_errors_are_not_kept() {
        let c = ParseCache::default();
        let a = c.parse("sum by (job) (up)").unwrap();
        let b = c.parse("sum by (job) (up)").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, strata_grammar::parse("sum by (job) (up)").unwrap());
        assert!(c.parse("sum by (job (up)").is_err());
        assert!(c.parse("sum by (job (up)").is_err());
        assert_eq!(c.map.lock().len(), 1);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let c = ParseCache::default();
        for i in 0..MAX_ENTRIES + 1 {
            c.parse(&format!("up{{i=\"{i}\"}}")).unwrap();
        }
        assert_eq!(c.map.lock().len(), 1);
    }
}
