//! Differential test against the `promql-parser` crate (0.11), used only as
//! an oracle: both parsers must accept / reject the same inputs and agree
//! on structure (compared through a normalised structural signature).
//! Known, justified differences are listed in `EXPECTED_DIFFERENCES`.

use promql_parser::parser as pp;
use strata_grammar as sg;

const FIXTURE: &str = include_str!("fixtures/conformance_exprs.txt");

/// Hand-written corpus: valid and invalid expressions over every construct.
const CORPUS: &[&str] = &[
    "foo",
    "foo{}",
    "{a=\"b\"}",
    "foo{a=\"b\",c!=\"d\",e=~\"f.*\",g!~\"h\"}",
    "foo{a='b'}",
    "foo{a=`b`}",
    "foo:bar:baz",
    "{__name__=\"foo\"}",
    "{__name__=~\"foo.*\", job=\"x\"}",
    "foo[5m]",
    "foo[1h30m]",
    "foo[5m] offset 1m",
    "foo offset 1w",
    "foo offset -5m",
    "foo @ 1609746000",
    "foo @ -10",
    "foo @ start()",
    "foo @ end()",
    "foo[5m] @ 100 offset 1m",
    "foo offset 1m @ 100",
    "foo[10m:]",
    "foo[10m:1m]",
    "rate(foo[5m])[30m:1m]",
    "sum(rate(foo[5m]))[30m:] offset 1h",
    "1",
    "1.5",
    "-1",
    "+1",
    ".5",
    "1e3",
    "1E-3",
    "0x1F",
    "Inf",
    "-Inf",
    "NaN",
    "nan",
    "inf",
    "\"str\"",
    "'str'",
    "`raw\\n`",
    "\"a\\nb\\\"c\"",
    "1 + 2",
    "1 + 2 * 3",
    "(1 + 2) * 3",
    "2 ^ 3 ^ 2",
    "-2 ^ 2",
    "foo + bar",
    "foo - bar * baz / qux % 2",
    "foo atan2 bar",
    "foo == bool bar",
    "1 == bool 1",
    "foo > 1",
    "foo and bar",
    "foo or bar unless baz",
    "foo and on(a) bar",
    "foo / on(a, b) bar",
    "foo * ignoring(a) bar",
    "foo * on(a) group_left(b) bar",
    "foo * on(a) group_right bar",
    "foo + ignoring() group_left bar",
    "foo == bool on(a) bar",
    "-foo",
    "-(foo)",
    "- - foo",
    "+foo",
    "sum(foo)",
    "sum by (a) (foo)",
    "sum(foo) by (a)",
    "sum without (a, b) (foo)",
    "sum by () (foo)",
    "avg(foo)",
    "count(foo)",
    "min(foo)",
    "max(foo)",
    "group(foo)",
    "stddev(foo)",
    "stdvar(foo)",
    "topk(3, foo)",
    "bottomk(3, foo)",
    "quantile(0.9, foo)",
    "count_values(\"v\", foo)",
    "limitk(2, foo)",
    "limit_ratio(0.5, foo)",
    "topk by (a) (5, foo)",
    "sum by (le) (rate(x_bucket[5m]))",
    "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
    "abs(foo)",
    "absent(foo)",
    "label_replace(foo, \"a\", \"$1\", \"b\", \"(.*)\")",
    "label_join(foo, \"a\", \",\", \"b\", \"c\")",
    "round(foo)",
    "round(foo, 5)",
    "time()",
    "vector(1)",
    "scalar(foo)",
    "pi()",
    "clamp(foo, 0, 1)",
    "day_of_week()",
    "day_of_week(foo)",
    "predict_linear(foo[1h], 3600)",
    "quantile_over_time(0.5, foo[5m])",
    "sort_by_label(foo, \"a\", \"b\")",
    "histogram_fraction(0, 1, foo)",
    "foo # comment",
    "# leading comment\nfoo",
    "sum(\n  rate(foo[5m])\n)",
    "foo and bar or baz",
    "foo or bar and baz",
    "1 < bool 2 + 3",
    "foo offset 5m > bar",
    "SUM(foo) BY (job)",
    "foo AND bar",
    "rate(foo[5m]) * on(instance) group_left(nodename) node_uname_info",
    "max_over_time(deriv(rate(foo[1m])[5m:1m])[10m:])",
    "foo[5m:] @ end()",
    // Invalid expressions: both must reject.
    "",
    "foo{",
    "foo}",
    "(foo",
    "foo)",
    "foo[5m",
    "sum(foo",
    "rate(foo)",
    "rate(foo[5m], 1)",
    "foo + ",
    "1 > 2",
    "foo and 1",
    "sum(foo) offset 5m",
    "(foo)[5m]",
    "foo[5m][5m]",
    "foo{a=\"b\"",
    "foo{a}",
    "foo{a=b}",
    "{a=~\".*\"}",
    "{}",
    "foo{__name__=\"bar\"}",
    "unknown_fn(foo)",
    "topk(foo)",
    "count_values(1, foo)",
    "quantile(\"a\", foo)",
    "sum(foo, bar)",
    "foo offset 1m offset 2m",
    "foo @ 1 @ 2",
    "foo[0s]",
    "foo[-5m]",
    "foo @ Inf",
    "\"unterminated",
    "foo + bool bar",
    "foo + on(a) group_left(a) bar",
    "foo and on(a) group_left bar",
    "label_join(foo, \"a\")",
    "abs(foo, bar)",
    "1 + \"a\"",
    "-\"a\"",
    "-foo[5m]",
    "foo[5m:1m][1m]",
    "foo offset",
    "foo @",
    "sum by (a, ) (foo)",
    "foo{a=\"b\",}",
    "abs(foo,)",
    "1 +* 2",
    "foo bar",
    "$",
    "foo == bool",
    // Prometheus 3.x syntax.
    "foo[5m*2]",
    "foo[60*30]",
    "foo offset (1h+5m)",
    "foo[5m:1m*2]",
    "foo[step()]",
    "foo[step()*2:]",
    "foo offset -step()",
    "foo[range()]",
    "foo[max(range(), 5s)]",
    "foo anchored",
    "foo[5m] anchored",
    "foo[5m] smoothed",
    "a + fill(0) b",
    "a + fill_left(1) fill_right(2) b",
    "a + on(x) group_left fill(0) b",
    "info(foo, {k=\"v\"})",
    "info(foo)",
    "{\"metric.name\"}",
    "{\"metric.name\", a=\"b\"}",
    "sum by (\"a.b\") (foo)",
    "foo[300]",
    "time() - 1h",
    "predict_linear(foo[1h], 1h)",
    "{__type__=\"counter\"}",
    "foo{__unit__=\"seconds\"}",
    "min_of(1, 2)",
    "step()",
    "range()",
    "start() + end()",
    "first_over_time(foo[5m])",
    "ts_of_max_over_time(foo[5m])",
    "sort_by_label_desc(foo, \"a\")",
    "histogram_avg(foo)",
    "histogram_quantiles(foo, \"q\", 0.5, 0.9)",
    "double_exponential_smoothing(foo[5m], 0.5, 0.5)",
    "mad_over_time(foo[5m])",
    "foo[5m/0]",
    "foo[5m%0]",
    "foo offset 1m anchored",
    "foo[5m] anchored smoothed",
    "foo[1m:] anchored",
    "017",
    "foo[1d1h]",
    "foo[1h1d]",
    "rate(foo[5m] @ end())",
];

