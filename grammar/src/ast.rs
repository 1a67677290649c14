//! Typed abstract syntax tree for PromQL expressions.
//!
//! The tree mirrors the node types of Prometheus's Go parser (`ast.go`):
//! literals, vector/matrix selectors, subqueries, calls, aggregations,
//! binary and unary expressions and parentheses. Durations are kept in
//! milliseconds when they are constant ([`Duration::Fixed`]); duration
//! arithmetic that depends on the query (`step()`, `range()`) stays as a
//! [`DurationExpr`] tree for the engine to resolve.

use crate::functions::Function;

/// The four PromQL value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// A single float.
    Scalar,
    /// A string (only usable as function / aggregation parameter).
    String,
    /// An instant vector.
    Vector,
    /// A range vector.
    Matrix,
}

impl ValueType {
    /// The name used in Prometheus's documentation and error messages.
    pub fn documented_name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::String => "string",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
        }
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.documented_name())
    }
}

/// A PromQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A float literal (`1`, `0x1f`, `Inf`, or a duration used as a number, `5m`).
    NumberLiteral(NumberLiteral),
    /// A string literal, already unquoted.
    StringLiteral(String),
    /// An instant vector selector.
    VectorSelector(VectorSelector),
    /// A range vector selector (`foo[5m]`).
    MatrixSelector(MatrixSelector),
    /// A subquery (`expr[30m:1m]`).
    Subquery(SubqueryExpr),
    /// A function call.
    Call(Call),
    /// An aggregation (`sum by (job) (x)`).
    Aggregate(AggregateExpr),
    /// A binary operation.
    Binary(BinaryExpr),
    /// A unary `-` or `+` applied to a non-literal.
    Unary(UnaryExpr),
    /// An expression in parentheses.
    Paren(Box<Expr>),
}

/// A float literal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberLiteral {
    /// The value.
    pub value: f64,
    /// Written as a duration (`5m`): value is in seconds and prints as a duration.
    pub duration: bool,
}

pub use strata_vocab::matcher::{LabelMatcher as Matcher, MatchOp};

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtModifier {
    /// A fixed Unix timestamp in milliseconds.
    Timestamp(i64),
    /// `@ start()`.
    Start,
    /// `@ end()`.
    End,
}

/// A duration: constant milliseconds, or an expression depending on the query.
#[derive(Debug, Clone, PartialEq)]
pub enum Duration {
    /// A constant duration in milliseconds (may be negative for offsets).
    Fixed(i64),
    /// A duration expression that uses `step()` or `range()`.
    Expr(DurationExpr),
}

impl Duration {
    /// The constant value in milliseconds, if this duration is constant.
    pub fn fixed_ms(&self) -> Option<i64> {
        match self {
            Duration::Fixed(ms) => Some(*ms),
            Duration::Expr(_) => None,
        }
    }
}

/// Arithmetic operators allowed in duration expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
}

/// A duration expression that cannot be resolved at parse time.
/// Numbers are in seconds; the engine evaluates the tree to seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum DurationExpr {
    /// A number (seconds); `duration` is true when written as `5m`.
    Number {
        /// Value in seconds.
        seconds: f64,
        /// Written with a unit.
        duration: bool,
    },
    /// `step()`: the query step.
    Step,
    /// `range()`: the query range (end - start).
    Range,
    /// Unary minus.
    Neg(Box<DurationExpr>),
    /// A binary operation.
    Binary {
        /// Operator.
        op: DurationOp,
        /// Left operand.
        lhs: Box<DurationExpr>,
        /// Right operand.
        rhs: Box<DurationExpr>,
    },
    /// `min(a, b)`.
    Min(Box<DurationExpr>, Box<DurationExpr>),
    /// `max(a, b)`.
    Max(Box<DurationExpr>, Box<DurationExpr>),
    /// Parenthesised expression.
    Paren(Box<DurationExpr>),
}

/// An instant vector selector.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VectorSelector {
    /// Metric name written before the braces, if any.
    pub name: Option<String>,
    /// Matchers written inside the braces (without the implicit name matcher).
    pub matchers: Vec<Matcher>,
    /// `offset` modifier.
    pub offset: Option<Duration>,
    /// `@` modifier.
    pub at: Option<AtModifier>,
    /// `anchored` range-selector modifier.
    pub anchored: bool,
    /// `smoothed` range-selector modifier.
    pub smoothed: bool,
    /// Where it starts in the query text (annotations).
    pub pos: Pos,
}

