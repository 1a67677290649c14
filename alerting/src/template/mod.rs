//! Go `text/template` evaluation for Prometheus-compatible rule templates (Prometheus's
//! template functions, `missingkey=zero`) and for Alertmanager notification templates
//! (`define`/`template`/`block`, Alertmanager's functions, data and default templates).

mod amfuncs;
mod ast;
mod exec;
mod funcs;
mod gotime;
mod html;
mod humanize;
mod lex;
mod methods;
mod notify;
mod parse;
mod printf;
mod set;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_notify;
mod value;

use std::collections::BTreeMap;

pub use notify::{NotifyAlert, NotifyData};
pub use set::TemplateSet;

/// Definitions Prometheus prepends to every rule template (on the same line, like Go).
const DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}\
                    {{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Data a rule template sees (Prometheus's `tmplData` + the query function).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateData {
    /// `.Labels` / `$labels`.
    pub labels: BTreeMap<String, String>,
    /// `.ExternalLabels` / `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// `.ExternalURL` / `$externalURL`.
    pub external_url: String,
    /// `.Value` / `$value`.
    pub value: f64,
}

/// One sample of a `query` result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuerySample {
    /// The series labels (`.Labels`).
    pub labels: BTreeMap<String, String>,
    /// The sample value (`.Value`).
    pub value: f64,
}

/// Runs PromQL for the `query` template function (instant query at the evaluation time).
pub trait QueryRunner {
    /// Runs `q` and returns the resulting vector.
    fn query(&self, q: &str) -> Result<Vec<QuerySample>, String>;

    /// Evaluation time in Unix seconds, returned by the `now` function.
    /// Defaults to the wall clock; rule evaluators should return the evaluation timestamp.
    fn now(&self) -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

/// A template parse or execution failure, rendered like Go's `text/template` errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template text is malformed.
    #[error("template: {name}:{line}: {msg}")]
    Parse {
        /// Template name.
        name: String,
        /// 1-based line (of the text including the prepended definitions).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// Evaluating the template failed.
    #[error("template: {name}:{line}:{col}: executing \"{template}\" at <{context}>: {msg}")]
    Exec {
        /// Name of the text the failing node is in (a template file for defined templates).
        name: String,
        /// The template being executed (the `define` name inside defined templates).
        template: String,
        /// 1-based line.
        line: usize,
        /// 0-based byte offset within the line (as Go reports it).
        col: usize,
        /// The failing node, as Go prints it.
        context: String,
        /// What went wrong.
        msg: String,
    },
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    nodes: Vec<ast::Node>,
}

impl Template {
    /// Parses `text` as Prometheus does: the definitions
    /// `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}`
    /// are prepended. `name` is used in error messages like Go: `template: <name>:1:23: ...`.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let src = format!("{DEFS}{text}");
        match parse::parse(&src, false) {
            Ok(parsed) => Ok(Template {
                name: name.to_string(),
                src,
                nodes: parsed.nodes,
            }),
            Err(e) => Err(parse_error(name, &src, e)),
        }
    }

    /// Executes the template against `data`, running `query` calls through `q`.
    pub fn execute(
        &self,
        data: &TemplateData,
        q: &dyn QueryRunner,
    ) -> Result<String, TemplateError> {
        exec::run(&self.nodes, data, q).map_err(|e| exec_error(&self.name, &self.src, e))
    }
}

/// Convenience used by rules: parse+execute; texts without "{{" are returned as-is without parsing.
pub fn expand(
    name: &str,
    text: &str,
    data: &TemplateData,
    q: &dyn QueryRunner,
) -> Result<String, TemplateError> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    Template::parse(name, text)?.execute(data, q)
}

/// A parse failure of the text `name` (source `src`) as a `TemplateError`.
fn parse_error(name: &str, src: &str, e: parse::ParseError) -> TemplateError {
    TemplateError::Parse {
        name: name.to_string(),
        line: line_col(src, e.pos).0,
        msg: e.msg,
    }
}

/// An execution failure as a `TemplateError`, located in the defined template it happened
/// in, or else in the executed text `name` (source `src`).
fn exec_error(name: &str, src: &str, e: exec::ExecError) -> TemplateError {
    let (file, template, src) = match &e.loc {
        Some(d) => (d.file.as_str(), d.name.as_str(), &*d.src),
        None => (name, name, src),
    };
    let (line, col) = line_col(src, e.pos);
    TemplateError::Exec {
        name: file.to_string(),
        template: template.to_string(),
        line,
        col,
        context: e.ctx,
        msg: e.msg,
    }
}

/// Go's error location: 1-based line and 0-based byte offset within that line.
fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let before = src.get(..pos).unwrap_or(src);
    let line = 1 + before.matches('\n').count();
    let col = before.rfind('\n').map_or(pos, |i| pos - i - 1);
    (line, col)
}