/// Differences we keep on purpose, with the reason Prometheus favours us.
const EXPECTED_DIFFERENCES: &[(&str, &str)] = &[
    (
        "foo[5m*2]",
        "Prometheus 3.x duration expressions (promql-duration-expr); promql-parser 0.11 lacks them",
    ),
    (
        "foo[60*30]",
        "Prometheus 3.x duration expressions (promql-duration-expr); promql-parser 0.11 lacks them",
    ),
    (
        "foo offset (1h+5m)",
        "Prometheus 3.x duration expressions (promql-duration-expr); promql-parser 0.11 lacks them",
    ),
    (
        "foo[5m:1m*2]",
        "Prometheus 3.x duration expressions (promql-duration-expr); promql-parser 0.11 lacks them",
    ),
    (
        "foo[step()]",
        "Prometheus 3.x duration expressions (promql-duration-expr); promql-parser 0.11 lacks them",
    ),
    (
        "foo[step()*2:]",
        "Prometheus 3.x duration expressions (promql-duration-expr); promql-parser 0.11 lacks them",
    ),
    (
        "foo offset -step()",
        "Prometheus 3.x duration expressions (promql-duration-expr); promql-parser 0.11 lacks them",
    ),
    (
        "foo[range()]",
        "Prometheus 3.x duration expressions (promql-duration-expr); promql-parser 0.11 lacks them",
    ),
    (
        "foo[max(range(), 5s)]",
        "Prometheus 3.x duration expressions (promql-duration-expr); promql-parser 0.11 lacks them",
    ),
    (
        "foo anchored",
        "Prometheus 3.x anchored/smoothed range modifiers (promql-extended-range-selectors); promql-parser 0.11 lacks them",
    ),
    (
        "foo[5m] anchored",
        "Prometheus 3.x anchored/smoothed range modifiers (promql-extended-range-selectors); promql-parser 0.11 lacks them",
    ),
    (
        "foo[5m] smoothed",
        "Prometheus 3.x anchored/smoothed range modifiers (promql-extended-range-selectors); promql-parser 0.11 lacks them",
    ),
    (
        "foo offset 1m anchored",
        "Prometheus 3.x anchored/smoothed range modifiers (promql-extended-range-selectors); promql-parser 0.11 lacks them",
    ),
    (
        "count_values(\"a\\xc5z\", version)",
        "Go keeps the raw invalid-UTF-8 byte (a runtime `invalid label name` error); Rust strings are UTF-8, so we substitute U+FFFD which stays an invalid name, while promql-parser silently turns the byte into a different valid character",
    ),
    (
        "label_replace(testmetric, \"\\xff\", \"\", \"src\", \"(.*)\")",
        "Go keeps the raw invalid-UTF-8 byte (a runtime `invalid label name` error); Rust strings are UTF-8, so we substitute U+FFFD which stays an invalid name, while promql-parser silently turns the byte into a different valid character",
    ),
];

