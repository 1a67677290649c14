//! Executor: walks the parsed tree against the data, evaluating pipelines, variables,
//! field chains, method calls, template calls and control flow with Go's `text/template`
//! semantics.

use std::collections::HashMap;
use std::fmt::Display;
use std::rc::Rc;
use std::sync::Arc;

use super::ast::{Arg, ArgKind, Branch, Cmd, Def, Node, Pipe, TmplCall};
use super::funcs::{self, Env};
use super::html::Out;
use super::methods;
use super::value::Value;
use super::{QueryRunner, TemplateData};

/// Named templates in scope during an execution.
pub(crate) type Templates = HashMap<String, Arc<Def>>;

/// Maximum nesting of `{{template}}` calls (Go allows 100000; this bounds stack use).
pub(crate) const MAX_DEPTH: usize = 200;

/// An execution failure at a node (`ctx` is the node as Go prints it).
#[derive(Debug)]
pub(crate) struct ExecError {
    pub(crate) pos: usize,
    pub(crate) ctx: String,
    pub(crate) msg: String,
    /// The named template the position is in; `None` for the executed text itself.
    pub(crate) loc: Option<Arc<Def>>,
}

type XResult<T> = Result<T, ExecError>;

/// How a list finished: normally or through `{{break}}`/`{{continue}}`.
#[derive(PartialEq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'a> {
    env: Env<'a>,
    vars: Vec<(String, Value)>,
    tmpls: &'a Templates,
    depth: usize,
}

/// Executes a rule template's `nodes` with `data` as `.` and `$`.
pub(crate) fn run(nodes: &[Node], data: &TemplateData, q: &dyn QueryRunner) -> XResult<String> {
    let root = Value::Data(Rc::new(data.clone()));
    execute(nodes, root, Env::Rule { data, q }, &Templates::new())
}

/// Executes `nodes` with `root` as `.` and `$`, and `tmpls` callable by `{{template}}`.
pub(crate) fn execute(
    nodes: &[Node],
    root: Value,
    env: Env<'_>,
    tmpls: &Templates,
) -> XResult<String> {
    execute_into(nodes, root, env, tmpls, Out::plain())
}

/// [`execute`] writing into `out` (plain, or HTML with `html/template`'s escaping).
pub(crate) fn execute_into(
    nodes: &[Node],
    root: Value,
    env: Env<'_>,
    tmpls: &Templates,
    mut out: Out,
) -> XResult<String> {
    let mut ex = Exec {
        env,
        vars: vec![("$".into(), root.clone())],
        tmpls,
        depth: 0,
    };
    ex.walk(&root, nodes, &mut out)?;
    Ok(out.into_string())
}

/// The identifier of a pipeline's last command (`html`, `urlquery`, `safeHtml` …).
fn last_ident(p: &Pipe) -> Option<&str> {
    match p.cmds.last()?.args.first()?.kind {
        ArgKind::Func(ref f) => Some(f.as_str()),
        _ => None,
    }
}

fn err(pos: usize, ctx: impl Display, msg: impl Into<String>) -> ExecError {
    ExecError {
        pos,
        ctx: ctx.to_string(),
        msg: msg.into(),
        loc: None,
    }
}

