//! Parser: builds the template tree from tokens, checking function names, variable scopes
//! and `break`/`continue` placement at parse time like Go's `text/template/parse`.
//! Notification templates also get `define`, `template` and `block`.

use super::ast::{Arg, ArgKind, Branch, Cmd, Node, Pipe, TmplCall, is_empty_tree};
use super::funcs::is_func;
use super::lex::{Tok, Token, lex};

/// Words that start control actions and can't be used as function names.
pub(crate) const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "break", "continue", "define", "template", "block",
];

/// A parse failure at a byte offset.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub(crate) pos: usize,
    pub(crate) msg: String,
}

type PResult<T> = Result<T, ParseError>;

/// Why an item list stopped.
enum Stop {
    Eof,
    End,
    Else,
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    eof: Token,
    vars: Vec<String>,
    range_depth: usize,
    /// Notification-template mode: Alertmanager's functions and `define`/`template`/`block`.
    notify: bool,
    /// Control structures (or definitions) enclosing the current list.
    nesting: usize,
    defs: Vec<(String, Vec<Node>)>,
}

/// A parsed text: its top-level nodes and the templates it defines, in order.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) nodes: Vec<Node>,
    pub(crate) defs: Vec<(String, Vec<Node>)>,
}

/// Parses a complete template; `notify` selects notification-template mode.
pub(crate) fn parse(src: &str, notify: bool) -> PResult<Parsed> {
    let toks = lex(src).map_err(|(pos, msg)| ParseError { pos, msg })?;
    let eof = Token {
        tok: Tok::Eof,
        pos: src.len(),
        spaced: false,
    };
    let mut p = Parser {
        toks,
        i: 0,
        eof,
        vars: vec!["$".into()],
        range_depth: 0,
        notify,
        nesting: 0,
        defs: Vec::new(),
    };
    match p.list()? {
        (nodes, Stop::Eof) => Ok(Parsed {
            nodes,
            defs: p.defs,
        }),
        (_, Stop::End) => Err(p.err("unexpected {{end}}")),
        (_, Stop::Else) => Err(p.err("unexpected {{else}}")),
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        self.toks.get(self.i).unwrap_or(&self.eof)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.i = (self.i + 1).min(self.toks.len());
        t
    }

    /// An error located at the most recently consumed token.
    fn err(&self, msg: impl Into<String>) -> ParseError {
        let pos = self
            .i
            .checked_sub(1)
            .and_then(|i| self.toks.get(i))
            .map_or(0, |t| t.pos);
        ParseError {
            pos,
            msg: msg.into(),
        }
    }

    fn keyword(&self) -> Option<&str> {
        match &self.peek().tok {
            Tok::Ident(k) if KEYWORDS.contains(&k.as_str()) => Some(k),
            _ => None,
        }
    }

    fn expect_right(&mut self, ctx: &str) -> PResult<()> {
        let t = self.next();
        if t.tok == Tok::Right {
            Ok(())
        } else {
            Err(self.err(format!("unexpected {} in {ctx}", t.tok.describe())))
        }
    }

    /// Parses text and actions until EOF, `{{end}}` or `{{else`.
    fn list(&mut self) -> PResult<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        loop {
            match self.next().tok {
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Eof => return Ok((nodes, Stop::Eof)),
                _ => {
                    let kw = self.keyword().map(str::to_string);
                    let kw = kw.filter(|k| k != "define" || !self.notify || self.nesting == 0);
                    match kw.as_deref() {
                        Some("end") => {
                            self.next();
                            self.expect_right("end")?;
                            return Ok((nodes, Stop::End));
                        }
                        Some("else") => {
                            self.next();
                            return Ok((nodes, Stop::Else));
                        }
                        Some(k @ ("if" | "with" | "range")) => {
                            self.next();
                            nodes.push(self.control(k)?);
                        }
                        Some(k @ ("break" | "continue")) => {
                            self.next();
                            if self.range_depth == 0 {
                                return Err(self.err(format!("{{{{{k}}}}} outside {{{{range}}}}")));
                            }
                            self.expect_right(k)?;
                            nodes.push(if k == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        Some("define") if self.notify => {
                            self.next();
                            self.define()?;
                        }
                        Some("template") if self.notify => {
                            self.next();
                            nodes.push(self.template_call()?);
                        }
                        Some("block") if self.notify => {
                            self.next();
                            nodes.push(self.block()?);
                        }
                        Some(k) => {
                            self.next();
                            return Err(
                                self.err(format!("{{{{{k}}}}} is not supported in rule templates"))
                            );
                        }
                        None => nodes.push(Node::Action(self.pipeline("command", false)?)),
                    }
                }
            }
        }
    }

    /// Parses `if`/`with`/`range` after the keyword, through the matching `{{end}}`.
    fn control(&mut self, kw: &str) -> PResult<Node> {
        let mark = self.vars.len();
        let pipe = self.pipeline(kw, false)?;
        let in_range = usize::from(kw == "range");
        self.range_depth += in_range;
        // Errors abandon the whole parse, so the counter needs no restoring on them.
        self.nesting += 1;
        let (list, stop) = self.list()?;
        self.range_depth -= in_range;
        let else_list = match stop {
            Stop::Eof => return Err(self.err("unexpected EOF")),
            Stop::End => Vec::new(),
            Stop::Else if kw != "range" && self.keyword() == Some(kw) => {
                self.next();
                vec![self.control(kw)?]
            }
            Stop::Else => {
                self.expect_right("else")?;
                match self.list()? {
                    (l, Stop::End) => l,
                    (_, Stop::Eof) => return Err(self.err("unexpected EOF")),
                    (_, Stop::Else) => return Err(self.err("expected end; found {{else}}")),
                }
            }
        };
        self.vars.truncate(mark);
        self.nesting -= 1;
        let b = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match kw {
            "if" => Node::If(b),
            "with" => Node::With(b),
            _ => Node::Range(b),
        })
    }

    /// The quoted name after `define`, `template` or `block`, and its offset.
    fn template_name(&mut self, ctx: &str) -> PResult<(String, usize)> {
        let t = self.next();
        match t.tok {
            Tok::Str(name, _) => Ok((name, t.pos)),
            other => Err(self.err(format!("unexpected {} in {ctx}", other.describe()))),
        }
    }

    /// Parses a definition body through its `{{end}}` with fresh variable scope, like a
    /// separate Go parse tree.
    fn sub_tree(&mut self, ctx: &str) -> PResult<Vec<Node>> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        self.nesting += 1;
        let listed = self.list();
        self.nesting -= 1;
        self.vars = vars;
        self.range_depth = range_depth;
        match listed? {
            (nodes, Stop::End) => Ok(nodes),
            (_, Stop::Eof) => Err(self.err("unexpected EOF")),
            (_, Stop::Else) => Err(self.err(format!("unexpected {{{{else}}}} in {ctx}"))),
        }
    }

    /// Records a definition; like Go, an empty body never replaces a non-empty one and two
    /// non-empty bodies for one name in the same text are an error.
    fn add_def(&mut self, name: String, body: Vec<Node>) -> PResult<()> {
        match self.defs.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) if is_empty_tree(old) => *old = body,
            Some(_) if is_empty_tree(&body) => {}
            Some(_) => {
                let msg = format!("template: multiple definition of template {name:?}");
                return Err(self.err(msg));
            }
            None => self.defs.push((name, body)),
        }
        Ok(())
    }

    /// `{{define "name"}}...{{end}}` after the keyword (top level only).
    fn define(&mut self) -> PResult<()> {
        let (name, _) = self.template_name("define clause")?;
        self.expect_right("define clause")?;
        let body = self.sub_tree("define clause")?;
        self.add_def(name, body)
    }

    /// `{{template "name"}}` or `{{template "name" pipeline}}` after the keyword.
    fn template_call(&mut self) -> PResult<Node> {
        let (name, pos) = self.template_name("template clause")?;
        let pipe = if self.peek().tok == Tok::Right {
            self.next();
            None
        } else {
            Some(self.pipeline("template clause", false)?)
        };
        Ok(Node::Template(TmplCall { pos, name, pipe }))
    }

    /// `{{block "name" pipeline}}...{{end}}`: a definition plus a call of it.
    fn block(&mut self) -> PResult<Node> {
        let (name, pos) = self.template_name("block clause")?;
        let pipe = self.pipeline("block clause", false)?;
        let body = self.sub_tree("block clause")?;
        self.add_def(name.clone(), body)?;
        Ok(Node::Template(TmplCall {
            pos,
            name,
            pipe: Some(pipe),
        }))
    }

    /// Parses a pipeline up to `}}` (or `)` when `paren`), with optional declarations.
    fn pipeline(&mut self, ctx: &str, paren: bool) -> PResult<Pipe> {
        let pos = self.peek().pos;
        let (mut decl, mut assign, mut declared) = (Vec::new(), false, false);
        while let Tok::Var(name) = self.peek().tok.clone() {
            match self.toks.get(self.i + 1).map(|t| &t.tok) {
                Some(op @ (Tok::Declare | Tok::Assign)) => {
                    assign = *op == Tok::Assign;
                    declared = true;
                    self.i += 2;
                    if assign && !self.vars.contains(&name) {
                        return Err(self.err(format!("undefined variable {name:?}")));
                    }
                    decl.push(name);
                    break;
                }
                Some(Tok::Comma) if ctx == "range" && decl.is_empty() => {
                    self.i += 2;
                    decl.push(name);
                }
                Some(Tok::Comma) => return Err(self.err(format!("too many declarations in {ctx}"))),
                _ => break,
            }
        }
        if !decl.is_empty() && !declared {
            return Err(self.err("range can only initialize variables"));
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        let mut cmds = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Right if !paren => break,
                Tok::RParen if paren => break,
                Tok::Right => return Err(self.err("unclosed left paren")),
                Tok::RParen => {
                    self.next();
                    return Err(self.err("unexpected right paren"));
                }
                _ => cmds.push(self.command()?),
            }
        }
        self.next();
        if cmds.is_empty() {
            return Err(self.err(format!("missing value for {ctx}")));
        }
        for (i, c) in cmds.iter().enumerate().skip(1) {
            if let Some(a) = c.args.first() {
                use ArgKind as K;
                if matches!(
                    a.kind,
                    K::Bool(_) | K::Dot | K::Nil | K::Int(..) | K::Float(..) | K::Str(..)
                ) {
                    return Err(self.err(format!(
                        "non executable command in pipeline stage {}",
                        i + 1
                    )));
                }
            }
        }
        Ok(Pipe {
            pos,
            decl,
            assign,
            cmds,
        })
    }

    /// Parses one command: operands separated by spaces, ending at `|`, `}}` or `)`.
    fn command(&mut self) -> PResult<Cmd> {
        let pos = self.peek().pos;
        let mut args = Vec::new();
        loop {
            let got = self.operand()?;
            let t = self.peek().clone();
            match t.tok {
                Tok::Right | Tok::RParen => {}
                Tok::Pipe => {
                    self.next();
                }
                _ if got.is_some() && t.spaced => {
                    args.extend(got);
                    continue;
                }
                _ => {
                    self.next();
                    return Err(self.err(format!("unexpected {} in operand", t.tok.describe())));
                }
            }
            args.extend(got);
            break;
        }
        if args.is_empty() {
            return Err(self.err("empty command"));
        }
        Ok(Cmd { pos, args })
    }

    /// A term followed by any directly attached `.Field` chain.
    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Tok::Field(f) = &self.peek().tok {
            if self.peek().spaced {
                break;
            }
            fields.push(f.clone());
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        let pos = term.pos;
        let kind = match term.kind {
            ArgKind::Field(mut v) => {
                v.extend(fields);
                ArgKind::Field(v)
            }
            ArgKind::Var(n, mut v) => {
                v.extend(fields);
                ArgKind::Var(n, v)
            }
            ArgKind::Func(_) | ArgKind::Pipe(_) | ArgKind::Chain(..) => {
                ArgKind::Chain(Box::new(term), fields)
            }
            _ => return Err(self.err(format!("unexpected . after term {:?}", term.to_string()))),
        };
        Ok(Some(Arg { pos, kind }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let t = self.peek().clone();
        let kind = match t.tok {
            Tok::Ident(name) if KEYWORDS.contains(&name.as_str()) => return Ok(None),
            Tok::Ident(name) if !is_func(&name, self.notify) => {
                self.next();
                return Err(self.err(format!("function {name:?} not defined")));
            }
            Tok::Ident(name) => ArgKind::Func(name),
            Tok::Var(name) => {
                if !self.vars.contains(&name) {
                    self.next();
                    return Err(self.err(format!("undefined variable {name:?}")));
                }
                ArgKind::Var(name, Vec::new())
            }
            Tok::Dot => ArgKind::Dot,
            Tok::Nil => ArgKind::Nil,
            Tok::Bool(b) => ArgKind::Bool(b),
            Tok::Field(f) => ArgKind::Field(vec![f]),
            Tok::Char(v, text) => ArgKind::Int(v, text),
            Tok::Str(v, raw) => ArgKind::Str(v, raw),
            Tok::Num(text) => match number(&text) {
                Some(k) => k,
                None => {
                    self.next();
                    return Err(self.err(format!("illegal number syntax: {text:?}")));
                }
            },
            Tok::LParen => {
                self.next();
                let p = self.pipeline("parenthesized pipeline", true)?;
                return Ok(Some(Arg {
                    pos: t.pos,
                    kind: ArgKind::Pipe(Box::new(p)),
                }));
            }
            _ => return Ok(None),
        };
        self.next();
        Ok(Some(Arg { pos: t.pos, kind }))
    }
}

/// Go's constant typing: hex and plain digits are `int`; `.`/exponent make `float64`.
fn number(text: &str) -> Option<ArgKind> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let sign = if neg { -1 } else { 1 };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16)
            .ok()
            .map(|v| ArgKind::Int(sign * v, text.into()));
    }
    if body.contains(['.', 'e', 'E']) {
        return clean.parse().ok().map(|v| ArgKind::Float(v, text.into()));
    }
    clean.parse().ok().map(|v| ArgKind::Int(v, text.into()))
}