fn fmt_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

fn sig_matchers(name: Option<&str>, ms: Vec<(String, &str, String)>) -> String {
    let mut all: Vec<String> = ms
        .into_iter()
        .map(|(n, op, v)| format!("{n}{op}{v:?}"))
        .collect();
    if let Some(n) = name {
        all.push(format!("__name__={n:?}"));
    }
    all.sort();
    all.dedup();
    all.join(",")
}

fn ours(e: &sg::Expr) -> String {
    use sg::Expr::*;
    let dur = |d: &sg::Duration| match d {
        sg::Duration::Fixed(ms) => ms.to_string(),
        sg::Duration::Expr(e) => e.to_string(),
    };
    let at = |a: &Option<sg::AtModifier>| match a {
        None => "-".to_string(),
        Some(sg::AtModifier::Start) => "start".into(),
        Some(sg::AtModifier::End) => "end".into(),
        Some(sg::AtModifier::Timestamp(ms)) => ms.to_string(),
    };
    let off = |o: &Option<sg::Duration>| match o {
        None | Some(sg::Duration::Fixed(0)) => "0".to_string(),
        Some(d) => dur(d),
    };
    let vs = |v: &sg::VectorSelector| {
        let ms = v
            .matchers
            .iter()
            .map(|m| (m.name.clone(), m.op.as_str(), m.value.clone()))
            .collect();
        format!(
            "v({};off={};at={})",
            sig_matchers(v.name.as_deref(), ms),
            off(&v.offset),
            at(&v.at)
        )
    };
    match e {
        NumberLiteral(n) => format!("n({})", fmt_f(n.value)),
        StringLiteral(s) => format!("s({s:?})"),
        VectorSelector(v) => vs(v),
        MatrixSelector(m) => format!("m({};{})", vs(&m.selector), dur(&m.range)),
        Subquery(s) => format!(
            "sq({};{};{};off={};at={})",
            ours(&s.expr),
            dur(&s.range),
            s.step.as_ref().map_or("-".into(), dur),
            off(&s.offset),
            at(&s.at)
        ),
        Call(c) => format!(
            "c({};{})",
            c.func.name,
            c.args.iter().map(ours).collect::<Vec<_>>().join(";")
        ),
        Aggregate(a) => {
            let grouping = if a.without {
                format!("without{:?}", a.grouping)
            } else if a.grouping.is_empty() {
                String::new()
            } else {
                format!("by{:?}", a.grouping)
            };
            format!(
                "a({};{};{};{})",
                a.op.as_str(),
                grouping,
                a.param.as_ref().map_or(String::new(), |p| ours(p)),
                ours(&a.expr)
            )
        }
        Binary(b) => {
            let mut m = String::new();
            if let Some(vm) = &b.matching {
                if vm.on || !vm.labels.is_empty() {
                    m += &format!("{}{:?}", if vm.on { "on" } else { "ign" }, vm.labels);
                }
                match vm.card {
                    sg::Cardinality::ManyToOne => m += &format!("gl{:?}", vm.include),
                    sg::Cardinality::OneToMany => m += &format!("gr{:?}", vm.include),
                    _ => {}
                }
            }
            format!(
                "b({};{};{};{};{})",
                b.op.as_str(),
                b.return_bool,
                m,
                ours(&b.lhs),
                ours(&b.rhs)
            )
        }
        Unary(u) if u.op == sg::UnaryOp::Pos => ours(&u.expr),
        Unary(u) => format!("u({})", ours(&u.expr)),
        Paren(p) => format!("p({})", ours(p)),
    }
}

