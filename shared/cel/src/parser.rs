//! A recursive-descent parser following the CEL grammar's precedence levels:
//! `?:`, `||`, `&&`, relations, `+ -`, `* / %`, unary `! -`, then member access and calls.
//!
//! Macros (`has`, `all`, `exists`, `exists_one`, `map`, `filter`) are expanded here.
//! Both the parser's recursion and the height of the tree it builds are bounded, so neither
//! parsing nor evaluation can exhaust the stack.

use std::sync::Arc;

use super::ast::{BinaryOp, Expr, ExprKind, MacroKind, UnaryOp};
use super::error::CompileError;
use super::func::Func;
use super::lexer::{RESERVED, Tok, Token, tokenize};
use super::value::Value;

/// The deepest the parser recurses (parentheses, lists, call arguments, …).
pub(crate) const MAX_NESTING: usize = 100;
/// The tallest expression tree accepted; chains such as `a + b + c` count one level per
/// operator (`&&` and `||` chains are balanced, so they count logarithmically).
pub(crate) const MAX_HEIGHT: usize = 200;

/// Parses a whole expression.
pub(crate) fn parse(source: &str) -> Result<Expr, CompileError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        source,
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = parser.expr()?;
    let token = parser.peek();
    if token.tok != Tok::Eof {
        return Err(parser.unexpected(token));
    }
    Ok(expr)
}

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Token {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> Token {
        self.tokens
            .get(self.pos + ahead)
            .or_else(|| self.tokens.last())
            .cloned()
            .unwrap_or(Token {
                tok: Tok::Eof,
                offset: self.source.len(),
            })
    }

    /// The current token, borrowed: most looks at it decide nothing, and a clone of an
    /// identifier or string token would allocate.
    fn current(&self) -> &Token {
        static EOF: Token = Token {
            tok: Tok::Eof,
            offset: 0,
        };
        self.tokens
            .get(self.pos)
            .or_else(|| self.tokens.last())
            .unwrap_or(&EOF)
    }

    /// Moves past the current token and hands it over (the parser never looks back, so the
    /// token is taken rather than copied).
    fn advance(&mut self) -> Token {
        match self.tokens.get_mut(self.pos) {
            Some(token) if token.tok != Tok::Eof => {
                self.pos += 1;
                Token {
                    tok: std::mem::replace(&mut token.tok, Tok::Eof),
                    offset: token.offset,
                }
            }
            Some(token) => token.clone(),
            None => Token {
                tok: Tok::Eof,
                offset: self.source.len(),
            },
        }
    }

    fn at_punct(&self, p: &str) -> bool {
        matches!(self.current().tok, Tok::Punct(q) if q == p)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.at_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), CompileError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.unexpected_expecting(self.peek(), p))
        }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> CompileError {
        CompileError::at(self.source, offset, message)
    }

    fn unexpected(&self, token: Token) -> CompileError {
        self.error(
            token.offset,
            format!("unexpected token {}", token.tok.describe()),
        )
    }

    fn unexpected_expecting(&self, token: Token, expected: &str) -> CompileError {
        self.error(
            token.offset,
            format!(
                "unexpected token {}, expected '{expected}'",
                token.tok.describe()
            ),
        )
    }

    /// Builds a node, enforcing [`MAX_HEIGHT`].
    fn node(&self, kind: ExprKind, offset: usize) -> Result<Expr, CompileError> {
        let mut expr = Expr {
            kind,
            offset,
            height: 1,
        };
        expr.height = 1 + expr.tallest_child();
        if expr.height > MAX_HEIGHT {
            return Err(self.error(
                offset,
                format!("expression is nested too deeply (more than {MAX_HEIGHT} levels)"),
            ));
        }
        Ok(expr)
    }

    /// `expr := or ('?' or ':' expr)?`, with the recursion bound.
    fn expr(&mut self) -> Result<Expr, CompileError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let offset = self.peek().offset;
            return Err(self.error(
                offset,
                format!("expression is nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        let result = self.conditional();
        self.depth -= 1;
        result
    }

    fn conditional(&mut self) -> Result<Expr, CompileError> {
        let cond = self.or()?;
        if !self.at_punct("?") {
            return Ok(cond);
        }
        let offset = self.advance().offset;
        let then = self.or()?;
        self.expect_punct(":")?;
        let otherwise = self.expr()?;
        self.node(
            ExprKind::Conditional(Box::new(cond), Box::new(then), Box::new(otherwise)),
            offset,
        )
    }

    fn or(&mut self) -> Result<Expr, CompileError> {
        let first = self.and()?;
        if !self.at_punct("||") {
            return Ok(first);
        }
        let mut operands = vec![first];
        let mut offsets = Vec::new();
        while self.at_punct("||") {
            offsets.push(self.advance().offset);
            operands.push(self.and()?);
        }
        self.balance(operands, &offsets, true)
    }

    fn and(&mut self) -> Result<Expr, CompileError> {
        let first = self.relation()?;
        if !self.at_punct("&&") {
            return Ok(first);
        }
        let mut operands = vec![first];
        let mut offsets = Vec::new();
        while self.at_punct("&&") {
            offsets.push(self.advance().offset);
            operands.push(self.relation()?);
        }
        self.balance(operands, &offsets, false)
    }

    /// Joins a chain of `&&` or `||` operands into a balanced tree, so long chains stay
    /// shallow. The operators are commutative, so the shape does not change the result.
    fn balance(
        &self,
        mut operands: Vec<Expr>,
        offsets: &[usize],
        or: bool,
    ) -> Result<Expr, CompileError> {
        if operands.len() == 1 {
            return operands
                .pop()
                .ok_or_else(|| self.error(0, "empty expression"));
        }
        let mid = operands.len() / 2;
        let right = operands.split_off(mid);
        let offset = offsets.get(mid - 1).copied().unwrap_or(0);
        let left = self.balance(operands, offsets.get(..mid - 1).unwrap_or(&[]), or)?;
        let right = self.balance(right, offsets.get(mid..).unwrap_or(&[]), or)?;
        let kind = if or {
            ExprKind::Or(Box::new(left), Box::new(right))
        } else {
            ExprKind::And(Box::new(left), Box::new(right))
        };
        self.node(kind, offset)
    }

    fn relation(&mut self) -> Result<Expr, CompileError> {
        let mut left = self.additive()?;
        loop {
            let token = self.current();
            let offset = token.offset;
            let op = match token.tok {
                Tok::Punct("==") => BinaryOp::Eq,
                Tok::Punct("!=") => BinaryOp::Ne,
                Tok::Punct("<") => BinaryOp::Lt,
                Tok::Punct("<=") => BinaryOp::Le,
                Tok::Punct(">") => BinaryOp::Gt,
                Tok::Punct(">=") => BinaryOp::Ge,
                Tok::In => BinaryOp::In,
                _ => return Ok(left),
            };
            self.advance();
            let right = self.additive()?;
            left = self.node(
                ExprKind::Binary(op, Box::new(left), Box::new(right)),
                offset,
            )?;
        }
    }

    fn additive(&mut self) -> Result<Expr, CompileError> {
        let mut left = self.multiplicative()?;
        loop {
            let token = self.current();
            let offset = token.offset;
            let op = match token.tok {
                Tok::Punct("+") => BinaryOp::Add,
                Tok::Punct("-") => BinaryOp::Sub,
                _ => return Ok(left),
            };
            self.advance();
            let right = self.multiplicative()?;
            left = self.node(
                ExprKind::Binary(op, Box::new(left), Box::new(right)),
                offset,
            )?;
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, CompileError> {
        let mut left = self.unary()?;
        loop {
            let token = self.current();
            let offset = token.offset;
            let op = match token.tok {
                Tok::Punct("*") => BinaryOp::Mul,
                Tok::Punct("/") => BinaryOp::Div,
                Tok::Punct("%") => BinaryOp::Rem,
                _ => return Ok(left),
            };
            self.advance();
            let right = self.unary()?;
            left = self.node(
                ExprKind::Binary(op, Box::new(left), Box::new(right)),
                offset,
            )?;
        }
    }

    /// `unary := member | '!'+ member | '-'+ member`.
    fn unary(&mut self) -> Result<Expr, CompileError> {
        let op = match self.current().tok {
            Tok::Punct("!") => UnaryOp::Not,
            Tok::Punct("-") => UnaryOp::Neg,
            _ => return self.member(),
        };
        let symbol = if op == UnaryOp::Not { "!" } else { "-" };
        let mut offsets = Vec::new();
        while self.at_punct(symbol) {
            offsets.push(self.advance().offset);
        }
        let literal = match (&self.current().tok, &self.peek_at(1).tok) {
            (Tok::Int(n), next) if !matches!(next, Tok::Punct("." | "[" | "(")) => Some(*n),
            _ => None,
        };
        let mut operand = match (op, literal) {
            // A negative integer literal, so that the most negative int can be written.
            (UnaryOp::Neg, Some(n)) => {
                let literal = self.advance();
                let offset = offsets.pop().unwrap_or(literal.offset);
                let value = 0i64.checked_sub_unsigned(n).ok_or_else(|| {
                    self.error(offset, format!("integer literal -{n} is out of range"))
                })?;
                self.node(ExprKind::Literal(Value::Int(value)), offset)?
            }
            _ => self.member()?,
        };
        while let Some(offset) = offsets.pop() {
            operand = self.node(ExprKind::Unary(op, Box::new(operand)), offset)?;
        }
        Ok(operand)
    }

    /// `member := primary ('.' IDENT ('(' args ')')? | '[' expr ']')*`.
    fn member(&mut self) -> Result<Expr, CompileError> {
        let mut expr = self.primary()?;
        loop {
            let token = self.current();
            let offset = token.offset;
            match token.tok {
                Tok::Punct(".") => {
                    self.advance();
                    let name_token = self.advance();
                    let name = match &name_token.tok {
                        Tok::QuotedIdent(name) => {
                            expr = self.node(
                                ExprKind::Select {
                                    operand: Box::new(expr),
                                    field: name.as_str().into(),
                                    test_only: false,
                                },
                                name_token.offset,
                            )?;
                            continue;
                        }
                        Tok::Ident(name) => name.clone(),
                        Tok::True => "true".into(),
                        Tok::False => "false".into(),
                        Tok::Null => "null".into(),
                        Tok::In => "in".into(),
                        _ => return Err(self.unexpected(name_token)),
                    };
                    if self.at_punct("(") {
                        self.advance();
                        let args = self.args(")")?;
                        expr = self.call(&name, Some(expr), args, name_token.offset)?;
                    } else {
                        expr = self.node(
                            ExprKind::Select {
                                operand: Box::new(expr),
                                field: name.into(),
                                test_only: false,
                            },
                            name_token.offset,
                        )?;
                    }
                }
                Tok::Punct("[") => {
                    self.advance();
                    let index = self.expr()?;
                    self.expect_punct("]")?;
                    expr = self.node(
                        ExprKind::Index {
                            operand: Box::new(expr),
                            index: Box::new(index),
                        },
                        offset,
                    )?;
                }
                _ => return Ok(expr),
            }
        }
    }

    /// Comma-separated expressions up to `close` (consumed); a trailing comma is allowed.
    fn args(&mut self, close: &str) -> Result<Vec<Expr>, CompileError> {
        let mut args = Vec::new();
        while !self.eat_punct(close) {
            args.push(self.expr()?);
            if !self.eat_punct(",") {
                self.expect_punct(close)?;
                break;
            }
        }
        Ok(args)
    }

    fn primary(&mut self) -> Result<Expr, CompileError> {
        let token = self.advance();
        let offset = token.offset;
        let literal = |value| self.node(ExprKind::Literal(value), offset);
        match token.tok {
            Tok::Int(n) => {
                let value = i64::try_from(n).map_err(|_| {
                    self.error(offset, format!("integer literal {n} is out of range"))
                })?;
                literal(Value::Int(value))
            }
            Tok::Uint(n) => literal(Value::Uint(n)),
            Tok::Double(d) => literal(Value::Double(d)),
            Tok::String(s) => literal(Value::String(s.into())),
            Tok::Bytes(b) => literal(Value::Bytes(b.into())),
            Tok::True => literal(Value::Bool(true)),
            Tok::False => literal(Value::Bool(false)),
            Tok::Null => literal(Value::Null),
            Tok::Ident(name) => {
                if RESERVED.contains(&name.as_str()) {
                    return Err(self.error(
                        offset,
                        format!("reserved word '{name}' cannot be used as a name"),
                    ));
                }
                if self.eat_punct("(") {
                    let args = self.args(")")?;
                    self.call(&name, None, args, offset)
                } else if self.at_punct("{") {
                    Err(self.error(
                        offset,
                        format!("message construction '{name}{{…}}' is not supported"),
                    ))
                } else {
                    self.node(ExprKind::Ident(name.into()), offset)
                }
            }
            Tok::Punct("(") => {
                let inner = self.expr()?;
                self.expect_punct(")")?;
                Ok(inner)
            }
            Tok::Punct("[") => {
                let items = self.args("]")?;
                self.node(ExprKind::List(items), offset)
            }
            Tok::Punct("{") => {
                let mut entries = Vec::new();
                while !self.eat_punct("}") {
                    let key = self.expr()?;
                    self.expect_punct(":")?;
                    let value = self.expr()?;
                    entries.push((key, value));
                    if !self.eat_punct(",") {
                        self.expect_punct("}")?;
                        break;
                    }
                }
                self.node(ExprKind::Map(entries), offset)
            }
            Tok::Punct(".") => Err(self.error(
                offset,
                "unexpected token '.': fully qualified names are not supported",
            )),
            _ => Err(self.unexpected(token)),
        }
    }

    /// A call, or the macro it spells.
    fn call(
        &self,
        name: &str,
        target: Option<Expr>,
        mut args: Vec<Expr>,
        offset: usize,
    ) -> Result<Expr, CompileError> {
        let macro_kind = match name {
            "all" => Some(MacroKind::All),
            "exists" => Some(MacroKind::Exists),
            "exists_one" => Some(MacroKind::ExistsOne),
            "map" => Some(MacroKind::Map),
            "filter" => Some(MacroKind::Filter),
            "sortBy" => Some(MacroKind::SortBy),
            _ => None,
        };
        if let Some(t) = &target
            && matches!(&t.kind, ExprKind::Ident(ns) if &**ns == "math")
            && (name == "greatest" || name == "least")
        {
            return self.min_max(name, args, offset);
        }
        if macro_kind == Some(MacroKind::SortBy)
            && let Some(t) = &target
            && !matches!(
                t.kind,
                ExprKind::List(_)
                    | ExprKind::Select { .. }
                    | ExprKind::Ident(_)
                    | ExprKind::Comprehension { .. }
                    | ExprKind::Call { .. }
            )
        {
            return Err(self.error(
                t.offset,
                "sortBy can only be applied to a list, identifier, comprehension, call or select expression",
            ));
        }
        match (name, target, macro_kind) {
            ("has", None, _) => {
                let [arg] = <[Expr; 1]>::try_from(args).map_err(|_| {
                    self.error(
                        offset,
                        "has() takes exactly one argument, a field selection",
                    )
                })?;
                match arg.kind {
                    ExprKind::Select { operand, field, .. } => self.node(
                        ExprKind::Select {
                            operand,
                            field,
                            test_only: true,
                        },
                        offset,
                    ),
                    _ => Err(self.error(
                        arg.offset,
                        "invalid argument to has(): expected a field selection such as has(body.field)",
                    )),
                }
            }
            (_, Some(range), Some(kind)) => {
                let wanted = if kind == MacroKind::Map {
                    "2 or 3"
                } else {
                    "2"
                };
                let arity_ok = args.len() == 2 || (kind == MacroKind::Map && args.len() == 3);
                if !arity_ok {
                    return Err(self.error(
                        offset,
                        format!(
                            "macro '{name}' takes {wanted} arguments, got {}",
                            args.len()
                        ),
                    ));
                }
                let body = args
                    .pop()
                    .ok_or_else(|| self.error(offset, "missing argument"))?;
                let filter = if args.len() == 2 { args.pop() } else { None };
                let var_expr = args
                    .pop()
                    .ok_or_else(|| self.error(offset, "missing argument"))?;
                let ExprKind::Ident(var) = var_expr.kind else {
                    return Err(self.error(
                        var_expr.offset,
                        format!("the first argument of macro '{name}' must be a variable name"),
                    ));
                };
                self.node(
                    ExprKind::Comprehension {
                        kind,
                        range: Box::new(range),
                        var,
                        filter: filter.map(Box::new),
                        body: Box::new(body),
                    },
                    offset,
                )
            }
            (_, target, _) => self.node(
                ExprKind::Call {
                    name: Arc::from(name),
                    func: Func::Unresolved,
                    target: target.map(Box::new),
                    args,
                },
                offset,
            ),
        }
    }

    /// `math.greatest(…)` and `math.least(…)`, macros for `math.@max` and `math.@min`:
    /// one argument (a number, or a list literal of numbers) or several numbers, which
    /// become a list. Literal arguments must be numbers.
    fn min_max(&self, name: &str, args: Vec<Expr>, offset: usize) -> Result<Expr, CompileError> {
        let numeric = |e: &Expr| match &e.kind {
            ExprKind::Literal(v) => v.is_number(),
            ExprKind::List(_) | ExprKind::Map(_) => false,
            _ => true,
        };
        let target = if name == "greatest" {
            "math.@max"
        } else {
            "math.@min"
        };
        let call = |args: Vec<Expr>| {
            self.node(
                ExprKind::Call {
                    name: Arc::from(target),
                    func: Func::Unresolved,
                    target: None,
                    args,
                },
                offset,
            )
        };
        match args.len() {
            0 => Err(self.error(
                offset,
                format!("math.{name}() requires at least one argument"),
            )),
            1 => {
                let arg = &args[0];
                let numeric_list = matches!(&arg.kind, ExprKind::List(items)
                    if !items.is_empty() && items.iter().all(numeric));
                if numeric_list || numeric(arg) {
                    call(args)
                } else {
                    Err(self.error(
                        arg.offset,
                        format!("math.{name}() invalid single argument value"),
                    ))
                }
            }
            n => {
                if let Some(bad) = args.iter().find(|a| !numeric(a)) {
                    return Err(self.error(
                        bad.offset,
                        format!("math.{name}() simple literal arguments must be numeric"),
                    ));
                }
                if n == 2 {
                    call(args)
                } else {
                    let list = self.node(ExprKind::List(args), offset)?;
                    call(vec![list])
                }
            }
        }
    }
}
