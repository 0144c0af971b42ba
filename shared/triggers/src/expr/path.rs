//! The JSONPath inside a `$(…)` expression, parsed as Kubernetes' client-go
//! (`k8s.io/client-go/util/jsonpath`) parses it, after Tekton's relaxation that lets the
//! braces and the leading dot be left out: `body.a`, `.body.a`, `{body.a}` and `{.body.a}` are
//! the same path.
//!
//! The grammar, as client-go reads the text of one `{…}` action:
//!
//! - `.name` — a field; it runs to the next unescaped space, tab, line break, `.`, `,`, `[`,
//!   `]`, `$`, `@`, `{` or `}`, and every `\` is dropped from it, so `\.` keeps a dot in the
//!   name (`labels.app\.kubernetes\.io/name`). `.*` is every value of an object or array.
//! - `..` — recursive descent: the value and every value under it that has children.
//! - `[n]`, `[start:end]`, `[start:end:step]`, with negative positions counting from the
//!   end, `[*]` (every element), `[]` (client-go reads it as `[0]`), `['name']` (the same as
//!   `.name`, so `['a.b']` is still two fields), and unions `[0,2]`, `['a','b']`.
//! - `[?(@.a == 'x')]` — a filter over an array's elements with `==`, `!=`, `<`, `<=`, `>`,
//!   `>=`, or `[?(@.a)]` for "has `a`". Operands are paths from the element (`@`), quoted
//!   strings (Go escapes), numbers and `true`/`false`.
//! - `@` and `$` are skipped (both mean "the current value"); spaces between parts are skipped.

use std::fmt;

use super::Problem;

/// A parsed expression: the nodes client-go would evaluate, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The action text client-go parses: `.` followed by the relaxed expression.
    action: String,
    nodes: Vec<Node>,
    /// The byte in `action` where each node ends; `prefix` cuts the text there.
    ends: Vec<usize>,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// `.name`: a key of an object.
    Field(String),
    /// `.*`: every value of an object, every element of an array, every byte of a string.
    Wildcard,
    /// `..`: the value and its descendants that have children, depth first.
    Recursive,
    /// `[n]`, `[a:b]`, `[a:b:c]`, `[*]`.
    Index(Slice),
    /// `[x,y]`: each alternative applied to the same values, results concatenated.
    Union(Vec<Vec<Node>>),
    /// `[?(…)]`.
    Filter(Box<Filter>),
    /// A quoted string: the same text whatever the input.
    Text(String),
    /// A number or boolean: the constant once per input value.
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// One position of a slice, as client-go keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub value: i64,
    pub known: bool,
    /// `[n]`'s end: `n + 1`, made relative to the length when it wraps to 0.
    pub derived: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub start: Bound,
    pub end: Bound,
    /// `None` means 1; a given step is always positive.
    pub step: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub left: Vec<Node>,
    /// `None`: keep the elements for which `left` finds anything.
    pub op: Option<(Op, Vec<Node>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// What an expression's first field names in Tekton's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Body,
    Header,
    Extensions,
    Context,
}

