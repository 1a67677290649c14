//! Every `eval` expression of Prometheus's PromQL test scripts must parse
//! (runtime failures included); `eval_fail` lines fail for parse reasons
//! only when their expected message says so. The expressions live in
//! `fixtures/conformance_exprs.txt` (extracted from the Apache-2.0 test
//! scripts of prometheus/prometheus) so the test is self-contained.

const FIXTURE: &str = include_str!("fixtures/conformance_exprs.txt");

#[test]
fn conformance_expressions_parse() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in FIXTURE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut cols = line.split('\t');
        let (Some(loc), Some(kind), Some(expr)) = (cols.next(), cols.next(), cols.next()) else {
            panic!("malformed fixture line: {line}");
        };
        let msg = cols.next().unwrap_or("");
        let must_fail = kind == "eval_fail" && msg.contains("parse error");
        let result = strata_grammar::parse(expr);
        checked += 1;
        match (&result, must_fail) {
            (Ok(_), true) => failures.push(format!("{loc}: expected a parse error: {expr}")),
            (Err(e), false) => failures.push(format!("{loc}: {expr}\n    {e}")),
            _ => {}
        }
        if let Ok(ast) = result {
            // Printing and re-parsing must be stable.
            let printed = ast.to_string();
            match strata_grammar::parse(&printed) {
                Ok(again) => {
                    if again.to_string() != printed {
                        failures.push(format!("{loc}: unstable print: {printed} -> {again}"));
                    }
                }
                Err(e) => failures.push(format!(
                    "{loc}: printed form does not parse: {printed}\n    {e}"
                )),
            }
        }
    }
    assert!(checked > 1000, "fixture too small: {checked}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