fn theirs(e: &pp::Expr) -> String {
    use pp::Expr::*;
    let ms = |d: &std::time::Duration| d.as_millis().to_string();
    let off = |o: &Option<pp::Offset>| match o {
        None => "0".to_string(),
        Some(pp::Offset::Pos(d)) => ms(d),
        Some(pp::Offset::Neg(d)) if d.is_zero() => "0".into(),
        Some(pp::Offset::Neg(d)) => format!("-{}", ms(d)),
    };
    let at = |a: &Option<pp::AtModifier>| match a {
        None => "-".to_string(),
        Some(pp::AtModifier::Start) => "start".into(),
        Some(pp::AtModifier::End) => "end".into(),
        Some(pp::AtModifier::At(t)) => match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_millis().to_string(),
            Err(e) => format!("-{}", e.duration().as_millis()),
        },
    };
    let vs = |v: &pp::VectorSelector| {
        let m = v
            .matchers
            .matchers
            .iter()
            .map(|m| {
                let op = match &m.op {
                    promql_parser::label::MatchOp::Equal => "=",
                    promql_parser::label::MatchOp::NotEqual => "!=",
                    promql_parser::label::MatchOp::Re(_) => "=~",
                    promql_parser::label::MatchOp::NotRe(_) => "!~",
                };
                (m.name.clone(), op, m.value.clone())
            })
            .collect();
        format!(
            "v({};off={};at={})",
            sig_matchers(v.name.as_deref(), m),
            off(&v.offset),
            at(&v.at)
        )
    };
    match e {
        NumberLiteral(n) => format!("n({})", fmt_f(n.val)),
        StringLiteral(s) => format!("s({:?})", s.val),
        VectorSelector(v) => vs(v),
        MatrixSelector(m) => format!("m({};{})", vs(&m.vs), ms(&m.range)),
        Subquery(s) => format!(
            "sq({};{};{};off={};at={})",
            theirs(&s.expr),
            ms(&s.range),
            s.step.as_ref().map_or("-".into(), ms),
            off(&s.offset),
            at(&s.at)
        ),
        Call(c) => format!(
            "c({};{})",
            c.func.name,
            c.args
                .args
                .iter()
                .map(|a| theirs(a))
                .collect::<Vec<_>>()
                .join(";")
        ),
        Aggregate(a) => {
            let grouping = match &a.modifier {
                Some(pp::LabelModifier::Exclude(l)) => format!("without{:?}", l.labels),
                Some(pp::LabelModifier::Include(l)) if !l.labels.is_empty() => {
                    format!("by{:?}", l.labels)
                }
                _ => String::new(),
            };
            let op = a.op.to_string().to_lowercase();
            format!(
                "a({};{};{};{})",
                op,
                grouping,
                a.param.as_ref().map_or(String::new(), |p| theirs(p)),
                theirs(&a.expr)
            )
        }
        Binary(b) => {
            let mut m = String::new();
            let mut ret_bool = false;
            let both_vec = b.lhs.value_type() == pp::value::ValueType::Vector
                && b.rhs.value_type() == pp::value::ValueType::Vector;
            if let Some(md) = &b.modifier {
                ret_bool = md.return_bool;
                if both_vec {
                    match &md.matching {
                        Some(pp::LabelModifier::Include(l)) => m += &format!("on{:?}", l.labels),
                        Some(pp::LabelModifier::Exclude(l)) if !l.labels.is_empty() => {
                            m += &format!("ign{:?}", l.labels)
                        }
                        _ => {}
                    }
                    match &md.card {
                        pp::VectorMatchCardinality::ManyToOne(l) => {
                            m += &format!("gl{:?}", l.labels)
                        }
                        pp::VectorMatchCardinality::OneToMany(l) => {
                            m += &format!("gr{:?}", l.labels)
                        }
                        _ => {}
                    }
                }
            }
            let op = b.op.to_string().to_lowercase();
            format!(
                "b({};{};{};{};{})",
                op,
                ret_bool,
                m,
                theirs(&b.lhs),
                theirs(&b.rhs)
            )
        }
        Unary(u) => format!("u({})", theirs(&u.expr)),
        Paren(p) => format!("p({})", theirs(&p.expr)),
        Extension(_) => "ext".into(),
    }
}