impl Root {
    /// Tekton's event is a Go struct: a field matches its JSON name or its Go name.
    pub fn from_field(name: &str) -> Option<Self> {
        Some(match name {
            "body" | "Body" => Self::Body,
            "header" | "Header" => Self::Header,
            "extensions" | "Extensions" => Self::Extensions,
            "context" | "Context" => Self::Context,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Body => "body",
            Self::Header => "header",
            Self::Extensions => "extensions",
            Self::Context => "context",
        }
    }
}

impl Path {
    /// Parses the text between `$(` and its `)`. The empty expression `$()` has no nodes
    /// (Tekton resolves it to the empty string).
    pub fn parse(expression: &str) -> Result<Self, Problem> {
        if expression.is_empty() {
            return Ok(Self {
                action: String::new(),
                nodes: Vec::new(),
                ends: Vec::new(),
            });
        }
        let (spec, spec_start) = relax(expression)?;
        let action = format!(".{spec}");
        let shift = spec_start as isize - 1;
        let mut parser = Parser {
            text: &action,
            pos: 0,
            shift,
            fixed: None,
        };
        let mut nodes = Vec::new();
        let mut ends = Vec::new();
        parser.list(&mut nodes, Some(&mut ends))?;
        Ok(Self {
            action,
            nodes,
            ends,
        })
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// What the first field names, when the path starts with a field of Tekton's event.
    pub fn root(&self) -> Option<Root> {
        match self.nodes.first() {
            Some(Node::Field(name)) => Root::from_field(name),
            _ => None,
        }
    }

    /// The expression's text up to the end of node `n - 1` (`body.a` for `body.a[0]` and 2):
    /// names the value an error is about, in the user's own words.
    pub fn prefix(&self, n: usize) -> String {
        let end = match n.checked_sub(1) {
            None => 0,
            Some(last) => self
                .ends
                .get(last)
                .or(self.ends.last())
                .copied()
                .unwrap_or(0),
        };
        self.action.get(1..end).unwrap_or_default().to_owned()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.action.get(1..).unwrap_or_default())
    }
}

/// Tekton's `relaxedJSONPathExpression`: `{.x}`, `{x}`, `.x` and `x` all become the field spec
/// `x`; braces anywhere else are refused. Returns the spec and where it starts.
fn relax(expression: &str) -> Result<(&str, usize), Problem> {
    let (inner, start) = match expression
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
    {
        Some(inner) => (inner, 1),
        None => (expression, 0),
    };
    if let Some(at) = inner.find(['{', '}']) {
        let what = "braces may only wrap the whole expression";
        return Err(syntax(what, start + at));
    }
    // The leading dot is optional, but the spec after it cannot be empty: `{.}` is `..`.
    match inner.strip_prefix('.') {
        Some(rest) if !rest.is_empty() => Ok((rest, start + 1)),
        _ if inner.is_empty() => Err(syntax("expected a path inside the braces", start)),
        _ => Ok((inner, start)),
    }
}

fn syntax(what: impl Into<String>, offset: usize) -> Problem {
    Problem::Syntax {
        what: what.into(),
        offset,
    }
}

/// client-go's parser over one action's text.
struct Parser<'t> {
    text: &'t str,
    pos: usize,
    /// Added to positions to report offsets in the user's expression.
    shift: isize,
    /// Set for text client-go builds itself: every error points at the construct it came from.
    fixed: Option<usize>,
}

impl<'t> Parser<'t> {
    /// A parser for text client-go builds itself (`[part]` of a union, `.key` of `['key']`,
    /// the sides of a filter); its errors point at `at` in the user's expression.
    fn nested(text: &'t str, at: usize) -> Self {
        Self {
            text,
            pos: 0,
            shift: 0,
            fixed: Some(at),
        }
    }

    fn offset_of(&self, pos: usize) -> usize {
        self.fixed
            .unwrap_or_else(|| (pos as isize + self.shift).max(0) as usize)
    }

    fn error(&self, what: impl Into<String>, pos: usize) -> Problem {
        syntax(what, self.offset_of(pos))
    }

    fn rest(&self) -> &'t str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// client-go's `parseInsideAction` loop, to the end of the text. `ends` records where
    /// each node ends, for the top-level list.
    fn list(
        &mut self,
        nodes: &mut Vec<Node>,
        mut ends: Option<&mut Vec<usize>>,
    ) -> Result<(), Problem> {
        loop {
            let before = nodes.len();
            let start = self.pos;
            if self.rest().starts_with("[?(") {
                nodes.push(self.filter()?);
            } else if self.rest().starts_with("..") {
                if matches!(nodes.last(), Some(Node::Recursive)) {
                    return Err(self.error("`..` cannot follow `..`", start));
                }
                self.pos += 2;
                nodes.push(Node::Recursive);
                if self.peek().is_some_and(is_alphanumeric) {
                    nodes.push(self.field()?);
                }
            } else {
                let Some(c) = self.bump() else {
                    return Ok(());
                };
                match c {
                    '\r' | '\n' => return Err(self.error("line break in a path", start)),
                    ' ' | '@' | '$' => {}
                    '[' => nodes.extend(self.bracket(start)?),
                    '"' | '\'' => nodes.push(Node::Text(self.quoted(c, start)?)),
                    '.' => nodes.push(self.field()?),
                    '+' | '-' => nodes.push(self.number(start)?),
                    c if c.is_numeric() => nodes.push(self.number(start)?),
                    c if is_alphanumeric(c) => nodes.push(self.identifier(start)?),
                    c => {
                        let what = format!("unexpected character `{c}`");
                        return Err(self.error(what, start));
                    }
                }
            }
            if let Some(ends) = ends.as_deref_mut() {
                ends.extend(std::iter::repeat_n(self.pos, nodes.len() - before));
            }
        }
    }

