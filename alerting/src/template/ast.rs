//! Template tree produced by the parser, with Go-style rendering of nodes for error context.

use std::fmt;
use std::sync::Arc;

/// A node of a template's item list.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
    /// `{{template "name" pipeline}}` (also what `{{block}}` leaves in place).
    Template(TmplCall),
}

/// A call of a named template.
#[derive(Debug, Clone)]
pub(crate) struct TmplCall {
    pub(crate) pos: usize,
    pub(crate) name: String,
    pub(crate) pipe: Option<Pipe>,
}

/// Go's `parse.IsEmptyTree`: only whitespace text (definitions don't replace a template
/// of the same name with an empty one).
pub(crate) fn is_empty_tree(nodes: &[Node]) -> bool {
    nodes
        .iter()
        .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
}

/// A named template of a template set, with the source its positions refer to.
#[derive(Debug)]
pub(crate) struct Def {
    /// Template name (`define` name, or the file name for a file's top level).
    pub(crate) name: String,
    /// Name of the text it was parsed from (for error locations).
    pub(crate) file: String,
    pub(crate) src: Arc<str>,
    pub(crate) nodes: Vec<Node>,
}

/// The pipeline and bodies of an `if`, `with` or `range`.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub(crate) pipe: Pipe,
    pub(crate) list: Vec<Node>,
    pub(crate) else_list: Vec<Node>,
}

/// A pipeline, optionally declaring (`:=`) or assigning (`=`) variables.
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    pub(crate) decl: Vec<String>,
    pub(crate) assign: bool,
    pub(crate) cmds: Vec<Cmd>,
}

/// One `|`-separated stage: a function/value and its arguments.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg>,
}

/// An operand with its byte offset.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub(crate) pos: usize,
    pub(crate) kind: ArgKind,
}

/// Operand kinds; literals keep their source text for printing.
#[derive(Debug, Clone)]
pub(crate) enum ArgKind {
    Func(String),
    Dot,
    Nil,
    Bool(bool),
    Int(i64, String),
    Float(f64, String),
    Str(String, String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Pipe(Box<Pipe>),
    Chain(Box<Arg>, Vec<String>),
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            let op = if self.assign { "=" } else { ":=" };
            write!(f, "{} {op} ", self.decl.join(", "))?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for TmplCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pipe {
            Some(p) => write!(f, "{{{{template {:?} {p}}}}}", self.name),
            None => write!(f, "{{{{template {:?}}}}}", self.name),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields =
            |f: &mut fmt::Formatter<'_>, v: &[String]| v.iter().try_for_each(|x| write!(f, ".{x}"));
        match &self.kind {
            ArgKind::Func(s) | ArgKind::Int(_, s) | ArgKind::Float(_, s) | ArgKind::Str(_, s) => {
                f.write_str(s)
            }
            ArgKind::Dot => f.write_str("."),
            ArgKind::Nil => f.write_str("nil"),
            ArgKind::Bool(b) => write!(f, "{b}"),
            ArgKind::Field(v) => fields(f, v),
            ArgKind::Var(n, v) => {
                f.write_str(n)?;
                fields(f, v)
            }
            ArgKind::Pipe(p) => write!(f, "({p})"),
            ArgKind::Chain(a, v) => {
                write!(f, "{a}")?;
                fields(f, v)
            }
        }
    }
}
