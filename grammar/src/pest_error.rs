//! Converts pest's syntax errors into Prometheus-style messages such as
//! `unexpected end of input` or `unexpected identifier "foo", expected ...`.

use pest::error::{ErrorVariant, InputLocation};

use crate::error::ParseError;
use crate::grammar::Rule;

/// Converts a pest error on `input`.
pub(crate) fn convert(input: &str, e: pest::error::Error<Rule>) -> ParseError {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let found = describe_token(input, pos);
    let mut message = format!("unexpected {found}");
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        let mut expected: Vec<&str> = Vec::new();
        for r in positives {
            let name = rule_name(*r);
            if !name.is_empty() && !expected.contains(&name) {
                expected.push(name);
            }
        }
        if !expected.is_empty() {
            message.push_str(", expected ");
            let n = expected.len();
            for (i, name) in expected.iter().enumerate() {
                if i > 0 {
                    message.push_str(if i + 1 == n { " or " } else { ", " });
                }
                message.push_str(name);
            }
        }
    } else if let ErrorVariant::CustomError { message: m } = &e.variant {
        message = m.clone();
    }
    ParseError::at(input, pos, message)
}

fn rule_name(r: Rule) -> &'static str {
    use Rule::*;
    match r {
        EOI => "end of input",
        expr | primary | paren_expr | aggregate | function_call | vector_selector | metric_name => {
            "expression"
        }
        number_lit | signed_number => "number",
        duration_lit | dur_expr | offset_dur => "duration",
        string_lit => "string",
        label_matchers => "\"{\"",
        label_matcher | label_name => "label matcher",
        match_op => "label matching operator",
        grouping_labels => "\"(\"",
        grouping_label | label_ident => "label",
        grouping | kw_by | kw_without => "grouping opts",
        call_body => "\"(\"",
        range_sel | subquery => "\"[\"",
        at_start | at_end => "timestamp",
        kw_offset | offset_mod => "offset",
        op_pow | op_mul | op_div | op_mod | op_atan2 | op_add | op_sub | op_eqlc | op_neq
        | op_lte | op_lss | op_gte | op_gtr | op_and | op_unless | op_or => "binary operator",
        _ => "",
    }
}

/// Describes the token starting at `pos` like Prometheus's `Item.desc()`.
pub(crate) fn describe_token(input: &str, pos: usize) -> String {
    let rest = input.get(pos..).unwrap_or("");
    let Some(c) = rest.chars().next() else {
        return "end of input".into();
    };
    let word_len = |f: &dyn Fn(char) -> bool| rest.find(|ch: char| !f(ch)).unwrap_or(rest.len());
    if c.is_ascii_alphabetic() || c == '_' {
        let w = &rest[..word_len(&|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')];
        let lower = w.to_ascii_lowercase();
        return match lower.as_str() {
            "and" | "or" | "unless" | "atan2" => format!("<op:{w}>"),
            "sum" | "avg" | "count" | "min" | "max" | "group" | "stddev" | "stdvar" | "topk"
            | "bottomk" | "quantile" | "count_values" | "limitk" | "limit_ratio" => {
                format!("<aggr:{w}>")
            }
            "bool" | "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            | "offset" => {
                format!("<{w}>")
            }
            "inf" | "nan" => format!("number {w:?}"),
            _ => format!("identifier {w:?}"),
        };
    }
    if c.is_ascii_digit() || (c == '.' && rest[1..].starts_with(|d: char| d.is_ascii_digit())) {
        let w = &rest[..word_len(&|ch| ch.is_ascii_alphanumeric() || ch == '.')];
        let kind = if w.ends_with(|ch: char| ch.is_ascii_alphabetic()) && !w.starts_with("0x") {
            "duration"
        } else {
            "number"
        };
        return format!("{kind} {w:?}");
    }
    if matches!(c, '"' | '\'' | '`') {
        let end = rest[1..].find(c).map_or(rest.len(), |i| i + 2);
        let s = &rest[..end];
        if s.len() > 12 {
            let short: String = s.chars().take(10).collect();
            return format!("string {short:?}...");
        }
        return format!("string {s:?}");
    }
    for op in [
        "==", "!=", "<=", ">=", "=~", "!~", "+", "-", "*", "/", "%", "^", "<", ">", "=",
    ] {
        if rest.starts_with(op) {
            return format!("<op:{op}>");
        }
    }
    match c {
        '(' => "left parenthesis \"(\"".into(),
        ')' => "right parenthesis \")\"".into(),
        '[' => "left bracket \"[\"".into(),
        ']' => "right bracket \"]\"".into(),
        '{' => "left brace \"{\"".into(),
        '}' => "right brace \"}\"".into(),
        ',' => "\",\"".into(),
        ':' => "\":\"".into(),
        '@' => "<op:@>".into(),
        other => format!("character {other:?}"),
    }
}
