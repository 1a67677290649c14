//! Alertmanager-style template sets: the default notification templates plus user template
//! files (`templates:` in the Alertmanager config), and rendering of notification texts
//! (Slack titles, PagerDuty fields, ...) with every defined template in scope.

use std::rc::Rc;
use std::sync::Arc;

use super::ast::{Def, Node, is_empty_tree};
use super::exec::{self, Templates};
use super::funcs::Env;
use super::html::Out;
use super::parse::{self, Parsed};
use super::value::Value;
use super::{NotifyData, TemplateError, exec_error, parse_error};

/// Alertmanager's `template/default.tmpl`, verbatim: the default texts of every receiver.
const DEFAULT_TMPL: &str = include_str!("default.tmpl");

/// Alertmanager's `template/email.tmpl`, verbatim: `email.default.subject` and the
/// inlined-CSS `email.default.html`.
const EMAIL_TMPL: &str = include_str!("email.tmpl");

/// Defaults of Strata's own receivers (`googlechat.default.message`).
const STRATA_TMPL: &str = include_str!("strata.tmpl");

/// Named notification templates: Alertmanager's defaults plus user template files.
#[derive(Debug, Clone)]
pub struct TemplateSet {
    tmpls: Templates,
}

impl Default for TemplateSet {
    fn default() -> Self {
        Self::new()
    }
}

impl TemplateSet {
    /// A set holding Alertmanager's default templates (`slack.default.title`, ...).
    pub fn new() -> TemplateSet {
        let mut set = TemplateSet {
            tmpls: Templates::new(),
        };
        // The embedded defaults always parse (checked by the tests).
        let _ = set.add_file("default.tmpl", DEFAULT_TMPL);
        let _ = set.add_file("email.tmpl", EMAIL_TMPL);
        let _ = set.add_file("strata.tmpl", STRATA_TMPL);
        set
    }

    /// Adds a template file's definitions (and its top level, under `name`). Later
    /// definitions replace earlier ones of the same name, except that an empty body never
    /// replaces an existing template (Go's rule). Parse errors name the file.
    pub fn add_file(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        let parsed = parse_notify(name, text)?;
        let src: Arc<str> = text.into();
        associate(&mut self.tmpls, name, &src, name.to_string(), parsed.nodes);
        for (def_name, nodes) in parsed.defs {
            associate(&mut self.tmpls, name, &src, def_name, nodes);
        }
        Ok(())
    }

    /// Whether a template of this name is defined.
    pub fn has_template(&self, name: &str) -> bool {
        self.tmpls.contains_key(name)
    }

    /// Renders `text` against `data` like Alertmanager's `ExecuteTextString`: parsed as a
    /// template named `""` with all defined templates callable; texts without `{{` are
    /// returned as they are.
    pub fn render(&self, text: &str, data: &NotifyData) -> Result<String, TemplateError> {
        if !text.contains("{{") {
            return Ok(text.to_string());
        }
        self.render_at(text, data, now_ms())
    }

    /// Renders `text` like Alertmanager's `ExecuteHTMLString`: Go's `html/template`, values
    /// escaped for the HTML context they land in and the template's HTML comments dropped.
    pub fn render_html(&self, text: &str, data: &NotifyData) -> Result<String, TemplateError> {
        self.render_with(text, data, now_ms(), Out::html())
    }

    /// `render` with the clock the `since` function uses fixed at `now_ms`.
    pub fn render_at(
        &self,
        text: &str,
        data: &NotifyData,
        now_ms: i64,
    ) -> Result<String, TemplateError> {
        self.render_with(text, data, now_ms, Out::plain())
    }

    fn render_with(
        &self,
        text: &str,
        data: &NotifyData,
        now_ms: i64,
        out: Out,
    ) -> Result<String, TemplateError> {
        let parsed = parse_notify("", text)?;
        let src: Arc<str> = text.into();
        let local;
        let tmpls = if parsed.defs.is_empty() {
            &self.tmpls
        } else {
            let mut all = self.tmpls.clone();
            for (name, nodes) in parsed.defs {
                associate(&mut all, "", &src, name, nodes);
            }
            local = all;
            &local
        };
        let root = Value::Notify(Rc::new(data.clone()));
        exec::execute_into(&parsed.nodes, root, Env::Notify { now_ms }, tmpls, out)
            .map_err(|e| exec_error("", &src, e))
    }
}

/// The wall clock in Unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn parse_notify(name: &str, text: &str) -> Result<Parsed, TemplateError> {
    parse::parse(text, true).map_err(|e| parse_error(name, text, e))
}

/// Go's `Template.associate`: an empty body doesn't replace an existing template.
fn associate(tmpls: &mut Templates, file: &str, src: &Arc<str>, name: String, nodes: Vec<Node>) {
    if is_empty_tree(&nodes) && tmpls.contains_key(&name) {
        return;
    }
    let def = Def {
        name: name.clone(),
        file: file.to_string(),
        src: src.clone(),
        nodes,
    };
    tmpls.insert(name, Arc::new(def));
}