impl VectorSelector {
    /// All matchers, including `__name__="<name>"` for a name written outside braces.
    pub fn all_matchers(&self) -> Vec<Matcher> {
        let mut out = self.matchers.clone();
        if let Some(name) = &self.name {
            out.push(Matcher {
                name: "__name__".to_string(),
                op: MatchOp::Equal,
                value: name.clone(),
            });
        }
        out
    }
}

/// A range vector selector.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSelector {
    /// The selector (holds offset / `@` / anchored / smoothed).
    pub selector: VectorSelector,
    /// The range.
    pub range: Duration,
}

/// A subquery.
#[derive(Debug, Clone, PartialEq)]
pub struct SubqueryExpr {
    /// The inner (instant vector) expression.
    pub expr: Box<Expr>,
    /// The range.
    pub range: Duration,
    /// The resolution; `None` means the default evaluation interval.
    pub step: Option<Duration>,
    /// `offset` modifier.
    pub offset: Option<Duration>,
    /// `@` modifier.
    pub at: Option<AtModifier>,
}

/// A byte offset into the query text, for annotation positions. It never takes part in
/// equality or hashing: two ASTs that differ only in positions are the same expression.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pos(pub usize);

impl PartialEq for Pos {
    fn eq(&self, _: &Pos) -> bool {
        true
    }
}

impl Eq for Pos {}

impl Pos {
    /// Prometheus's `line:col` of this offset in `input` (1-based, column in bytes).
    pub fn line_col(self, input: &str) -> String {
        let pos = self.0.min(input.len());
        let before = input.get(..pos).unwrap_or(input);
        let line = before.matches('\n').count() + 1;
        let col = match before.rfind('\n') {
            Some(i) => pos - i,
            None => pos + 1,
        };
        format!("{line}:{col}")
    }
}

/// A function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The function (from the function table).
    pub func: &'static Function,
    /// Arguments.
    pub args: Vec<Expr>,
    /// Where the call starts.
    pub pos: Pos,
    /// Where each argument starts.
    pub arg_pos: Vec<Pos>,
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AggregateOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `count`
    Count,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `group`
    Group,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
    /// `quantile`
    Quantile,
    /// `count_values`
    CountValues,
    /// `limitk`
    Limitk,
    /// `limit_ratio`
    LimitRatio,
}

impl AggregateOp {
    /// Parses a (case-insensitive) aggregation keyword.
    pub fn from_keyword(s: &str) -> Option<AggregateOp> {
        use AggregateOp::*;
        Some(match s.to_ascii_lowercase().as_str() {
            "sum" => Sum,
            "avg" => Avg,
            "count" => Count,
            "min" => Min,
            "max" => Max,
            "group" => Group,
            "stddev" => Stddev,
            "stdvar" => Stdvar,
            "topk" => Topk,
            "bottomk" => Bottomk,
            "quantile" => Quantile,
            "count_values" => CountValues,
            "limitk" => Limitk,
            "limit_ratio" => LimitRatio,
            _ => return None,
        })
    }

    /// The keyword as printed.
    pub fn as_str(self) -> &'static str {
        use AggregateOp::*;
        match self {
            Sum => "sum",
            Avg => "avg",
            Count => "count",
            Min => "min",
            Max => "max",
            Group => "group",
            Stddev => "stddev",
            Stdvar => "stdvar",
            Topk => "topk",
            Bottomk => "bottomk",
            Quantile => "quantile",
            CountValues => "count_values",
            Limitk => "limitk",
            LimitRatio => "limit_ratio",
        }
    }

    /// Whether the aggregation takes a parameter before the vector.
    pub fn has_param(self) -> bool {
        use AggregateOp::*;
        matches!(
            self,
            Topk | Bottomk | Quantile | CountValues | Limitk | LimitRatio
        )
    }
}

