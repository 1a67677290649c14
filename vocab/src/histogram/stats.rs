//! Statistics of one native histogram as PromQL's functions compute them (`promql/quantile.go`
//! and `promql/functions.go`): quantile, fraction, variance, and the trim operators.