impl Exec<'_> {
    fn walk(&mut self, dot: &Value, nodes: &[Node], out: &mut Out) -> XResult<Flow> {
        for n in nodes {
            let flow = match n {
                Node::Text(s) => {
                    out.text(s);
                    Flow::Normal
                }
                Node::Action(p) => {
                    let v = self.pipeline(dot, p)?;
                    if p.decl.is_empty() {
                        out.value(&v.render(), last_ident(p));
                    }
                    Flow::Normal
                }
                Node::If(b) | Node::With(b) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(dot, &b.pipe)?;
                    let flow = match (v.truth(), n) {
                        (true, Node::With(_)) => self.walk(&v, &b.list, out)?,
                        (true, _) => self.walk(dot, &b.list, out)?,
                        (false, _) => self.walk(dot, &b.else_list, out)?,
                    };
                    self.vars.truncate(mark);
                    flow
                }
                Node::Range(b) => {
                    let mark = self.vars.len();
                    self.range(dot, b, out)?;
                    self.vars.truncate(mark);
                    Flow::Normal
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
                Node::Template(t) => {
                    self.template(dot, t, out)?;
                    Flow::Normal
                }
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// `{{template "name" pipeline}}`: runs the named template with fresh variables.
    fn template(&mut self, dot: &Value, t: &TmplCall, out: &mut Out) -> XResult<()> {
        let v = match &t.pipe {
            Some(p) => self.pipeline(dot, p)?,
            None => Value::Nil,
        };
        let Some(def) = self.tmpls.get(&t.name).cloned() else {
            return Err(err(t.pos, t, format!("template {:?} not defined", t.name)));
        };
        if self.depth >= MAX_DEPTH {
            let msg = format!("exceeded maximum template depth ({MAX_DEPTH})");
            return Err(err(t.pos, t, msg));
        }
        let vars = std::mem::replace(&mut self.vars, vec![("$".into(), v.clone())]);
        self.depth += 1;
        let r = self.walk(&v, &def.nodes, out);
        self.depth -= 1;
        self.vars = vars;
        r.map(drop).map_err(|mut e| {
            e.loc.get_or_insert(def);
            e
        })
    }

    fn range(&mut self, dot: &Value, b: &Branch, out: &mut Out) -> XResult<()> {
        let items: Vec<(Value, Value)> = match self.commands(dot, &b.pipe)? {
            Value::Samples(s) => (0..)
                .zip(s)
                .map(|(i, x)| (Value::Int(i), Value::Sample(Rc::new(x))))
                .collect(),
            Value::Labels(m) => m
                .into_iter()
                .map(|(k, v)| (Value::Str(k), Value::Str(v)))
                .collect(),
            Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
            Value::Kv(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                .collect(),
            Value::Alerts(l) => (0..)
                .zip(l.iter())
                .map(|(i, a)| (Value::Int(i), Value::Alert(Rc::new(a.clone()))))
                .collect(),
            Value::Pairs(l) => (0..)
                .zip(l.iter())
                .map(|(i, p)| (Value::Int(i), Value::Pair(Rc::new(p.clone()))))
                .collect(),
            Value::Strings(l) => (0..)
                .zip(l.iter())
                .map(|(i, s)| (Value::Int(i), Value::Str(s.clone())))
                .collect(),
            Value::Int(n) => (0..n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
            Value::Nil => Vec::new(),
            v => {
                return Err(err(
                    b.pipe.pos,
                    &b.pipe,
                    format!("range can't iterate over {v}"),
                ));
            }
        };
        if items.is_empty() {
            self.walk(dot, &b.else_list, out)?;
            return Ok(());
        }
        let mark = self.vars.len();
        for (k, e) in items {
            self.vars.truncate(mark);
            match b.pipe.decl.as_slice() {
                [x] => self.bind(x, e.clone(), b.pipe.assign, &b.pipe)?,
                [i, x] => {
                    self.bind(i, k, b.pipe.assign, &b.pipe)?;
                    self.bind(x, e.clone(), b.pipe.assign, &b.pipe)?;
                }
                _ => {}
            }
            if self.walk(&e, &b.list, out)? == Flow::Break {
                break;
            }
        }
        Ok(())
    }

    /// Declares (`:=`) or assigns (`=`) a variable.
    fn bind(&mut self, name: &str, v: Value, assign: bool, p: &Pipe) -> XResult<()> {
        if !assign {
            self.vars.push((name.to_string(), v));
            return Ok(());
        }
        match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => return Err(err(p.pos, p, format!("undefined variable: {name}"))),
        }
        Ok(())
    }

    fn pipeline(&mut self, dot: &Value, p: &Pipe) -> XResult<Value> {
        let v = self.commands(dot, p)?;
        for name in &p.decl {
            self.bind(name, v.clone(), p.assign, p)?;
        }
        Ok(v)
    }

    /// Evaluates the pipeline's commands, each result feeding the next as its last argument.
    fn commands(&mut self, dot: &Value, p: &Pipe) -> XResult<Value> {
        let mut fin = None;
        for c in &p.cmds {
            let Some((first, rest)) = c.args.split_first() else {
                continue;
            };
            fin = Some(match &first.kind {
                ArgKind::Func(name) => self.call(dot, name, rest, fin, c.pos, c)?,
                _ if !rest.is_empty() || fin.is_some() => self.method(dot, c, first, rest, fin)?,
                ArgKind::Nil => return Err(err(c.pos, c, "nil is not a command")),
                _ => self.arg(dot, first)?,
            });
        }
        Ok(fin.unwrap_or(Value::Nil))
    }

    /// A command whose first word is a field chain ending in a method, given arguments
    /// (`.CommonLabels.Remove .GroupLabels.Names`).
    fn method(
        &mut self,
        dot: &Value,
        c: &Cmd,
        first: &Arg,
        rest: &[Arg],
        fin: Option<Value>,
    ) -> XResult<Value> {
        let not_fn = || {
            let msg = format!("can't give argument to non-function {first}");
            err(c.pos, c, msg)
        };
        let (recv, name) = match &first.kind {
            ArgKind::Field(names) => match names.split_last() {
                Some((name, init)) => (fields(dot.clone(), init, first)?, name),
                None => return Err(not_fn()),
            },
            ArgKind::Var(var, names) => match names.split_last() {
                Some((name, init)) => (fields(self.var(var, first)?, init, first)?, name),
                None => return Err(not_fn()),
            },
            ArgKind::Chain(inner, names) => match names.split_last() {
                Some((name, init)) => {
                    let v = self.arg(dot, inner)?;
                    (fields(v, init, first)?, name)
                }
                None => return Err(not_fn()),
            },
            _ => return Err(not_fn()),
        };
        let mut vals = rest
            .iter()
            .map(|a| self.arg(dot, a))
            .collect::<XResult<Vec<_>>>()?;
        vals.extend(fin);
        match methods::call(&recv, name, vals) {
            Some(r) => r.map_err(|m| err(first.pos, first, m)),
            None => Err(not_fn()),
        }
    }

    /// The value of variable `name`.
    fn var(&self, name: &str, a: &Arg) -> XResult<Value> {
        let v = self.vars.iter().rev().find(|(n, _)| n == name);
        v.map(|(_, v)| v.clone())
            .ok_or_else(|| err(a.pos, a, format!("undefined variable: {name}")))
    }

    fn arg(&mut self, dot: &Value, a: &Arg) -> XResult<Value> {
        Ok(match &a.kind {
            ArgKind::Dot => dot.clone(),
            ArgKind::Nil => Value::Nil,
            ArgKind::Bool(b) => Value::Bool(*b),
            ArgKind::Int(i, _) => Value::Int(*i),
            ArgKind::Float(f, _) => Value::Float(*f),
            ArgKind::Str(s, _) => Value::Str(s.clone()),
            ArgKind::Field(names) => fields(dot.clone(), names, a)?,
            ArgKind::Var(name, names) => fields(self.var(name, a)?, names, a)?,
            ArgKind::Pipe(p) => self.pipeline(dot, p)?,
            ArgKind::Func(name) => self.call(dot, name, &[], None, a.pos, a)?,
            ArgKind::Chain(inner, names) => {
                let v = self.arg(dot, inner)?;
                fields(v, names, a)?
            }
        })
    }

    /// Calls a function; `fin` is the previous pipeline stage's result (the last argument).
    fn call(
        &mut self,
        dot: &Value,
        name: &str,
        args: &[Arg],
        fin: Option<Value>,
        pos: usize,
        ctx: &dyn Display,
    ) -> XResult<Value> {
        if name == "and" || name == "or" {
            if args.is_empty() && fin.is_none() {
                let msg = format!("wrong number of args for {name}: want at least 1 got 0");
                return Err(err(pos, ctx, msg));
            }
            let mut last = Value::Nil;
            for a in args {
                last = self.arg(dot, a)?;
                if last.truth() == (name == "or") {
                    return Ok(last);
                }
            }
            return Ok(fin.unwrap_or(last));
        }
        let mut vals = args
            .iter()
            .map(|a| self.arg(dot, a))
            .collect::<XResult<Vec<_>>>()?;
        vals.extend(fin);
        funcs::call(&self.env, name, vals).map_err(|m| err(pos, ctx, m))
    }
}

/// Follows a `.a.b.c` chain from `v` (errors located at `a`).
fn fields(v: Value, names: &[String], a: &Arg) -> XResult<Value> {
    names
        .iter()
        .try_fold(v, |v, f| v.field(f))
        .map_err(|m| err(a.pos, a, m))
}
