//! Valid expressions: each is parsed, printed in canonical form (compared
//! with the expected Prometheus `String()` output), re-parsed and printed
//! again (which must be stable). A second table checks AST shapes.

use strata_grammar::*;

/// (input, expected canonical print; "" means same as input).
const CASES: &[(&str, &str)] = &[
    // Literals.
    ("1", ""),
    ("1.5", ""),
    (".5", "0.5"),
    ("1e3", "1000"),
    ("1E-3", "0.001"),
    ("0x1F", "31"),
    ("017", "15"),
    ("Inf", "+Inf"),
    ("-inf", "-Inf"),
    ("NaN", ""),
    ("nAn", "NaN"),
    ("-1", ""),
    ("+1", "1"),
    ("- -1", "1"),
    ("1048576", ""),
    ("5m", ""),
    ("1h30m", ""),
    ("-5m", ""),
    ("\"double\"", ""),
    ("'single'", "\"single\""),
    ("`raw \\n`", "\"raw \\\\n\""),
    ("\"esc \\a\\b\\f\\n\\r\\t\\v\\\\ \\\"\"", ""),
    ("'it\\'s'", "\"it's\""),
    ("\"\\x41\\101\\u00e4\\U0001F600\"", "\"AAä😀\""),
    ("\"ünïcödé\"", ""),
    // Selectors.
    ("foo", ""),
    ("foo{}", "foo"),
    ("foo:bar:rate5m", ""),
    ("foo{a=\"b\"}", ""),
    ("foo{c=\"d\",a=\"b\"}", "foo{a=\"b\",c=\"d\"}"),
    (
        "foo{a!=\"b\", c=~\"d.*\", e!~'f'}",
        "foo{a!=\"b\",c=~\"d.*\",e!~\"f\"}",
    ),
    ("foo{a=\"b\",}", "foo{a=\"b\"}"),
    ("{a=\"b\"}", ""),
    ("{__name__=\"foo\"}", ""),
    ("{__name__=~\"job:.*\"}", ""),
    ("{\"metric.name\"}", "{__name__=\"metric.name\"}"),
    (
        "{\"metric.name\", \"a.b\"=\"c\"}",
        "{\"a.b\"=\"c\",__name__=\"metric.name\"}",
    ),
    ("{\"0\"=\"1\"}", ""),
    ("{\"_0\"=\"1\"}", "{_0=\"1\"}"),
    ("{``=\"0\"}", "{\"\"=\"0\"}"),
    (
        "{__type__=\"counter\", __unit__=\"seconds\"}",
        "{__type__=\"counter\",__unit__=\"seconds\"}",
    ),
    ("foo{on=\"x\", bool=\"y\"}", "foo{bool=\"y\",on=\"x\"}"),
    ("sum", ""),
    ("by", ""),
    ("offset", ""),
    (
        "foo{job=~\".*\", method=\"get\"}",
        "foo{job=~\".*\",method=\"get\"}",
    ),
    ("{job=~\".+\"}", ""),
    // Range vectors, offset, @.
    ("foo[5m]", ""),
    ("foo[1h30m]", ""),
    ("foo[90s]", "foo[1m30s]"),
    ("foo[300]", "foo[5m]"),
    ("foo[1.5]", "foo[1s500ms]"),
    ("foo[1d]", ""),
    ("foo[7d]", "foo[1w]"),
    ("foo[365d]", "foo[1y]"),
    ("foo offset 5m", ""),
    ("foo offset -7m", ""),
    ("foo offset 300", "foo offset 5m"),
    ("foo offset 0s", "foo"),
    ("foo[5m] offset 1w", ""),
    ("foo{c=\"d\"}[5m] offset 1m", ""),
    ("foo @ 10", "foo @ 10.000"),
    ("foo @ 1609746000.123", "foo @ 1609746000.123"),
    ("foo @ -10", "foo @ -10.000"),
    ("foo @ 1m", "foo @ 60.000"),
    ("foo @ start()", ""),
    ("foo @ end()", ""),
    ("foo[1m] @ start()", ""),
    ("foo @ 100 offset 5m", "foo @ 100.000 offset 5m"),
    ("foo offset 5m @ 100", "foo @ 100.000 offset 5m"),
    ("foo[5m] offset 5m @ end()", "foo[5m] @ end() offset 5m"),
    // Subqueries.
    ("foo[10m:]", ""),
    ("foo[10m:1m]", ""),
    ("rate(foo[5m])[30m:1m]", ""),
    ("foo[1h:5m] offset 1m", ""),
    (
        "foo[1h:5m] @ 100 offset 1m",
        "foo[1h:5m] @ 100.000 offset 1m",
    ),
    ("sum(foo)[10m:]", ""),
    ("(foo + bar)[10m:]", ""),
    ("max_over_time(deriv(rate(foo[1m])[5m:1m])[10m:])", ""),
    // Duration arithmetic (folded when constant).
    ("foo[5m*2]", "foo[10m]"),
    ("foo[60*30]", "foo[30m]"),
    ("foo[1h-5m]", "foo[55m]"),
    ("foo[(1h+5m)/5]", "foo[13m]"),
    ("foo[2^3]", "foo[8s]"),
    ("foo[10m%3m]", "foo[1m]"),
    ("foo[-(-5m)]", "foo[5m]"),
    ("foo[min(1m, 2m)]", "foo[1m]"),
    ("foo[max_of(1m, 2m)]", "foo[2m]"),
    ("foo offset (1h+5m)", "foo offset 1h5m"),
    ("foo offset -(1h+5m)", "foo offset -1h5m"),
    ("foo offset +(5*2)", "foo offset 10s"),
    ("foo[10m:30s*2]", "foo[10m:1m]"),
    ("foo[step()]", ""),
    ("foo[-step()]", ""),
    ("foo[(step())]", ""),
    ("foo[step()*2]", "foo[step() * 2]"),
    (
        "foo[200-min(-step()^+step(),1)]",
        "foo[200 - min(-step() ^ step(), 1)]",
    ),
    ("foo[range()]", ""),
    ("foo[max(range(), 5s)]", ""),
    ("foo[5m:step()]", ""),
    ("foo offset step()", ""),
    ("foo offset -step()", ""),
    ("foo offset -(step())", ""),
    ("foo offset range()", ""),
    ("foo offset -min(10s, step())", ""),
    ("foo offset -2 ^ 2", "foo offset -2s ^ 2"),
    ("foo offset 1m + 2m", ""),
    // anchored / smoothed.
    ("foo anchored", ""),
    ("foo[5m] anchored", ""),
    ("foo{b=\"c\"}[5m] anchored offset 1m", ""),
    ("foo{b=\"c\"}[5m] anchored @ start() offset 1m", ""),
    ("foo[5m] smoothed", ""),
    ("foo smoothed", ""),
    ("foo offset 1m smoothed", "foo smoothed offset 1m"),
    ("rate(foo[5m] anchored)", ""),
    // Binary operators.
    ("1 + 2", ""),
    ("1 + 2 * 3", ""),
    ("(1 + 2) * 3", ""),
    ("2 ^ 3 ^ 2", ""),
    ("-2 ^ 2", ""),
    ("Inf ^ 2", "(+Inf) ^ 2"),
    ("(-2) ^ 2", ""),
    ("foo + bar", ""),
    ("foo - bar * baz / qux % 2", ""),
    ("foo atan2 bar", ""),
    ("foo ATAN2 bar", "foo atan2 bar"),
    ("foo == bar", ""),
    ("foo != bar", ""),
    ("foo > bar", ""),
    ("foo >= bar", ""),
    ("foo < bar", ""),
    ("foo <= bar", ""),
    ("foo == bool bar", ""),
    ("1 == bool 1", ""),
    ("1 < bool 2", ""),
    ("foo > 5", ""),
    ("foo and bar", ""),
    ("foo or bar", ""),
    ("foo unless bar", ""),
    ("foo AND bar OR baz", "foo and bar or baz"),
    ("foo and on(a) bar", "foo and on (a) bar"),
    ("foo and ignoring(a) bar", "foo and ignoring (a) bar"),
    ("foo / on(a, b) bar", "foo / on (a, b) bar"),
    ("foo * ignoring(a) bar", "foo * ignoring (a) bar"),
    ("a - on() c", "a - on () c"),
    ("a - ignoring() c", "a - c"),
    ("a - on(b) group_left(x) c", "a - on (b) group_left (x) c"),
    (
        "a - on(b) group_left(x, y) c",
        "a - on (b) group_left (x, y) c",
    ),
    ("a - on(b) group_left c", "a - on (b) group_left () c"),
    ("a - on(b) group_left() (c)", "a - on (b) group_left () (c)"),
    (
        "a - ignoring() group_left(__metric__) c",
        "a - ignoring () group_left (__metric__) c",
    ),
    ("a * on(b) group_right(x) c", "a * on (b) group_right (x) c"),
    ("a == bool on(b) c", "a == bool on (b) c"),
    (
        "foo / on(\"äää\") group_left(\"ööö\") bar",
        "foo / on (\"äää\") group_left (\"ööö\") bar",
    ),
    ("1 + on() foo", "1 + foo"),
    ("a + fill(-23) b", "a + fill (-23) b"),
    ("a + fill_left(-23) b", "a + fill_left (-23) b"),
    ("a + fill_right(42) b", "a + fill_right (42) b"),
    (
        "a + fill_left(-23) fill_right(42) b",
        "a + fill_left (-23) fill_right (42) b",
    ),
    ("a + fill_left(5) fill_right(5) b", "a + fill (5) b"),
    (
        "a + on(b) group_left fill(-23) c",
        "a + on (b) group_left () fill (-23) c",
    ),
    ("a + fill(1e30) b", "a + fill (1e+30) b"),
    ("a + fill(NaN) b", "a + fill (NaN) b"),
    ("a > bool fill(0) b", "a > bool fill (0) b"),
    ("a + fill", ""),
    ("foo offset 5m > bar", ""),
    ("time() - 1h", ""),
    ("-foo", ""),
    ("+foo", ""),
    ("-(foo)", ""),
    ("- - foo", "--foo"),
    ("-foo ^ 2", ""),
    ("-foo offset 5m", ""),
    // Aggregations.
    ("sum(foo)", ""),
    ("sum by (job) (foo)", ""),
    ("sum by(job) (foo)", "sum by (job) (foo)"),
    ("sum(foo) by (job)", "sum by (job) (foo)"),
    ("sum by() (foo)", "sum(foo)"),
    ("sum without() (foo)", "sum without () (foo)"),
    (
        "sum without(instance) (foo)",
        "sum without (instance) (foo)",
    ),
    ("sum by (a, b,) (foo)", "sum by (a, b) (foo)"),
    ("sum by (\"foo.bar\") (foo)", "sum by (\"foo.bar\") (foo)"),
    (
        "count by (\"ööö\", job) (foo)",
        "count by (\"ööö\", job) (foo)",
    ),
    (
        "sum by (on, bool, offset) (foo)",
        "sum by (on, bool, offset) (foo)",
    ),
    ("sum by (a:b) (foo)", "sum by (\"a:b\") (foo)"),
    ("SUM(foo) BY (job)", "sum by (job) (foo)"),
    ("avg(foo)", ""),
    ("count(foo)", ""),
    ("min(foo)", ""),
    ("max(foo)", ""),
    ("group(foo)", ""),
    ("stddev(foo)", ""),
    ("stdvar(foo)", ""),
    ("topk(5, foo)", ""),
    ("bottomk(5, foo)", ""),
    ("quantile(0.9, foo)", ""),
    ("count_values(\"value\", foo)", ""),
    ("limitk(2, foo)", ""),
    ("limit_ratio(0.5, foo)", ""),
    ("limit_ratio(-0.5, foo)", ""),
    ("topk by (a) (5, foo)", ""),
    ("topk(5, foo) without (a)", "topk without (a) (5, foo)"),
    ("sum by (le) (rate(x_bucket[5m]))", ""),
    // Functions.
    ("rate(foo[5m])", ""),
    ("rate (foo[5m])", "rate(foo[5m])"),
    (
        "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
        "",
    ),
    ("label_replace(foo, \"a\", \"$1\", \"b\", \"(.*)\")", ""),
    ("label_join(foo, \"a\", \",\", \"b\", \"c\", \"d\")", ""),
    ("label_join(foo, \"a\", \",\")", ""),
    ("round(foo)", ""),
    ("round(foo, 5)", ""),
    ("time()", ""),
    ("pi()", ""),
    ("vector(1)", ""),
    ("scalar(foo)", ""),
    ("day_of_week()", ""),
    ("clamp(foo, 0, 1)", ""),
    ("predict_linear(foo[1h], 3000)", ""),
    ("predict_linear(foo[1h], 1h)", ""),
    ("quantile_over_time(0.5, foo[5m])", ""),
    ("absent_over_time(foo[5m])", ""),
    ("sort_by_label(foo, \"a\", \"b\")", ""),
    ("sort_by_label_desc(foo, \"a\")", ""),
    ("first_over_time(foo[5m])", ""),
    ("ts_of_first_over_time(foo[5m])", ""),
    ("ts_of_last_over_time(foo[5m])", ""),
    ("ts_of_min_over_time(foo[5m])", ""),
    ("ts_of_max_over_time(foo[5m])", ""),
    ("mad_over_time(foo[5m])", ""),
    ("double_exponential_smoothing(foo[5m], 0.5, 0.5)", ""),
    ("histogram_avg(foo)", ""),
    ("histogram_count(foo)", ""),
    ("histogram_sum(foo)", ""),
    ("histogram_stddev(foo)", ""),
    ("histogram_stdvar(foo)", ""),
    ("histogram_fraction(0, 0.5, foo)", ""),
    ("histogram_quantiles(foo, \"q\", 0.5, 0.9, 0.99)", ""),
    ("info(foo)", ""),
    ("info(foo, {k=\"v\"})", ""),
    ("info(foo, {k=~\".*\"})", ""),
    ("min_of(3, 5)", ""),
    ("max_of(NaN, 3)", ""),
    ("step()", ""),
    ("range()", ""),
    ("start()", ""),
    ("end() - start()", ""),
    ("metric * step()", ""),
    ("timestamp(foo)", ""),
    // Comments and whitespace.
    ("foo # comment", "foo"),
    ("# leading\nfoo", "foo"),
    ("sum(\n  rate(foo[5m]) # inner\n)", "sum(rate(foo[5m]))"),
    ("  foo\t+\r\n bar  ", "foo + bar"),
];

