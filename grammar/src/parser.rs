//! Turns pest pairs into the typed AST.
//!
//! Binary precedence and associativity are resolved with
//! [`pest::pratt_parser::PrattParser`] (`^` is right-associative, unary
//! `-`/`+` binds like Prometheus's `%prec MUL`: tighter than `*` but looser
//! than `^`). Postfix modifiers are attached in [`Builder::primary`], and
//! every node is type-checked as soon as it is built.

use std::sync::LazyLock;

use pest::Parser as _;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use crate::ast::*;
use crate::error::ParseError;
use crate::functions::get_function;
use crate::grammar::{PromQLParser, Rule};
use crate::typecheck::{self, At, BinMods, Check};
use crate::{lex, regex_check};

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    use Assoc::{Left, Right};
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Left))
        .op(Op::infix(Rule::op_and, Left) | Op::infix(Rule::op_unless, Left))
        .op(Op::infix(Rule::op_eqlc, Left)
            | Op::infix(Rule::op_neq, Left)
            | Op::infix(Rule::op_lte, Left)
            | Op::infix(Rule::op_lss, Left)
            | Op::infix(Rule::op_gte, Left)
            | Op::infix(Rule::op_gtr, Left)
            | Op::infix(Rule::op_trim_upper, Left)
            | Op::infix(Rule::op_trim_lower, Left))
        .op(Op::infix(Rule::op_add, Left) | Op::infix(Rule::op_sub, Left))
        .op(Op::infix(Rule::op_mul, Left)
            | Op::infix(Rule::op_div, Left)
            | Op::infix(Rule::op_mod, Left)
            | Op::infix(Rule::op_atan2, Left))
        .op(Op::prefix(Rule::neg) | Op::prefix(Rule::pos))
        .op(Op::infix(Rule::op_pow, Right))
});

/// Parses a PromQL expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    lex::prescan(input)?;
    let mut pairs = PromQLParser::parse(Rule::query, input)
        .map_err(|e| crate::pest_error::convert(input, e))?;
    let b = Builder { input };
    let query = pairs
        .next()
        .ok_or_else(|| b.err(0, "no expression found in input"))?;
    let expr = query
        .into_inner()
        .find(|p| p.as_rule() == Rule::expr)
        .ok_or_else(|| b.err(0, "no expression found in input"))?;
    Ok(b.expr(expr)?.expr)
}

/// An expression and the byte offset where it starts.
pub(crate) struct Spanned {
    pub(crate) expr: Expr,
    pub(crate) start: usize,
}

pub(crate) struct Builder<'i> {
    pub(crate) input: &'i str,
}

type R<T> = Result<T, ParseError>;

impl<'i> Builder<'i> {
    pub(crate) fn err(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        ParseError::at(self.input, pos, msg)
    }

    fn expr(&self, pair: Pair<'i, Rule>) -> R<Spanned> {
        PRATT
            .map_primary(|p| self.primary(p))
            .map_prefix(|op, rhs| self.unary(op, rhs?))
            .map_infix(|lhs, op, rhs| self.binary(lhs?, op, rhs?))
            .parse(pair.into_inner())
    }

    fn unary(&self, op: Pair<'i, Rule>, rhs: Spanned) -> R<Spanned> {
        let start = op.as_span().start();
        let neg = op.as_rule() == Rule::neg;
        if let Expr::NumberLiteral(mut n) = rhs.expr {
            if neg {
                n.value = -n.value;
            }
            return Ok(Spanned {
                expr: Expr::NumberLiteral(n),
                start,
            });
        }
        typecheck::check_unary(&rhs.expr).map_err(|(_, m)| self.err(start, m))?;
        let op = if neg { UnaryOp::Neg } else { UnaryOp::Pos };
        Ok(Spanned {
            expr: Expr::Unary(UnaryExpr {
                op,
                expr: Box::new(rhs.expr),
            }),
            start,
        })
    }

