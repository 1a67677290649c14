//! Property tests: the parser never panics on random strings or random
//! token soups, and random well-typed ASTs survive print -> parse -> print.
//! The number of cases comes from `PROPTEST_CASES` (proptest default 256).

use proptest::prelude::*;
use strata_grammar::*;

const TOKENS: &[&str] = &[
    "foo",
    "bar",
    "sum",
    "rate",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "5m",
    "1",
    "-",
    "+",
    "*",
    "/",
    "^",
    "%",
    "==",
    "!=",
    ">",
    "<=",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "by",
    "without",
    "offset",
    "@",
    "start()",
    "end()",
    ",",
    ":",
    "\"a\"",
    "=~",
    "!~",
    "=",
    "and",
    "or",
    "unless",
    "atan2",
    "anchored",
    "smoothed",
    "fill",
    "fill_left",
    "step()",
    "range()",
    "Inf",
    "NaN",
    "0x1f",
    "# c\n",
    "\n",
    "topk",
    "count_values",
    "quantile",
    "limitk",
    "label_replace",
    "histogram_quantile",
    "abs",
    "`x`",
    "'y'",
    "1e3",
    ".5",
    "info",
    "min",
    "max",
    "__name__",
    "le",
    "job",
    "-5m",
    "1h30m",
    "time()",
    "\"a.b\"",
    "[5m]",
    "[5m:]",
    "{a=\"b\"}",
    "x[1m]",
];

const WRAPPERS: &[(&str, &str)] = &[
    ("sum(", ")"),
    ("sum by (a) (", ")"),
    ("abs(", ")"),
    ("(", ")"),
    ("rate(", ")"),
    ("topk(1, ", ")"),
    ("max_over_time(", "[5m:])"),
    ("-", ""),
    ("1 + ", ""),
    ("", " * 2"),
    ("count_values(\"a\", ", ")"),
    ("label_join(", ", \"a\", \"b\")"),
    ("(", ")[1m:]"),
    ("", " offset 1m"),
    ("foo and on(a) ", ""),
];

fn check_round_trip(input: &str) -> Result<(), TestCaseError> {
    if let Ok(expr) = parse(input) {
        let printed = expr.to_string();
        let again = parse(&printed)
            .map_err(|e| TestCaseError::fail(format!("{input:?} -> {printed:?}: {e}")))?;
        prop_assert_eq!(again.to_string(), printed);
    }
    Ok(())
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "foo",
        "bar",
        "http_requests_total",
        "a:b:c",
        "sum",
        "offset",
        "x_bucket",
    ])
    .prop_map(str::to_string)
}

fn label() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "job", "instance", "le", "a.b", "on", "__type__", "ünï",
    ])
    .prop_map(str::to_string)
}

fn matcher() -> impl Strategy<Value = Matcher> {
    (
        label(),
        prop::sample::select(vec![
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex,
        ]),
        "[a-z.*\"\\\\\n ]{0,6}",
    )
        .prop_map(|(name, op, value)| {
            let value = if matches!(op, MatchOp::Regex | MatchOp::NotRegex) {
                value.replace(['*', '\\'], "")
            } else {
                value
            };
            Matcher { name, op, value }
        })
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (1i64..10_000_000).prop_map(Duration::Fixed),
        Just(Duration::Expr(DurationExpr::Step)),
        Just(Duration::Expr(DurationExpr::Binary {
            op: DurationOp::Mul,
            lhs: Box::new(DurationExpr::Range),
            rhs: Box::new(DurationExpr::Number {
                seconds: 2.0,
                duration: false
            }),
        })),
    ]
}

fn at() -> impl Strategy<Value = Option<AtModifier>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(AtModifier::Start)),
        1 => Just(Some(AtModifier::End)),
        1 => (-1_000_000_000i64..1_000_000_000).prop_map(|ms| Some(AtModifier::Timestamp(ms))),
    ]
}

fn offset() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![3 => Just(None), 1 => (-10_000_000i64..10_000_000).prop_map(|ms| Some(Duration::Fixed(ms))), 1 => duration().prop_map(Some)]
}

fn selector() -> impl Strategy<Value = VectorSelector> {
    (
        prop::option::of(name()),
        prop::collection::vec(matcher(), 0..3),
        offset(),
        at(),
        0u8..3,
    )
        .prop_map(|(name, mut matchers, offset, at, ext)| {
            if name.is_none() {
                matchers.push(Matcher {
                    name: "job".into(),
                    op: MatchOp::Equal,
                    value: "x".into(),
                });
            }
            matchers.retain(|m| m.name != "__name__");
            VectorSelector {
                name,
                matchers,
                offset,
                at,
                anchored: ext == 1,
                smoothed: ext == 2,
                pos: Default::default(),
            }
        })
}

/// Parenthesises operands whose printed form would re-associate.
fn wrap(e: Expr) -> Box<Expr> {
    match e {
        Expr::Binary(_) | Expr::Unary(_) => Box::new(Expr::Paren(Box::new(e))),
        other => Box::new(other),
    }
}

fn func(name: &str) -> &'static Function {
    get_function(name).unwrap_or_else(|| panic!("missing function {name}"))
}

fn scalar() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (-1e6f64..1e6).prop_map(|value| Expr::NumberLiteral(NumberLiteral {
            value,
            duration: false
        })),
        (0i64..100_000).prop_map(|ms| Expr::NumberLiteral(NumberLiteral {
            value: ms as f64 / 1000.0,
            duration: true
        })),
        Just(Expr::Call(Call {
            func: func("time"),
            args: vec![],
            pos: Pos::default(),
            arg_pos: vec![],
        })),
        Just(Expr::NumberLiteral(NumberLiteral {
            value: f64::INFINITY,
            duration: false
        })),
    ]
}