#[test]
fn valid_expressions_print_canonically() {
    let mut failures = Vec::new();
    for (input, want) in CASES {
        let want = if want.is_empty() { input } else { want };
        match parse(input) {
            Ok(expr) => {
                let got = expr.to_string();
                if got != *want {
                    failures.push(format!("{input:?}: printed {got:?}, want {want:?}"));
                }
                match parse(&got) {
                    Ok(again) if again.to_string() == got => {}
                    Ok(again) => failures.push(format!("{input:?}: unstable: {got:?} -> {again}")),
                    Err(e) => failures.push(format!("{input:?}: printed form {got:?} fails: {e}")),
                }
            }
            Err(e) => failures.push(format!("{input:?}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn p(s: &str) -> Expr {
    parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn binary(e: &Expr) -> &BinaryExpr {
    match e {
        Expr::Binary(b) => b,
        other => panic!("not binary: {other:?}"),
    }
}

#[test]
fn precedence_and_associativity() {
    // `^` is right-associative.
    let e = p("2 ^ 3 ^ 2");
    assert!(matches!(*binary(&e).rhs, Expr::Binary(_)));
    // `-` binds looser than `^` and tighter than `*`.
    assert!(matches!(p("-2 ^ 2"), Expr::Unary(_)) || matches!(p("-a ^ 2"), Expr::Unary(_)));
    assert!(matches!(p("-a ^ 2"), Expr::Unary(_)));
    let e = p("-a * 2");
    assert!(matches!(*binary(&e).lhs, Expr::Unary(_)));
    // Left associativity and levels.
    let e = p("a - b - c");
    assert!(matches!(*binary(&e).lhs, Expr::Binary(_)));
    let e = p("a + b * c");
    assert_eq!(binary(&e).op, BinaryOp::Add);
    let e = p("a or b and c");
    assert_eq!(binary(&e).op, BinaryOp::Or);
    let e = p("a and b unless c");
    assert_eq!(binary(&e).op, BinaryOp::Unless);
    let e = p("a == b + c");
    assert_eq!(binary(&e).op, BinaryOp::Eql);
    let e = p("a * b atan2 c");
    assert_eq!(binary(&e).op, BinaryOp::Atan2);
    let e = p("a > b and c < d");
    assert_eq!(binary(&e).op, BinaryOp::And);
}

#[test]
fn ast_shapes() {
    match p("foo{a=\"b\"}[5m] offset -1m @ 10.5") {
        Expr::MatrixSelector(m) => {
            assert_eq!(m.range, Duration::Fixed(300_000));
            assert_eq!(m.selector.offset, Some(Duration::Fixed(-60_000)));
            assert_eq!(m.selector.at, Some(AtModifier::Timestamp(10_500)));
            assert_eq!(m.selector.name.as_deref(), Some("foo"));
            assert_eq!(
                m.selector.matchers,
                vec![Matcher {
                    name: "a".into(),
                    op: MatchOp::Equal,
                    value: "b".into()
                }]
            );
            assert_eq!(m.selector.all_matchers().len(), 2);
        }
        other => panic!("{other:?}"),
    }
    match p("foo[10m:]") {
        Expr::Subquery(s) => {
            assert_eq!((s.range.fixed_ms(), s.step.clone()), (Some(600_000), None))
        }
        other => panic!("{other:?}"),
    }
    match p("foo[step() * 2:range()]") {
        Expr::Subquery(s) => {
            assert!(matches!(
                s.range,
                Duration::Expr(DurationExpr::Binary {
                    op: DurationOp::Mul,
                    ..
                })
            ));
            assert_eq!(s.step, Some(Duration::Expr(DurationExpr::Range)));
        }
        other => panic!("{other:?}"),
    }
    match p("sum without (a) (rate(x[1m]))") {
        Expr::Aggregate(a) => {
            assert_eq!(
                (a.op, a.without, a.grouping.clone()),
                (AggregateOp::Sum, true, vec!["a".to_string()])
            );
            assert!(a.param.is_none());
        }
        other => panic!("{other:?}"),
    }
    let e = p("a * on(x) group_left(y) fill_right(0) b");
    let vm = binary(&e).matching.clone().expect("matching");
    assert_eq!(
        (vm.card, vm.on, vm.labels, vm.include),
        (
            Cardinality::ManyToOne,
            true,
            vec!["x".into()],
            vec!["y".into()]
        )
    );
    assert_eq!((vm.fill_lhs, vm.fill_rhs), (None, Some(0.0)));
    let e = p("a and b");
    assert_eq!(
        binary(&e).matching.as_ref().map(|m| m.card),
        Some(Cardinality::ManyToMany)
    );
    assert!(binary(&p("1 + a")).matching.is_none());
    assert!(matches!(
        p("-1"),
        Expr::NumberLiteral(NumberLiteral {
            value: -1.0,
            duration: false
        })
    ));
    assert!(matches!(
        p("5m"),
        Expr::NumberLiteral(NumberLiteral {
            value: 300.0,
            duration: true
        })
    ));
    assert_eq!(p("foo @ start()").to_string(), "foo @ start()");
    match p("foo @ end()") {
        Expr::VectorSelector(v) => assert_eq!(v.at, Some(AtModifier::End)),
        other => panic!("{other:?}"),
    }
    match p("\"a\\tb\"") {
        Expr::StringLiteral(s) => assert_eq!(s, "a\tb"),
        other => panic!("{other:?}"),
    }
    match p("`a\\tb`") {
        Expr::StringLiteral(s) => assert_eq!(s, "a\\tb"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn value_types() {
    for (input, t) in [
        ("1", ValueType::Scalar),
        ("\"s\"", ValueType::String),
        ("foo", ValueType::Vector),
        ("foo[5m]", ValueType::Matrix),
        ("foo[5m:]", ValueType::Matrix),
        ("rate(foo[5m])", ValueType::Vector),
        ("time()", ValueType::Scalar),
        ("1 + 2", ValueType::Scalar),
        ("1 + foo", ValueType::Vector),
        ("-time()", ValueType::Scalar),
        ("(foo[5m])", ValueType::Matrix),
        ("sum(foo)", ValueType::Vector),
        ("scalar(foo) * 2", ValueType::Scalar),
    ] {
        assert_eq!(p(input).value_type(), t, "{input}");
    }
}