    fn binary(&self, lhs: Spanned, op: Pair<'i, Rule>, rhs: Spanned) -> R<Spanned> {
        let op_pos = op.as_span().start();
        let bop = match op.as_rule() {
            Rule::op_pow => BinaryOp::Pow,
            Rule::op_mul => BinaryOp::Mul,
            Rule::op_div => BinaryOp::Div,
            Rule::op_mod => BinaryOp::Mod,
            Rule::op_atan2 => BinaryOp::Atan2,
            Rule::op_add => BinaryOp::Add,
            Rule::op_sub => BinaryOp::Sub,
            Rule::op_eqlc => BinaryOp::Eql,
            Rule::op_neq => BinaryOp::Neq,
            Rule::op_lte => BinaryOp::Lte,
            Rule::op_lss => BinaryOp::Lss,
            Rule::op_gte => BinaryOp::Gte,
            Rule::op_gtr => BinaryOp::Gtr,
            Rule::op_trim_upper => BinaryOp::TrimUpper,
            Rule::op_trim_lower => BinaryOp::TrimLower,
            Rule::op_and => BinaryOp::And,
            Rule::op_unless => BinaryOp::Unless,
            _ => BinaryOp::Or,
        };
        let mut mods = BinMods::default();
        if let Some(m) = op.into_inner().find(|p| p.as_rule() == Rule::bin_mods) {
            mods = self.bin_mods(m)?;
        }
        let return_bool = mods.return_bool;
        let matching =
            typecheck::check_binary(bop, &lhs.expr, &rhs.expr, mods).map_err(|(at, m)| {
                let pos = match at {
                    At::Operator => op_pos,
                    At::Rhs => rhs.start,
                    _ => lhs.start,
                };
                self.err(pos, m)
            })?;
        let expr = Expr::Binary(BinaryExpr {
            op: bop,
            lhs: Box::new(lhs.expr),
            rhs: Box::new(rhs.expr),
            return_bool,
            matching,
            pos: Pos(lhs.start),
        });
        Ok(Spanned {
            expr,
            start: lhs.start,
        })
    }

