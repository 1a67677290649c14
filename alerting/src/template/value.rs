//! Runtime values a template manipulates, with Go's truthiness, field lookup
//! (`missingkey=zero` for label maps), numeric conversion and type names.
//! Methods (Alertmanager's `KV.SortedPairs`, `time.Time.Format`, ...) live in `methods.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use super::gotime::GoTime;
use super::methods;
use super::notify::go_instant;
use super::printf;
use super::{NotifyAlert, NotifyData, QuerySample, TemplateData};

/// A dynamically typed template value (the Go types Prometheus templates see).
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `map[string]string` (label sets).
    Labels(BTreeMap<String, String>),
    /// `map[string]interface{}` (the `args` function's result).
    Map(BTreeMap<String, Value>),
    /// A `query` result.
    Samples(Vec<QuerySample>),
    Sample(Rc<QuerySample>),
    /// The root template data.
    Data(Rc<TemplateData>),
    /// A `*time.Time`, in Unix milliseconds (Prometheus's `model.Time` precision).
    Time(i64),
    /// A `time.Duration`, in nanoseconds.
    Duration(i64),
    /// Alertmanager's `*template.Data`.
    Notify(Rc<NotifyData>),
    /// Alertmanager's `template.Alerts` (also what `.Firing`/`.Resolved` return).
    Alerts(Rc<Vec<NotifyAlert>>),
    /// Alertmanager's `template.Alert`.
    Alert(Rc<NotifyAlert>),
    /// Alertmanager's `template.KV` (`map[string]string` with methods).
    Kv(Rc<BTreeMap<String, String>>),
    /// Alertmanager's `template.Pairs`.
    Pairs(Rc<Vec<(String, String)>>),
    /// Alertmanager's `template.Pair`.
    Pair(Rc<(String, String)>),
    /// A `[]string`.
    Strings(Rc<Vec<String>>),
    /// A `time.Time` value with its zone.
    GoTime(GoTime),
}

impl Value {
    /// Go type name, as `%T` and error messages print it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Labels(_) => "map[string]string",
            Value::Map(_) => "map[string]interface {}",
            Value::Samples(_) => "template.queryResult",
            Value::Sample(_) => "*template.sample",
            Value::Data(_) => {
                "struct { Labels map[string]string; ExternalLabels map[string]string; \
                 ExternalURL string; Value interface {} }"
            }
            Value::Time(_) => "*time.Time",
            Value::Duration(_) => "time.Duration",
            Value::Notify(_) => "*template.Data",
            Value::Alerts(_) => "template.Alerts",
            Value::Alert(_) => "template.Alert",
            Value::Kv(_) => "template.KV",
            Value::Pairs(_) => "template.Pairs",
            Value::Pair(_) => "template.Pair",
            Value::Strings(_) => "[]string",
            Value::GoTime(_) => "time.Time",
        }
    }

    /// Go template truthiness: zero values and empty collections are false.
    pub(crate) fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Duration(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Labels(m) => !m.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Samples(s) => !s.is_empty(),
            Value::Alerts(a) => !a.is_empty(),
            Value::Kv(m) => !m.is_empty(),
            Value::Pairs(p) => !p.is_empty(),
            Value::Strings(s) => !s.is_empty(),
            Value::Sample(_)
            | Value::Data(_)
            | Value::Time(_)
            | Value::Notify(_)
            | Value::Alert(_)
            | Value::Pair(_)
            | Value::GoTime(_) => true,
        }
    }

    /// `.name` on this value: a method without arguments, struct field or map key
    /// (missing label keys give "").
    pub(crate) fn field(&self, name: &str) -> Result<Value, String> {
        if let Some(r) = methods::call(self, name, Vec::new()) {
            return r;
        }
        let kv = |m: &BTreeMap<String, String>| Value::Kv(Rc::new(m.clone()));
        let s = |x: &String| Value::Str(x.clone());
        Ok(match (self, name) {
            (Value::Kv(m), _) => Value::Str(m.get(name).cloned().unwrap_or_default()),
            (Value::Notify(d), "Receiver") => s(&d.receiver),
            (Value::Notify(d), "Status") => s(&d.status),
            (Value::Notify(d), "Alerts") => Value::Alerts(Rc::new(d.alerts.clone())),
            (Value::Notify(d), "GroupLabels") => kv(&d.group_labels),
            (Value::Notify(d), "CommonLabels") => kv(&d.common_labels),
            (Value::Notify(d), "CommonAnnotations") => kv(&d.common_annotations),
            (Value::Notify(d), "ExternalURL") => s(&d.external_url),
            (Value::Alert(a), "Status") => s(&a.status),
            (Value::Alert(a), "Labels") => kv(&a.labels),
            (Value::Alert(a), "Annotations") => kv(&a.annotations),
            (Value::Alert(a), "StartsAt") => Value::GoTime(GoTime::utc(go_instant(a.starts_at_ms))),
            (Value::Alert(a), "EndsAt") => Value::GoTime(GoTime::utc(go_instant(a.ends_at_ms))),
            (Value::Alert(a), "GeneratorURL") => s(&a.generator_url),
            (Value::Alert(a), "Fingerprint") => s(&a.fingerprint),
            (Value::Pair(p), "Name") => s(&p.0),
            (Value::Pair(p), "Value") => s(&p.1),
            (Value::Labels(m), _) => Value::Str(m.get(name).cloned().unwrap_or_default()),
            (Value::Map(m), _) => m.get(name).cloned().unwrap_or(Value::Nil),
            (Value::Data(d), "Labels") => Value::Labels(d.labels.clone()),
            (Value::Data(d), "ExternalLabels") => Value::Labels(d.external_labels.clone()),
            (Value::Data(d), "ExternalURL") => Value::Str(d.external_url.clone()),
            (Value::Data(d), "Value") => Value::Float(d.value),
            (Value::Sample(s), "Labels") => Value::Labels(s.labels.clone()),
            (Value::Sample(s), "Value") => Value::Float(s.value),
            (Value::Nil, _) => return Err(format!("nil pointer evaluating interface {{}}.{name}")),
            _ => {
                return Err(format!(
                    "can't evaluate field {name} in type {}",
                    self.type_name()
                ));
            }
        })
    }

    /// Prometheus's `convertToFloat`: numbers, numeric strings and durations.
    pub(crate) fn to_float(&self) -> Result<f64, String> {
        match self {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::Duration(d) => Ok(*d as f64 / 1e9),
            Value::Time(ms) => Ok(*ms as f64 / 1e3),
            Value::Str(s) => s
                .parse()
                .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
            _ => Err(format!("can't convert {} to float", self.type_name())),
        }
    }

    /// What a `{{ pipeline }}` action prints (Go indirects pointers and shows `<no value>` for nil).
    pub(crate) fn render(&self) -> String {
        match self {
            Value::Nil => "<no value>".into(),
            _ => printf::sprint_value(self, 1),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&printf::sprint_value(self, 0))
    }
}