    /// client-go's `parseField`: up to an unescaped terminator, backslashes dropped; `*` alone
    /// is the wildcard. A `\` at the very end would escape client-go's closing `}` and leave
    /// the action unclosed.
    fn field(&mut self) -> Result<Node, Problem> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '\\' {
                self.bump();
                if self.bump().is_none() {
                    return Err(self.error("`\\` at the end escapes nothing", self.pos - 1));
                }
            } else if is_terminator(c) {
                break;
            } else {
                self.bump();
            }
        }
        let raw = &self.text[start..self.pos];
        Ok(if raw == "*" {
            Node::Wildcard
        } else {
            Node::Field(raw.replace('\\', ""))
        })
    }

    /// `true`, `false`; client-go's other identifiers (`range`, `end`) are not supported.
    fn identifier(&mut self, start: usize) -> Result<Node, Problem> {
        while self.peek().is_some_and(|c| !is_terminator(c)) {
            self.bump();
        }
        match &self.text[start..self.pos] {
            "true" => Ok(Node::Bool(true)),
            "false" => Ok(Node::Bool(false)),
            other => {
                let what = format!("unexpected word `{other}` (a field needs a leading `.`)");
                Err(self.error(what, start))
            }
        }
    }

    /// client-go's `parseNumber`: a sign, then digits and dots; an `int` if it is one, else a
    /// float.
    fn number(&mut self, start: usize) -> Result<Node, Problem> {
        while self.peek().is_some_and(|c| c == '.' || c.is_numeric()) {
            self.bump();
        }
        let text = &self.text[start..self.pos];
        if let Ok(int) = text.parse::<i64>() {
            return Ok(Node::Int(int));
        }
        match text.parse::<f64>() {
            Ok(float) if float.is_finite() => Ok(Node::Float(float)),
            _ => Err(self.error(format!("`{text}` is not a number"), start)),
        }
    }

    /// A quoted string, Go escapes allowed; a quote right after a `\` does not end it.
    fn quoted(&mut self, quote: char, start: usize) -> Result<String, Problem> {
        loop {
            match self.bump() {
                None | Some('\n') => return Err(self.error("unterminated quoted string", start)),
                Some(c) if c == quote && self.text.as_bytes()[self.pos - 2] != b'\\' => break,
                Some(_) => {}
            }
        }
        let inner = &self.text[start + 1..self.pos - 1];
        unquote(inner, quote).map_err(|what| self.error(what, start))
    }

    /// Everything from `[` to the first `]`: a union, a quoted key, or a slice.
    fn bracket(&mut self, start: usize) -> Result<Vec<Node>, Problem> {
        let inner_start = self.pos;
        loop {
            match self.bump() {
                None | Some('\n') => return Err(self.error("`[` is never closed", start)),
                Some(']') => break,
                Some(_) => {}
            }
        }
        let mut inner = &self.text[inner_start..self.pos - 1];
        if inner == "*" {
            inner = ":";
        }
        let at = self.offset_of(start);
        if inner.contains(',') {
            let alternatives = inner
                .split(',')
                .map(|part| {
                    let text = format!("[{}]", part.trim_matches(' '));
                    let mut nodes = Vec::new();
                    Parser::nested(&text, at).list(&mut nodes, None)?;
                    Ok(nodes)
                })
                .collect::<Result<_, Problem>>()?;
            return Ok(vec![Node::Union(alternatives)]);
        }
        if let Some(key) = inner
            .strip_prefix('\'')
            .and_then(|k| k.strip_suffix('\''))
            .filter(|k| !k.contains('\''))
        {
            // client-go parses `['k']` as the text `.k`.
            let text = format!(".{key}");
            let mut nodes = Vec::new();
            Parser::nested(&text, at).list(&mut nodes, None)?;
            return Ok(nodes);
        }
        slice(inner)
            .map(|s| vec![Node::Index(s)])
            .map_err(|what| syntax(what, at))
    }

    /// `[?(…)]`: the text up to the first `)` outside quotes, then `]`; split on the first run
    /// of `!<>=` characters into left, operator and right, as client-go's regular expression
    /// `^([^!<>=]+)([!<>=]+)(.+?)$` does.
    fn filter(&mut self) -> Result<Node, Problem> {
        let start = self.pos;
        self.pos += 3;
        let inner_start = self.pos;
        let (mut begin, mut end, mut pair) = (false, false, '\0');
        loop {
            match self.bump() {
                None | Some('\n') => return Err(self.error("`[?(` is never closed", start)),
                Some(c @ ('"' | '\'')) => {
                    if !begin {
                        begin = true;
                        pair = c;
                    } else if c == pair && self.text.as_bytes()[self.pos - 2] != b'\\' {
                        end = true;
                    }
                }
                Some(')') if begin == end => break,
                Some(_) => {}
            }
        }
        let inner = &self.text[inner_start..self.pos - 1];
        if self.bump() != Some(']') {
            return Err(self.error("expected `]` after the filter's `)`", self.pos));
        }
        let at = self.offset_of(start);
        let side = |text: &str| -> Result<Vec<Node>, Problem> {
            let mut nodes = Vec::new();
            Parser::nested(text, at).list(&mut nodes, None)?;
            Ok(nodes)
        };
        let filter = match split_comparison(inner) {
            None => Filter {
                left: side(inner)?,
                op: None,
            },
            Some((left, op, right)) => {
                let op = match op {
                    "==" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    other => return Err(syntax(format!("unknown operator `{other}`"), at)),
                };
                Filter {
                    left: side(left)?,
                    op: Some((op, side(right)?)),
                }
            }
        };
        Ok(Node::Filter(Box::new(filter)))
    }
}

