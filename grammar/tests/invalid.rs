//! Invalid expressions: each must fail with a Prometheus-like message
//! (checked as a substring of `ParseError`'s Display, which includes the
//! `line:column: parse error:` prefix) and never panic.

use strata_grammar::parse;

/// (input, expected substring of the error's Display).
const CASES: &[(&str, &str)] = &[
    // Lexical errors.
    ("", "1:1: parse error: unexpected end of input"),
    ("   # only a comment", "unexpected end of input"),
    (
        "\"unterminated",
        "1:1: parse error: unterminated quoted string",
    ),
    ("'a\nb'", "unterminated quoted string"),
    ("`raw", "unterminated raw string"),
    ("foo)", "1:4: parse error: unexpected right parenthesis ')'"),
    ("foo]", "unexpected right bracket ']'"),
    ("foo}", "unexpected right brace '}'"),
    ("(foo", "1:1: parse error: unclosed left parenthesis"),
    ("foo[5m", "unclosed left bracket"),
    ("foo{a=\"b\"", "unexpected end of input inside braces"),
    ("foo $ bar", "1:5: parse error: unexpected character: '$'"),
    ("foo ; bar", "unexpected character: ';'"),
    ("\"\\q\"", "unknown escape sequence"),
    ("\"\\x4g\"", "invalid character 'g' in escape sequence"),
    ("\"\\uD800\"", "invalid Unicode code point"),
    ("'\\\"'", "unknown escape sequence"),
    ("5x", "unexpected"),
    ("1.5h", "unexpected"),
    ("foo[5s1m]", "not a valid duration string: \"5s1m\""),
    ("foo[1m1m]", "not a valid duration string"),
    // Syntax errors.
    ("foo +", "1:6: parse error: unexpected end of input"),
    ("1 +* 2", "unexpected <op:*>"),
    ("foo bar", "unexpected identifier \"bar\""),
    ("sum(foo) by", "unexpected"),
    ("foo{a}", "unexpected"),
    ("foo{a=b}", "unexpected identifier \"b\""),
    ("foo{a==\"b\"}", "unexpected"),
    ("foo{\"a\"=b}", "unexpected"),
    ("foo == bool", "unexpected end of input"),
    ("foo + group_left bar", "unexpected"),
    ("foo * on(a) group_left(b", "unclosed left parenthesis"),
    ("sum by (a b) (foo)", "unexpected"),
    ("foo offset", "unexpected end of input"),
    ("foo offset 1m 2m", "unexpected duration \"2m\""),
    ("foo @", "unexpected end of input"),
    ("foo @ bar", "unexpected"),
    ("foo[]", "unexpected"),
    ("foo[5m:1m:1m]", "unexpected"),
    ("bool", "unexpected"),
    ("on{a=\"b\"}", "unexpected"),
    ("foo(bar", "unclosed left parenthesis"),
    ("rate(foo[5m]", "unclosed left parenthesis"),
    (
        "abs(foo,)",
        "trailing commas not allowed in function call args",
    ),
    (
        "sum(foo,)",
        "trailing commas not allowed in function call args",
    ),
    ("foo and", "unexpected end of input"),
    ("a + fill(x) b", "unexpected"),
    // Functions.
    (
        "unknown_fn(foo)",
        "1:1: parse error: unknown function with name \"unknown_fn\"",
    ),
    ("Rate(foo[5m])", "unknown function with name \"Rate\""),
    (
        "rate(foo)",
        "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
    ),
    (
        "abs(foo[5m])",
        "expected type instant vector in call to function \"abs\", got range vector",
    ),
    (
        "histogram_quantile(foo, bar)",
        "expected type scalar in call to function \"histogram_quantile\", got instant vector",
    ),
    (
        "label_replace(foo, 1, \"a\", \"b\", \"c\")",
        "expected type string in call to function \"label_replace\", got scalar",
    ),
    (
        "rate(foo[5m], 1)",
        "expected 1 argument(s) in call to \"rate\", got 2",
    ),
    (
        "time(1)",
        "expected 0 argument(s) in call to \"time\", got 1",
    ),
    ("abs()", "expected 1 argument(s) in call to \"abs\", got 0"),
    (
        "label_join(foo, \"a\")",
        "expected at least 3 argument(s) in call to \"label_join\", got 2",
    ),
    (
        "round(foo, 1, 2)",
        "expected at most 2 argument(s) in call to \"round\", got 3",
    ),
    (
        "day_of_week(foo[5m])",
        "expected type instant vector in call to function \"day_of_week\", got range vector",
    ),
    (
        "info(foo, bar)",
        "expected label selectors only, got vector selector instead",
    ),
    (
        "info(foo, 1)",
        "expected type instant vector in call to function \"info\", got scalar",
    ),
    ("info(foo, sum(bar))", "expected label selectors only"),
    (
        "min_of(foo, 1)",
        "expected type scalar in call to function \"min_of\", got instant vector",
    ),
    (
        "sort_by_label(foo, 1)",
        "expected type string in call to function \"sort_by_label\", got scalar",
    ),
    // Aggregations.
    ("sum()", "no arguments for aggregate expression provided"),
    (
        "sum(foo, bar)",
        "wrong number of arguments for aggregate expression provided, expected 1, got 2",
    ),
    (
        "topk(foo)",
        "wrong number of arguments for aggregate expression provided, expected 2, got 1",
    ),
    (
        "sum(1)",
        "expected type instant vector in aggregation expression, got scalar",
    ),
    (
        "sum(foo[5m])",
        "expected type instant vector in aggregation expression, got range vector",
    ),
    (
        "topk(\"a\", foo)",
        "expected type scalar in aggregation parameter, got string",
    ),
    (
        "quantile(foo, foo)",
        "expected type scalar in aggregation parameter, got instant vector",
    ),
    (
        "limitk(\"x\", foo)",
        "expected type scalar in aggregation parameter, got string",
    ),
    (
        "count_values(1, foo)",
        "expected type string in aggregation parameter, got scalar",
    ),
    (
        "sum by (\"\") (foo)",
        "invalid label name for grouping: \"\"",
    ),
    // Binary operators.
    (
        "1 > 2",
        "1:3: parse error: comparisons between scalars must use BOOL modifier",
    ),
    (
        "foo + bool bar",
        "bool modifier can only be used on comparison operators",
    ),
    (
        "foo and bool bar",
        "bool modifier can only be used on comparison operators",
    ),
    (
        "foo and 1",
        "set operator \"and\" not allowed in binary scalar expression",
    ),
    (
        "1 or foo",
        "set operator \"or\" not allowed in binary scalar expression",
    ),
    (
        "foo and on(a) group_left bar",
        "no grouping allowed for \"and\" operation",
    ),
    (
        "foo + on(a) group_left(a) bar",
        "label \"a\" must not occur in ON and GROUP clause at once",
    ),
    (
        "foo + on(a) 1",
        "vector matching only allowed between instant vectors",
    ),
    (
        "foo + fill(0) 1",
        "filling in missing series only allowed between instant vectors",
    ),
    (
        "foo and fill(0) bar",
        "filling in missing series not allowed for set operators",
    ),
    (
        "a + fill(1) fill(2) b",
        "fill modifiers may not be set multiple times",
    ),
    (
        "foo[5m] + 1",
        "binary expression must contain only scalar and instant vector types",
    ),
    (
        "1 + foo[5m]",
        "1:5: parse error: binary expression must contain only scalar and instant vector types",
    ),
    (
        "\"a\" + 1",
        "binary expression must contain only scalar and instant vector types",
    ),
    (
        "-\"a\"",
        "unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
    ),
    (
        "-foo[5m]",
        "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
    ),
    // Selectors.
    (
        "{}",
        "vector selector must contain at least one non-empty matcher",
    ),
    (
        "{a=~\".*\"}",
        "vector selector must contain at least one non-empty matcher",
    ),
    (
        "{a=\"\"}",
        "vector selector must contain at least one non-empty matcher",
    ),
    (
        "{a!~\".+\"}",
        "vector selector must contain at least one non-empty matcher",
    ),
    (
        "foo{__name__=\"bar\"}",
        "metric name must not be set twice: \"foo\" or \"bar\"",
    ),
    ("foo{a=~\"(\"}", "error parsing regexp: missing closing )"),
    ("foo{a!~\"[a\"}", "error parsing regexp: missing closing ]"),
    (
        "foo{a=~\"*\"}",
        "error parsing regexp: missing argument to repetition operator",
    ),
    // Ranges, subqueries, offset, @.
    ("(foo)[5m]", "ranges only allowed for vector selectors"),
    ("sum(foo)[5m]", "ranges only allowed for vector selectors"),
    ("foo[5m][5m]", "ranges only allowed for vector selectors"),
    (
        "foo offset 1m[5m]",
        "no offset modifiers allowed before range",
    ),
    ("foo @ 1[5m]", "no @ modifiers allowed before range"),
    ("foo[0s]", "duration must be greater than 0"),
    ("foo[0]", "duration must be greater than 0"),
    ("foo[-5m]", "duration must be greater than 0"),
    ("foo[5m-10m]", "duration must be greater than 0"),
    ("foo[5m:0s]", "duration must be greater than 0"),
    ("foo[5m/0]", "division by zero"),
    ("foo[5m%0]", "modulo by zero"),
    ("foo[1e300]", "duration out of range"),
    ("foo[100000000000y]", "duration out of range"),
    (
        "foo[5m][10m:]",
        "subquery is only allowed on instant vector, got matrix instead",
    ),
    (
        "1[5m:]",
        "subquery is only allowed on instant vector, got scalar instead",
    ),
    (
        "sum(foo) offset 5m",
        "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
    ),
    (
        "(foo) offset 5m",
        "offset modifier must be preceded by an instant vector selector",
    ),
    (
        "foo offset 1m offset 2m",
        "offset may not be set multiple times",
    ),
    (
        "sum(foo) @ 1",
        "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
    ),
    ("foo @ 1 @ 2", "@ <timestamp> may not be set multiple times"),
    (
        "foo @ start() @ end()",
        "@ <timestamp> may not be set multiple times",
    ),
    ("foo @ Inf", "timestamp out of bounds for @ modifier"),
    ("foo @ NaN", "timestamp out of bounds for @ modifier"),
    ("foo @ 1e300", "timestamp out of bounds for @ modifier"),
    (
        "foo[5m] anchored smoothed",
        "anchored and smoothed modifiers cannot be used together",
    ),
    (
        "foo[1m:] anchored",
        "anchored modifier is not supported for subqueries",
    ),
    ("sum(foo) smoothed", "smoothed modifier not implemented"),
    // Multi-line positions.
    (
        "sum(\n  rate(foo)\n)",
        "2:8: parse error: expected type range vector in call to function \"rate\", got instant vector",
    ),
    (
        "foo +\n\n  bar baz",
        "3:7: parse error: unexpected identifier \"baz\"",
    ),
];