fn vector() -> impl Strategy<Value = Expr> {
    let leaf = selector().prop_map(Expr::VectorSelector);
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (selector(), duration()).prop_map(|(mut vs, range)| {
                let (offset, at) = (vs.offset.take(), vs.at.take());
                let mut ms = MatrixSelector {
                    selector: vs,
                    range,
                };
                ms.selector.offset = offset;
                ms.selector.at = at;
                Expr::Call(Call {
                    func: func("rate"),
                    args: vec![Expr::MatrixSelector(ms)],
                    pos: Pos::default(),
                    arg_pos: vec![],
                })
            }),
            (
                inner.clone(),
                prop::collection::vec(label(), 0..3),
                any::<bool>(),
                prop::option::of(scalar())
            )
                .prop_map(|(e, grouping, without, param)| {
                    let op = if param.is_some() {
                        AggregateOp::Topk
                    } else {
                        AggregateOp::Sum
                    };
                    Expr::Aggregate(AggregateExpr {
                        op,
                        expr: Box::new(e),
                        param: param.map(Box::new),
                        grouping,
                        without,
                        pos: Pos::default(),
                        param_pos: Pos::default(),
                    })
                }),
            (
                inner.clone(),
                inner.clone(),
                prop::sample::select(vec![
                    BinaryOp::Add,
                    BinaryOp::Div,
                    BinaryOp::Pow,
                    BinaryOp::And,
                    BinaryOp::Gtr,
                    BinaryOp::Atan2,
                    BinaryOp::Unless
                ]),
                any::<bool>(),
                prop::option::of(-5f64..5.0)
            )
                .prop_map(|(l, r, op, on, fill)| {
                    let set = op.is_set_operator();
                    let matching = VectorMatching {
                        card: if set {
                            Cardinality::ManyToMany
                        } else if on {
                            Cardinality::ManyToOne
                        } else {
                            Cardinality::OneToOne
                        },
                        on,
                        labels: if on { vec!["job".into()] } else { vec![] },
                        include: vec![],
                        fill_lhs: if set { None } else { fill },
                        fill_rhs: if set { None } else { fill },
                    };
                    Expr::Binary(BinaryExpr {
                        op,
                        lhs: wrap(l),
                        rhs: wrap(r),
                        return_bool: op == BinaryOp::Gtr && on,
                        matching: Some(matching),
                        pos: Pos(0),
                    })
                }),
            (inner.clone(), scalar()).prop_map(|(v, s)| Expr::Binary(BinaryExpr {
                op: BinaryOp::Mul,
                lhs: wrap(v),
                rhs: wrap(s),
                return_bool: false,
                matching: None,
                pos: Pos(0),
            })),
            inner.clone().prop_map(|e| Expr::Unary(UnaryExpr {
                op: UnaryOp::Neg,
                expr: wrap(e)
            })),
            inner.clone().prop_map(|e| Expr::Paren(Box::new(e))),
            (
                inner.clone(),
                duration(),
                prop::option::of(duration()),
                at()
            )
                .prop_map(|(e, range, step, at)| {
                    let sub = Expr::Subquery(SubqueryExpr {
                        expr: Box::new(Expr::Paren(Box::new(e))),
                        range,
                        step,
                        offset: None,
                        at,
                    });
                    Expr::Call(Call {
                        func: func("max_over_time"),
                        args: vec![sub],
                        pos: Pos::default(),
                        arg_pos: vec![],
                    })
                }),
            (scalar(), inner).prop_map(|(s, v)| Expr::Call(Call {
                func: func("histogram_quantile"),
                args: vec![s, v],
                pos: Pos::default(),
                arg_pos: vec![],
            })),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_strings_never_panic(s in "\\PC{0,64}") {
        let _ = parse(&s);
    }

    #[test]
    fn random_ascii_never_panics(s in "[ -~\n]{0,80}") {
        check_round_trip(&s)?;
    }

    #[test]
    fn token_soups_never_panic(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..24), spaced in any::<bool>()) {
        let input = tokens.join(if spaced { " " } else { "" });
        check_round_trip(&input)?;
    }

    #[test]
    fn random_regex_matchers_never_panic(re in "[a-z.*+?|()\\[\\]{}^$,0-9\\\\]{0,16}", neg in any::<bool>()) {
        let op = if neg { "!~" } else { "=~" };
        let quoted = format!("{re:?}");
        check_round_trip(&format!("{{a{op}{quoted}}}"))?;
        check_round_trip(&format!("foo{{a{op}{quoted}}}"))?;
    }

    #[test]
    fn nested_wrappers_parse_fast(
        wrappers in prop::collection::vec(prop::sample::select(WRAPPERS), 0..40),
        inner in prop::collection::vec(prop::sample::select(TOKENS), 0..6),
    ) {
        let mut input = inner.join(" ");
        for (open, close) in wrappers {
            input = format!("{open}{input}{close}");
        }
        let start = std::time::Instant::now();
        check_round_trip(&input)?;
        prop_assert!(start.elapsed() < std::time::Duration::from_secs(1), "slow: {input}");
    }

    #[test]
    fn random_asts_round_trip(expr in vector()) {
        let printed = expr.to_string();
        let parsed = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed:?}: {e}")))?;
        prop_assert_eq!(parsed.to_string(), printed);
    }
}
