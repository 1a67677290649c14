//! Executor: walks the parsed tree against the data, evaluating pipelines, variables,
//! field chains and control flow with Go's `text/template` semantics.

use std::fmt::Display;
use std::rc::Rc;

use super::ast::{Arg, ArgKind, Branch, Node, Pipe};
use super::funcs::{self, Env};
use super::value::Value;
use super::{QueryRunner, TemplateData};

/// An execution failure at a node (`ctx` is the node as Go prints it).
#[derive(Debug)]
pub(crate) struct ExecError {
    pub(crate) pos: usize,
    pub(crate) ctx: String,
    pub(crate) msg: String,
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
}

/// Executes `nodes` with `data` as `.` and `$`.
pub(crate) fn run(nodes: &[Node], data: &TemplateData, q: &dyn QueryRunner) -> XResult<String> {
    let root = Value::Data(Rc::new(data.clone()));
    let mut ex = Exec {
        env: Env { data, q },
        vars: vec![("$".into(), root.clone())],
    };
    let mut out = String::new();
    ex.walk(&root, nodes, &mut out)?;
    Ok(out)
}

fn err(pos: usize, ctx: impl Display, msg: impl Into<String>) -> ExecError {
    ExecError {
        pos,
        ctx: ctx.to_string(),
        msg: msg.into(),
    }
}

impl Exec<'_> {
    fn walk(&mut self, dot: &Value, nodes: &[Node], out: &mut String) -> XResult<Flow> {
        for n in nodes {
            let flow = match n {
                Node::Text(s) => {
                    out.push_str(s);
                    Flow::Normal
                }
                Node::Action(p) => {
                    let v = self.pipeline(dot, p)?;
                    if p.decl.is_empty() {
                        out.push_str(&v.render());
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
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, dot: &Value, b: &Branch, out: &mut String) -> XResult<()> {
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
                _ if !rest.is_empty() || fin.is_some() => {
                    let msg = format!("can't give argument to non-function {first}");
                    return Err(err(c.pos, c, msg));
                }
                ArgKind::Nil => return Err(err(c.pos, c, "nil is not a command")),
                _ => self.arg(dot, first)?,
            });
        }
        Ok(fin.unwrap_or(Value::Nil))
    }

    fn arg(&mut self, dot: &Value, a: &Arg) -> XResult<Value> {
        let fields = |v: Value, names: &[String]| {
            names
                .iter()
                .try_fold(v, |v, f| v.field(f))
                .map_err(|m| err(a.pos, a, m))
        };
        Ok(match &a.kind {
            ArgKind::Dot => dot.clone(),
            ArgKind::Nil => Value::Nil,
            ArgKind::Bool(b) => Value::Bool(*b),
            ArgKind::Int(i, _) => Value::Int(*i),
            ArgKind::Float(f, _) => Value::Float(*f),
            ArgKind::Str(s, _) => Value::Str(s.clone()),
            ArgKind::Field(names) => fields(dot.clone(), names)?,
            ArgKind::Var(name, names) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone());
                let v = v.ok_or_else(|| err(a.pos, a, format!("undefined variable: {name}")))?;
                fields(v, names)?
            }
            ArgKind::Pipe(p) => self.pipeline(dot, p)?,
            ArgKind::Func(name) => self.call(dot, name, &[], None, a.pos, a)?,
            ArgKind::Chain(inner, names) => {
                let v = self.arg(dot, inner)?;
                fields(v, names)?
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
