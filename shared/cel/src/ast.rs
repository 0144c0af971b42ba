//! The syntax tree the parser builds and the evaluator walks.

use std::sync::Arc;

use super::func::Func;
use super::value::Value;

/// An expression node and where it starts in the source.
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    /// Byte offset of the node in the source, for compile errors.
    pub offset: usize,
    /// Height of the tree below and including this node; bounded by the parser.
    pub height: usize,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Not,
    Neg,
}

/// Binary operators other than `&&` and `||`, which short-circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    /// The operator as written.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::In => "in",
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Rem => "%",
        }
    }
}

/// The comprehension macros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacroKind {
    All,
    Exists,
    ExistsOne,
    /// `map(x, t)` and `map(x, p, t)`.
    Map,
    Filter,
    /// `list.sortBy(x, key)`: the list ordered by each element's key.
    SortBy,
}

/// The kinds of expression.
#[derive(Debug, Clone)]
pub(crate) enum ExprKind {
    Literal(Value),
    Ident(Arc<str>),
    /// `operand.field`; with `test_only` it is the argument of `has()`.
    Select {
        operand: Box<Expr>,
        field: Arc<str>,
        test_only: bool,
    },
    Index {
        operand: Box<Expr>,
        index: Box<Expr>,
    },
    /// A function call: `f(args)` without a target, `target.f(args)` with one. The checker
    /// resolves `func`; namespaced calls such as `math.abs(x)` become global calls named
    /// `math.abs`.
    Call {
        name: Arc<str>,
        func: Func,
        target: Option<Box<Expr>>,
        args: Vec<Expr>,
    },
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    /// A macro over a list or the keys of a map. `filter` is the predicate of the
    /// three-argument `map`; `body` is the predicate or transform.
    Comprehension {
        kind: MacroKind,
        range: Box<Expr>,
        var: Arc<str>,
        filter: Option<Box<Expr>>,
        body: Box<Expr>,
    },
}

impl Expr {
    /// The height of the tallest child (0 for a leaf), without collecting the children.
    pub(crate) fn tallest_child(&self) -> usize {
        let h = |e: &Expr| e.height;
        match &self.kind {
            ExprKind::Literal(_) | ExprKind::Ident(_) => 0,
            ExprKind::Select { operand, .. } | ExprKind::Unary(_, operand) => h(operand),
            ExprKind::Index { operand, index } => h(operand).max(h(index)),
            ExprKind::Call { target, args, .. } => target
                .iter()
                .map(|t| h(t))
                .chain(args.iter().map(h))
                .max()
                .unwrap_or(0),
            ExprKind::Binary(_, a, b) | ExprKind::And(a, b) | ExprKind::Or(a, b) => h(a).max(h(b)),
            ExprKind::Conditional(a, b, c) => h(a).max(h(b)).max(h(c)),
            ExprKind::List(items) => items.iter().map(h).max().unwrap_or(0),
            ExprKind::Map(entries) => entries
                .iter()
                .map(|(k, v)| h(k).max(h(v)))
                .max()
                .unwrap_or(0),
            ExprKind::Comprehension {
                range,
                filter,
                body,
                ..
            } => h(range).max(filter.as_deref().map_or(0, h)).max(h(body)),
        }
    }

    /// The direct children of this node, in evaluation order.
    pub(crate) fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Literal(_) | ExprKind::Ident(_) => Vec::new(),
            ExprKind::Select { operand, .. } => vec![operand],
            ExprKind::Index { operand, index } => vec![operand, index],
            ExprKind::Call { target, args, .. } => target
                .iter()
                .map(AsRef::as_ref)
                .chain(args.iter())
                .collect(),
            ExprKind::Unary(_, e) => vec![e],
            ExprKind::Binary(_, a, b) | ExprKind::And(a, b) | ExprKind::Or(a, b) => vec![a, b],
            ExprKind::Conditional(a, b, c) => vec![a, b, c],
            ExprKind::List(items) => items.iter().collect(),
            ExprKind::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
            ExprKind::Comprehension {
                range,
                filter,
                body,
                ..
            } => std::iter::once(range.as_ref())
                .chain(filter.iter().map(AsRef::as_ref))
                .chain(std::iter::once(body.as_ref()))
                .collect(),
        }
    }
}