fn compare(input: &str) -> Option<String> {
    let a = sg::parse(input);
    let b = std::panic::catch_unwind(|| pp::parse(input))
        .unwrap_or_else(|_| Err("promql-parser panicked".into()));
    match (a, b) {
        (Ok(x), Ok(y)) => {
            let (sx, sy) = (ours(&x), theirs(&y));
            (sx != sy)
                .then(|| format!("structure differs:\n      ours:   {sx}\n      theirs: {sy}"))
        }
        (Err(_), Err(_)) => None,
        (Ok(x), Err(e)) => Some(format!("only we accept (as `{x}`); promql-parser: {e}")),
        (Err(e), Ok(y)) => Some(format!(
            "only promql-parser accepts (as `{y}`); we say: {e}"
        )),
    }
}

#[test]
fn agrees_with_promql_parser() {
    let fixture = FIXTURE
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').nth(2));
    let mut unexpected = Vec::new();
    let mut seen_expected = Vec::new();
    let mut total = 0;
    for input in CORPUS.iter().copied().chain(fixture) {
        total += 1;
        if let Some(diff) = compare(input) {
            if EXPECTED_DIFFERENCES.iter().any(|(e, _)| *e == input) {
                seen_expected.push(input);
            } else {
                unexpected.push(format!("{input:?}: {diff}"));
            }
        }
    }
    for (e, why) in EXPECTED_DIFFERENCES {
        assert!(
            seen_expected.contains(e),
            "listed difference no longer differs: {e:?} ({why})"
        );
    }
    assert!(total > 1200);
    assert!(
        unexpected.is_empty(),
        "{} unexpected differences:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