/// An aggregation.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateExpr {
    /// The operator.
    pub op: AggregateOp,
    /// The aggregated expression.
    pub expr: Box<Expr>,
    /// The parameter (`k`, `φ`, label name), for operators that take one.
    pub param: Option<Box<Expr>>,
    /// Grouping labels.
    pub grouping: Vec<String>,
    /// `without` (true) or `by` (false).
    pub without: bool,
    /// Where the aggregation starts.
    pub pos: Pos,
    /// Where the parameter starts.
    pub param_pos: Pos,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eql,
    /// `!=`
    Neq,
    /// `<`
    Lss,
    /// `<=`
    Lte,
    /// `>`
    Gtr,
    /// `>=`
    Gte,
    /// `</`: a histogram's observations below the operand (trim the upper part).
    TrimUpper,
    /// `>/`: a histogram's observations above the operand (trim the lower part).
    TrimLower,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinaryOp {
    /// The operator as printed.
    pub fn as_str(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Pow => "^",
            Atan2 => "atan2",
            Eql => "==",
            Neq => "!=",
            Lss => "<",
            Lte => "<=",
            Gtr => ">",
            Gte => ">=",
            TrimUpper => "</",
            TrimLower => ">/",
            And => "and",
            Or => "or",
            Unless => "unless",
        }
    }

    /// `==`, `!=`, `<`, `<=`, `>`, `>=`.
    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(self, Eql | Neq | Lss | Lte | Gtr | Gte)
    }

    /// `</`, `>/`.
    pub fn is_trim(self) -> bool {
        matches!(self, BinaryOp::TrimUpper | BinaryOp::TrimLower)
    }

    /// Whether results keep the metric name (comparisons and trims do).
    pub fn keeps_name(self) -> bool {
        self.is_comparison() || self.is_trim() || self.is_set_operator()
    }

    /// `and`, `or`, `unless`.
    pub fn is_set_operator(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }
}

/// Vector matching cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Cardinality {
    /// One-to-one (default for arithmetic / comparison).
    OneToOne,
    /// `group_left`.
    ManyToOne,
    /// `group_right`.
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// Vector matching of a binary operation between two instant vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMatching {
    /// Cardinality.
    pub card: Cardinality,
    /// `on` (true) or `ignoring` (false).
    pub on: bool,
    /// Labels of `on(...)` / `ignoring(...)`.
    pub labels: Vec<String>,
    /// Extra labels of `group_left(...)` / `group_right(...)`.
    pub include: Vec<String>,
    /// `fill_left(v)` value.
    pub fill_lhs: Option<f64>,
    /// `fill_right(v)` value.
    pub fill_rhs: Option<f64>,
}

/// A binary expression.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    /// Operator.
    pub op: BinaryOp,
    /// Left operand.
    pub lhs: Box<Expr>,
    /// Right operand.
    pub rhs: Box<Expr>,
    /// `bool` modifier.
    pub return_bool: bool,
    /// Vector matching; `Some` only when both operands are instant vectors.
    pub matching: Option<VectorMatching>,
    /// Where the expression starts (its left operand), for annotations.
    pub pos: Pos,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `+`
    Pos,
}

/// A unary expression.
#[derive(Debug, Clone, PartialEq)]
pub struct UnaryExpr {
    /// Operator.
    pub op: UnaryOp,
    /// Operand.
    pub expr: Box<Expr>,
}

impl Expr {
    /// Every vector selector in the expression (also inside range selectors, subqueries,
    /// calls and operators), in order of appearance: Prometheus's `ExtractSelectors`.
    pub fn selectors(&self) -> Vec<&VectorSelector> {
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a VectorSelector>) {
            match e {
                Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
                Expr::VectorSelector(v) => out.push(v),
                Expr::MatrixSelector(m) => out.push(&m.selector),
                Expr::Subquery(s) => walk(&s.expr, out),
                Expr::Call(c) => c.args.iter().for_each(|a| walk(a, out)),
                Expr::Aggregate(a) => {
                    if let Some(p) = &a.param {
                        walk(p, out);
                    }
                    walk(&a.expr, out);
                }
                Expr::Binary(b) => {
                    walk(&b.lhs, out);
                    walk(&b.rhs, out);
                }
                Expr::Unary(u) => walk(&u.expr, out),
                Expr::Paren(p) => walk(p, out),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// The value type this expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::NumberLiteral(_) => ValueType::Scalar,
            Expr::StringLiteral(_) => ValueType::String,
            Expr::VectorSelector(_) | Expr::Aggregate(_) => ValueType::Vector,
            Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Call(c) => c.func.return_type,
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Unary(u) => u.expr.value_type(),
            Expr::Paren(e) => e.value_type(),
        }
    }
}