/// client-go's `isTerminator`: what ends a field name.
fn is_terminator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
    )
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// Left, operator and right of a comparison filter, or `None` for an existence filter.
fn split_comparison(text: &str) -> Option<(&str, &str, &str)> {
    const OPERATOR: &[char] = &['!', '<', '>', '='];
    let op_start = text.find(OPERATOR).filter(|&i| i > 0)?;
    let op_len = text[op_start..]
        .find(|c: char| !OPERATOR.contains(&c))
        .unwrap_or(text.len() - op_start);
    let mut op_end = op_start + op_len;
    // The right side needs at least one character; the operator gives one back if it must.
    if op_end == text.len() {
        if op_len < 2 {
            return None;
        }
        op_end -= 1;
    }
    Some((&text[..op_start], &text[op_start..op_end], &text[op_end..]))
}

/// client-go's slice syntax `^(-?\d*)(:-?\d*)?(:-?\d*)?$`, with its defaults.
fn slice(text: &str) -> Result<Slice, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let well_formed = parts.len() <= 3
        && parts.iter().all(|p| {
            let digits = p.strip_prefix('-').unwrap_or(p);
            digits.bytes().all(|b| b.is_ascii_digit())
        });
    if !well_formed {
        return Err(format!(
            "`[{text}]` is not an index, a slice or a quoted key"
        ));
    }
    let number = |p: &str| {
        p.parse::<i64>()
            .map_err(|_| format!("`{p}` is not an array index"))
    };
    let start = match parts[0] {
        "" => Bound {
            value: 0,
            known: false,
            derived: false,
        },
        p => Bound {
            value: number(p)?,
            known: true,
            derived: false,
        },
    };
    let end = match parts.get(1) {
        // `[n]`: the end is n + 1, relative to the length if that wraps to 0.
        None => Bound {
            value: start.value.wrapping_add(1),
            known: true,
            derived: true,
        },
        Some(&"") => Bound {
            value: 0,
            known: false,
            derived: false,
        },
        Some(p) => Bound {
            value: number(p)?,
            known: true,
            derived: false,
        },
    };
    let step = match parts.get(2) {
        None | Some(&"") => None,
        Some(p) => match number(p)? {
            step if step > 0 => Some(step),
            _ => return Err(format!("the step of `[{text}]` must be above 0")),
        },
    };
    Ok(Slice { start, end, step })
}

/// Go's `strconv.UnquoteChar` loop over a quoted string's inside.
fn unquote(inner: &str, quote: char) -> Result<String, String> {
    if !inner.contains(['\\', quote]) {
        return Ok(inner.to_owned());
    }
    let bad = || format!("invalid escape in the string {quote}{inner}{quote}");
    let mut out = Vec::with_capacity(inner.len());
    let mut chars = inner.chars();
    let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some(acc * 16 + chars.next()?.to_digit(16)?))
    };
    while let Some(c) = chars.next() {
        if c == quote {
            return Err(bad());
        }
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let escaped = chars.next().ok_or_else(bad)?;
        let simple = match escaped {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '\'' | '"' if escaped == quote => Some(escaped as u8),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            continue;
        }
        match escaped {
            // `\xNN` and octal `\NNN` are single bytes in Go.
            'x' => out.push(hex(&mut chars, 2).ok_or_else(bad)? as u8),
            '0'..='7' => {
                let mut value = escaped.to_digit(8).unwrap_or_default();
                for _ in 0..2 {
                    value = value * 8 + chars.next().and_then(|d| d.to_digit(8)).ok_or_else(bad)?;
                }
                out.push(u8::try_from(value).map_err(|_| bad())?);
            }
            'u' | 'U' => {
                let n = if escaped == 'u' { 4 } else { 8 };
                let c = hex(&mut chars, n)
                    .and_then(char::from_u32)
                    .ok_or_else(bad)?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(bad()),
        }
    }
    String::from_utf8(out).map_err(|_| format!("the string {quote}{inner}{quote} is not UTF-8"))
}