    fn bin_mods(&self, pair: Pair<'i, Rule>) -> R<BinMods> {
        let mut mods = BinMods::default();
        let mut fill_seen = false;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_bool => mods.return_bool = true,
                Rule::matching => {
                    let mut inner = p.into_inner();
                    let on = inner.next().is_some_and(|k| k.as_rule() == Rule::kw_on);
                    let labels = match inner.next() {
                        Some(l) => self.grouping_labels(l)?,
                        None => Vec::new(),
                    };
                    mods.matching = Some((on, labels));
                }
                Rule::group_mod => {
                    let mut inner = p.into_inner();
                    let left = inner
                        .next()
                        .is_some_and(|k| k.as_rule() == Rule::kw_group_left);
                    let include = match inner.next() {
                        Some(l) => self.grouping_labels(l)?,
                        None => Vec::new(),
                    };
                    let card = if left {
                        Cardinality::ManyToOne
                    } else {
                        Cardinality::OneToMany
                    };
                    mods.group = Some((card, include));
                }
                Rule::fill_mod => {
                    let pos = p.as_span().start();
                    let mut inner = p.into_inner();
                    let kind = inner.next().map(|k| k.as_rule());
                    let value = match inner.next() {
                        Some(n) => self.signed_number(n)?,
                        None => return Err(self.err(pos, "expected number in fill modifier")),
                    };
                    let (l, r) = match kind {
                        Some(Rule::kw_fill_left) => (true, false),
                        Some(Rule::kw_fill_right) => (false, true),
                        _ => (true, true),
                    };
                    if (l && mods.fill_lhs.is_some())
                        || (r && mods.fill_rhs.is_some())
                        || (fill_seen && l && r)
                    {
                        return Err(self.err(pos, "fill modifiers may not be set multiple times"));
                    }
                    fill_seen = true;
                    if l {
                        mods.fill_lhs = Some(value);
                    }
                    if r {
                        mods.fill_rhs = Some(value);
                    }
                }
                _ => {}
            }
        }
        Ok(mods)
    }

    /// `signed_number`: optional sign, then a number or duration (seconds).
    pub(crate) fn signed_number(&self, pair: Pair<'i, Rule>) -> R<f64> {
        let mut sign = 1.0;
        let mut value = 0.0;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::neg => sign = -1.0,
                Rule::pos => {}
                _ => value = self.number_value(&p)?.value,
            }
        }
        Ok(sign * value)
    }

    /// A `number_lit` or `duration_lit` token.
    pub(crate) fn number_value(&self, p: &Pair<'i, Rule>) -> R<NumberLiteral> {
        let pos = p.as_span().start();
        if p.as_rule() == Rule::duration_lit {
            let ms = lex::parse_duration_ms(p.as_str()).map_err(|m| self.err(pos, m))?;
            return Ok(NumberLiteral {
                value: ms as f64 / 1000.0,
                duration: true,
            });
        }
        let value = lex::parse_number(p.as_str()).map_err(|m| self.err(pos, m))?;
        Ok(NumberLiteral {
            value,
            duration: false,
        })
    }

    fn grouping_labels(&self, pair: Pair<'i, Rule>) -> R<Vec<String>> {
        let mut out = Vec::new();
        for label in pair.into_inner() {
            let pos = label.as_span().start();
            let Some(inner) = label.into_inner().next() else {
                continue;
            };
            let name = match inner.as_rule() {
                Rule::string_lit => self.string(inner)?,
                _ => inner.as_str().to_string(),
            };
            if name.is_empty() {
                return Err(self.err(pos, format!("invalid label name for grouping: {name:?}")));
            }
            out.push(name);
        }
        Ok(out)
    }

    pub(crate) fn string(&self, pair: Pair<'i, Rule>) -> R<String> {
        let pos = pair.as_span().start();
        lex::unquote(pair.as_str()).map_err(|m| self.err(pos, m))
    }

    fn primary(&self, pair: Pair<'i, Rule>) -> R<Spanned> {
        let start = pair.as_span().start();
        let mut inner = pair.into_inner();
        let atom = inner
            .next()
            .ok_or_else(|| self.err(start, "expected expression"))?;
        let mut expr = self.atom(atom)?;
        for post in inner {
            expr = crate::durations::apply_postfix(self, expr, post, start)?;
        }
        Ok(Spanned { expr, start })
    }

    fn atom(&self, pair: Pair<'i, Rule>) -> R<Expr> {
        let pos = pair.as_span().start();
        match pair.as_rule() {
            Rule::paren_expr => {
                let inner = pair
                    .into_inner()
                    .next()
                    .ok_or_else(|| self.err(pos, "expected expression"))?;
                Ok(Expr::Paren(Box::new(self.expr(inner)?.expr)))
            }
            Rule::aggregate => self.aggregate(pair),
            Rule::function_call => self.call(pair),
            Rule::number_lit | Rule::duration_lit => {
                Ok(Expr::NumberLiteral(self.number_value(&pair)?))
            }
            Rule::string_lit => Ok(Expr::StringLiteral(self.string(pair)?)),
            Rule::vector_selector => {
                let vs = self.vector_selector(pair, false)?;
                Ok(Expr::VectorSelector(vs))
            }
            other => Err(self.err(pos, format!("unexpected {other:?}"))),
        }
    }

    fn call_args(&self, pair: Pair<'i, Rule>, bypass_info: bool) -> R<Vec<Spanned>> {
        let mut args = Vec::new();
        for (i, p) in pair.into_inner().enumerate() {
            match p.as_rule() {
                Rule::trailing_comma => {
                    return Err(self.err(
                        p.as_span().start(),
                        "trailing commas not allowed in function call args",
                    ));
                }
                _ if bypass_info && i == 1 => {
                    let start = p.as_span().start();
                    match single_selector(&p) {
                        Some(vs) => {
                            let vs = self.vector_selector(vs, true)?;
                            args.push(Spanned {
                                expr: Expr::VectorSelector(vs),
                                start,
                            });
                        }
                        None => args.push(self.expr(p)?),
                    }
                }
                _ => args.push(self.expr(p)?),
            }
        }
        Ok(args)
    }

    fn call(&self, pair: Pair<'i, Rule>) -> R<Expr> {
        let pos = pair.as_span().start();
        let mut inner = pair.into_inner();
        let name = inner.next().map(|p| p.as_str()).unwrap_or_default();
        let func = get_function(name)
            .ok_or_else(|| self.err(pos, format!("unknown function with name {name:?}")))?;
        let body = inner
            .next()
            .ok_or_else(|| self.err(pos, "expected function arguments"))?;
        let args = self.call_args(body, name == "info")?;
        let starts: Vec<usize> = args.iter().map(|a| a.start).collect();
        let call = Call {
            func,
            args: args.into_iter().map(|a| a.expr).collect(),
            pos: Pos(pos),
            arg_pos: starts.iter().map(|&s| Pos(s)).collect(),
        };
        typecheck::check_call(&call).map_err(|c| self.check_err(c, pos, &starts))?;
        Ok(Expr::Call(call))
    }

    fn check_err(&self, (at, msg): Check, node: usize, args: &[usize]) -> ParseError {
        let pos = match at {
            At::Arg(i) => args.get(i).copied().unwrap_or(node),
            _ => node,
        };
        self.err(pos, msg)
    }

    fn aggregate(&self, pair: Pair<'i, Rule>) -> R<Expr> {
        let pos = pair.as_span().start();
        let mut op = None;
        let mut grouping = Vec::new();
        let mut without = false;
        let mut args = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::aggr_op => op = AggregateOp::from_keyword(p.as_str()),
                Rule::grouping => {
                    let mut inner = p.into_inner();
                    without = inner
                        .next()
                        .is_some_and(|k| k.as_rule() == Rule::kw_without);
                    if let Some(labels) = inner.next() {
                        grouping = self.grouping_labels(labels)?;
                    }
                }
                Rule::call_body => args = self.call_args(p, false)?,
                _ => {}
            }
        }
        let op = op.ok_or_else(|| self.err(pos, "aggregation operator expected"))?;
        let starts: Vec<usize> = args.iter().map(|a| a.start).collect();
        let exprs = args.into_iter().map(|a| a.expr).collect();
        let (param, expr) =
            typecheck::check_aggregate(op, exprs).map_err(|c| self.check_err(c, pos, &starts))?;
        Ok(Expr::Aggregate(AggregateExpr {
            op,
            expr: Box::new(expr),
            param: param.map(Box::new),
            grouping,
            without,
            pos: Pos(pos),
            param_pos: Pos(starts.first().copied().unwrap_or(pos)),
        }))
    }

    fn vector_selector(&self, pair: Pair<'i, Rule>, bypass_empty: bool) -> R<VectorSelector> {
        let pos = pair.as_span().start();
        let mut vs = VectorSelector {
            pos: Pos(pos),
            ..VectorSelector::default()
        };
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::metric_name => vs.name = Some(p.as_str().to_string()),
                Rule::label_matchers => {
                    for m in p.into_inner() {
                        vs.matchers.push(self.label_matcher(m)?);
                    }
                }
                _ => {}
            }
        }
        typecheck::check_vector_selector(&vs, bypass_empty).map_err(|(_, m)| self.err(pos, m))?;
        Ok(vs)
    }

    fn label_matcher(&self, pair: Pair<'i, Rule>) -> R<Matcher> {
        let pos = pair.as_span().start();
        let parts: Vec<Pair<'i, Rule>> = pair.into_inner().collect();
        match parts.as_slice() {
            [only] => Ok(Matcher {
                name: "__name__".into(),
                op: MatchOp::Equal,
                value: self.string(only.clone())?,
            }),
            [name, op, value] => {
                let name = match name.as_rule() {
                    Rule::string_lit => self.string(name.clone())?,
                    _ => name.as_str().to_string(),
                };
                let op = match op.as_str() {
                    "=~" => MatchOp::Regex,
                    "!~" => MatchOp::NotRegex,
                    "!=" => MatchOp::NotEqual,
                    _ => MatchOp::Equal,
                };
                let value = self.string(value.clone())?;
                if matches!(op, MatchOp::Regex | MatchOp::NotRegex) {
                    regex_check::validate(&value).map_err(|m| self.err(pos, m))?;
                }
                Ok(Matcher { name, op, value })
            }
            _ => Err(self.err(pos, "invalid label matcher")),
        }
    }
}

/// If `expr` is exactly one vector selector (no operators or modifiers), returns it.
fn single_selector<'i>(expr: &Pair<'i, Rule>) -> Option<Pair<'i, Rule>> {
    let mut inner = expr.clone().into_inner();
    let primary = inner.next()?;
    if inner.next().is_some() || primary.as_rule() != Rule::primary {
        return None;
    }
    let mut atoms = primary.into_inner();
    let atom = atoms.next()?;
    if atoms.next().is_some() || atom.as_rule() != Rule::vector_selector {
        return None;
    }
    Some(atom)
}