#[test]
fn invalid_expressions_fail_with_expected_messages() {
    let mut failures = Vec::new();
    for (input, want) in CASES {
        match parse(input) {
            Ok(e) => failures.push(format!("{input:?}: unexpectedly parsed as {e}")),
            Err(e) => {
                let got = e.to_string();
                if !got.contains(want) {
                    failures.push(format!("{input:?}: got {got:?}, want {want:?}"));
                }
                assert_eq!(
                    got,
                    format!("{}:{}: parse error: {}", e.line, e.column, e.message)
                );
                assert!(e.snippet.len() <= 64, "snippet too long: {:?}", e.snippet);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn deep_nesting_is_rejected_without_overflow() {
    for depth in [10usize, 60, 65, 1_000, 100_000] {
        let parens = format!("{}foo{}", "(".repeat(depth), ")".repeat(depth));
        let calls = format!("{}foo{}", "abs(".repeat(depth), ")".repeat(depth));
        let subq = format!("{}foo{}", "(".repeat(depth), ")[5m:]".repeat(depth));
        for input in [parens, calls, subq] {
            let r = parse(&input);
            if depth <= 60 {
                assert!(r.is_ok() || input.contains("[5m:]"), "depth {depth}: {r:?}");
            } else {
                let e = r.expect_err("too deep");
                assert!(e.message.contains("nesting too deep"), "{}", e.message);
            }
        }
    }
    for n in [10usize, 500, 100_000] {
        let chains = [
            format!("1{}", " ^ 1".repeat(n)),
            format!("1{}", " + 1".repeat(n)),
            format!("{}1", "-".repeat(n)),
            format!("{}foo", "- ".repeat(n)),
            format!("foo{}", " or foo".repeat(n)),
            format!("foo[1m{}]", "+1s".repeat(n)),
        ];
        for input in chains {
            let r = parse(&input);
            if n <= 500 {
                assert!(r.is_ok(), "{n}: {r:?}");
            } else {
                assert!(r.is_err_and(|e| e.message.contains("too complex")));
            }
        }
    }
}

#[test]
fn failing_nested_aggregations_do_not_backtrack_exponentially() {
    for open in [
        "sum(",
        "abs(",
        "topk(1, ",
        "rate(",
        "count_values(\"a\", ",
        "(",
        "label_join(",
    ] {
        let input = format!("{}1 +{}", open.repeat(60), ")".repeat(60));
        let start = std::time::Instant::now();
        assert!(parse(&input).is_err());
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{open}: {:?}",
            start.elapsed()
        );
    }
}
