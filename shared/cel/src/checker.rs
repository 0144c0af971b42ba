//! Compile-time checks, as cel-go's checker makes them for Tekton's environment: every name
//! refers to a variable in scope, every call names a known function with a matching
//! overload for the argument types it can see. Values of type `dyn` (the body, the
//! extensions, header values) agree with every type, so only what is known statically can
//! fail. Resolves calls, namespaced functions and qualified names in place.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::ast::{BinaryOp, Expr, ExprKind, MacroKind, UnaryOp};
use super::error::CompileError;
use super::func::{Func, FunctionDecl, NAMESPACES, ResolveError, declarations, resolve};
use super::secret::SecretRef;
use super::types::{CelType, Mapping, Var, instantiate, most_general};
use super::value::{Type, Value};

mod format;

/// The variables a program may name, with their types.
#[derive(Debug, Clone)]
pub(crate) struct Declarations {
    variables: Vec<(String, CelType)>,
}

impl Declarations {
    /// Tekton's environment: `body`, `header` and `extensions` are `map(string, dyn)`,
    /// `requestURL` a string.
    pub(crate) fn tekton() -> &'static Self {
        static TEKTON: OnceLock<Declarations> = OnceLock::new();
        TEKTON.get_or_init(|| {
            let json_object = || CelType::map(CelType::String, CelType::Dyn);
            Self {
                variables: vec![
                    ("body".into(), json_object()),
                    ("header".into(), json_object()),
                    ("extensions".into(), json_object()),
                    ("requestURL".into(), CelType::String),
                ],
            }
        })
    }

    /// Whether a declared variable's name starts with `root.`.
    fn has_qualified(&self, root: &str) -> bool {
        self.variables.iter().any(|(n, _)| {
            n.strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// Declares (or redeclares) a variable.
    #[cfg(test)]
    pub(crate) fn declare(&mut self, name: &str, t: CelType) {
        self.variables.retain(|(n, _)| n != name);
        self.variables.push((name.to_owned(), t));
    }

    fn variable(&self, name: &str) -> Option<&CelType> {
        self.variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }
}

/// The types a bare identifier names, and the type of that identifier (`type(T)`).
fn type_identifier(name: &str) -> Option<CelType> {
    let t = match Type::from_name(name)? {
        Type::Null => CelType::Null,
        Type::Bool => CelType::Bool,
        Type::Int => CelType::Int,
        Type::Uint => CelType::Uint,
        Type::Double => CelType::Double,
        Type::String => CelType::String,
        Type::Bytes => CelType::Bytes,
        Type::List => CelType::list(CelType::Dyn),
        Type::Map => CelType::map(CelType::Dyn, CelType::Dyn),
        Type::Type => CelType::Type(None),
        Type::Timestamp => CelType::Timestamp,
        Type::Duration => CelType::Duration,
    };
    Some(CelType::type_of(t))
}

/// How a program is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Names and types are checked, as Tekton checks every expression.
    Checked,
    /// Only names are resolved; a call no declaration matches fails when evaluated. For
    /// the conformance cases that test the evaluator on expressions that do not check.
    #[cfg_attr(not(test), allow(dead_code))]
    Unchecked,
}

/// Checks and resolves `expr`; returns its type.
pub(crate) fn check(
    expr: &mut Expr,
    source: &str,
    declarations: &Declarations,
    mode: Mode,
) -> Result<CelType, CompileError> {
    // `format` calls on literals are checked once types are known; record the types of
    // the nodes they need only when there may be one.
    let record = mode == Mode::Checked && source.contains("format");
    let mut checker = Checker {
        source,
        declarations,
        mode,
        scope: Vec::new(),
        mapping: Mapping::default(),
        fresh: 0,
        types: record.then(HashMap::new),
    };
    let t = checker.walk(expr)?;
    if let Some(types) = &checker.types {
        let resolved: HashMap<usize, CelType> = types
            .iter()
            .map(|(node, t)| (*node, checker.mapping.substitute(t, true)))
            .collect();
        format::check_calls(expr, &resolved, source)?;
    }
    Ok(checker.mapping.substitute(&t, true))
}

/// A node's identity while the tree is checked: its address, which checking never moves.
fn node_id(expr: &Expr) -> usize {
    std::ptr::from_ref(expr) as usize
}

struct Checker<'a> {
    source: &'a str,
    declarations: &'a Declarations,
    mode: Mode,
    /// Comprehension variables in scope, innermost last.
    scope: Vec<(Arc<str>, CelType)>,
    mapping: Mapping,
    fresh: usize,
    /// The type of every node, by [`node_id`], when `format` calls need checking.
    types: Option<HashMap<usize, CelType>>,
}

/// The operator function a binary operator is declared as.
fn operator_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Eq => "_==_",
        BinaryOp::Ne => "_!=_",
        BinaryOp::Lt => "_<_",
        BinaryOp::Le => "_<=_",
        BinaryOp::Gt => "_>_",
        BinaryOp::Ge => "_>=_",
        BinaryOp::In => "@in",
        BinaryOp::Add => "_+_",
        BinaryOp::Sub => "_-_",
        BinaryOp::Mul => "_*_",
        BinaryOp::Div => "_/_",
        BinaryOp::Rem => "_%_",
    }
}

/// `a.b.c` as a dotted name, if the chain is made of identifiers and plain selections.
fn dotted_name(expr: &Expr) -> Option<String> {
    match &expr.kind {
        ExprKind::Ident(name) => Some(name.to_string()),
        ExprKind::Select {
            operand,
            field,
            test_only: false,
        } => {
            let mut name = dotted_name(operand)?;
            name.push('.');
            name.push_str(field);
            Some(name)
        }
        _ => None,
    }
}

/// The identifier at the root of a chain of selections.
fn root_ident(expr: &Expr) -> Option<&str> {
    match &expr.kind {
        ExprKind::Ident(name) => Some(name),
        ExprKind::Select { operand, .. } => root_ident(operand),
        _ => None,
    }
}

impl Checker<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> CompileError {
        CompileError::at(self.source, offset, message)
    }

    fn checked(&self) -> bool {
        self.mode == Mode::Checked
    }

    fn in_scope(&self, name: &str) -> Option<&CelType> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| &**n == name)
            .map(|(_, t)| t)
    }

    fn fresh_var(&mut self) -> CelType {
        self.fresh += 1;
        CelType::Param(Var::Fresh(u32::try_from(self.fresh).unwrap_or(u32::MAX)))
    }

    /// The type a name has, if it is declared: a comprehension variable, a variable of the
    /// environment, or a type.
    fn lookup(&self, name: &str) -> Option<CelType> {
        if let Some(t) = self.in_scope(name) {
            return Some(t.clone());
        }
        if let Some(t) = self.declarations.variable(name) {
            return Some(t.clone());
        }
        type_identifier(name)
    }

    fn walk(&mut self, expr: &mut Expr) -> Result<CelType, CompileError> {
        let t = self.walk_node(expr)?;
        if let Some(types) = &mut self.types {
            types.insert(node_id(expr), t.clone());
        }
        Ok(t)
    }

    fn walk_node(&mut self, expr: &mut Expr) -> Result<CelType, CompileError> {
        let offset = expr.offset;
        match &mut expr.kind {
            ExprKind::Literal(value) => Ok(match value {
                Value::Null => CelType::Null,
                Value::Bool(_) => CelType::Bool,
                Value::Int(_) => CelType::Int,
                Value::Uint(_) => CelType::Uint,
                Value::Double(_) => CelType::Double,
                Value::String(_) => CelType::String,
                Value::Bytes(_) => CelType::Bytes,
                _ => CelType::Dyn,
            }),
            ExprKind::Ident(name) => {
                if let Some(t) = self.lookup(name) {
                    return Ok(t);
                }
                if !self.checked() {
                    // Unchecked, an unknown name fails when evaluated.
                    return Ok(CelType::Dyn);
                }
                if NAMESPACES.contains(&&**name) {
                    return Err(self.error(
                        offset,
                        format!("'{name}' is a function namespace, not a variable (use e.g. {name}.…(…))"),
                    ));
                }
                Err(self.error(offset, format!("undeclared reference to '{name}'")))
            }
            ExprKind::Select { .. } => self.select(expr),
            ExprKind::Index { operand, index } => {
                let operand = self.walk(operand)?;
                let index = self.walk(index)?;
                self.operator("_[_]", &[operand, index], offset)
            }
            ExprKind::Call { .. } => self.call(expr),
            ExprKind::Unary(op, operand) => {
                let name = if *op == UnaryOp::Not { "!_" } else { "-_" };
                let t = self.walk(operand)?;
                self.operator(name, &[t], offset)
            }
            ExprKind::Binary(op, a, b) => {
                let name = operator_name(*op);
                let a = self.walk(a)?;
                let b = self.walk(b)?;
                self.operator(name, &[a, b], offset)
            }
            ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                for operand in [a, b] {
                    let at = operand.offset;
                    let t = self.walk(operand)?;
                    self.expect(&CelType::Bool, &t, at)?;
                }
                Ok(CelType::Bool)
            }
            ExprKind::Conditional(cond, then, otherwise) => {
                let c = self.walk(cond)?;
                let t = self.walk(then)?;
                let o = self.walk(otherwise)?;
                self.operator("_?_:_", &[c, t, o], offset)
            }
            ExprKind::List(items) => {
                let mut elem: Option<CelType> = None;
                for item in items.iter_mut() {
                    let t = self.walk(item)?;
                    elem = Some(self.join(elem, t));
                }
                let elem = match elem {
                    Some(t) => t,
                    None => self.fresh_var(),
                };
                Ok(CelType::list(elem))
            }
            ExprKind::Map(entries) => {
                let mut key: Option<CelType> = None;
                let mut value: Option<CelType> = None;
                for (k, v) in entries.iter_mut() {
                    let kt = self.walk(k)?;
                    key = Some(self.join(key, kt));
                    let vt = self.walk(v)?;
                    value = Some(self.join(value, vt));
                }
                let (key, value) = match (key, value) {
                    (Some(k), Some(v)) => (k, v),
                    _ => (self.fresh_var(), self.fresh_var()),
                };
                Ok(CelType::map(key, value))
            }
            ExprKind::Comprehension { .. } => self.comprehension(expr),
        }
    }

    /// The element type of a list or map literal after another element.
    fn join(&mut self, previous: Option<CelType>, current: CelType) -> CelType {
        let Some(previous) = previous else {
            return current;
        };
        if self.mapping.unify(&previous, &current) {
            most_general(&previous, &current)
        } else {
            CelType::Dyn
        }
    }

    /// Fails unless `found` may stand where `expected` is needed.
    fn expect(
        &mut self,
        expected: &CelType,
        found: &CelType,
        offset: usize,
    ) -> Result<(), CompileError> {
        if !self.checked() || self.mapping.unify(expected, found) {
            return Ok(());
        }
        let found = self.mapping.substitute(found, true);
        Err(self.error(
            offset,
            format!("expected type '{expected}' but found '{found}'"),
        ))
    }

    fn select(&mut self, expr: &mut Expr) -> Result<CelType, CompileError> {
        let offset = expr.offset;
        // `a.b.c` may name a variable or a type (`google.protobuf.Timestamp`) itself.
        let qualified = root_ident(expr).is_some_and(|root| {
            self.in_scope(root).is_none()
                && (root == "google" || self.declarations.has_qualified(root))
        });
        if qualified
            && let Some(name) = dotted_name(expr)
            && let Some(t) = self
                .declarations
                .variable(&name)
                .cloned()
                .or_else(|| type_identifier(&name))
        {
            expr.kind = ExprKind::Ident(name.into());
            return Ok(t);
        }
        let ExprKind::Select {
            operand, test_only, ..
        } = &mut expr.kind
        else {
            return Ok(CelType::Dyn);
        };
        let test_only = *test_only;
        let operand_type = self.walk(operand)?;
        let operand_type = self.mapping.substitute(&operand_type, false);
        let field_type = match &operand_type {
            CelType::Map(_, value) => (**value).clone(),
            CelType::Param(_) => {
                self.mapping.unify(&CelType::Dyn, &operand_type);
                CelType::Dyn
            }
            CelType::Dyn | CelType::Error => CelType::Dyn,
            other if self.checked() => {
                return Err(self.error(
                    offset,
                    format!("type '{other}' does not support field selection"),
                ));
            }
            _ => CelType::Dyn,
        };
        Ok(if test_only { CelType::Bool } else { field_type })
    }

    fn call(&mut self, expr: &mut Expr) -> Result<CelType, CompileError> {
        let offset = expr.offset;
        let ExprKind::Call {
            name,
            func,
            target,
            args,
        } = &mut expr.kind
        else {
            return Ok(CelType::Dyn);
        };
        // `math.abs(x)` is the global function `math.abs`, and `ns.f(x)` a call of `ns.f`
        // for any declared `ns.f`.
        let namespaced = target.as_deref().and_then(root_ident).is_some_and(|root| {
            NAMESPACES.contains(&root) || self.declarations.has_qualified(root)
        });
        if namespaced
            && let Some(t) = target
            && let Some(prefix) = dotted_name(t)
        {
            let qualified = format!("{prefix}.{name}");
            let declared = declarations()
                .get(qualified.as_str())
                .is_some_and(|d| d.func != Func::Unresolved);
            let namespace = NAMESPACES.contains(&prefix.as_str()) && self.lookup(&prefix).is_none();
            if declared || namespace {
                *name = qualified.into();
                *target = None;
            }
        }
        let mut types = Vec::with_capacity(args.len() + 1);
        if let Some(target) = target {
            types.push(self.walk(target)?);
        }
        for arg in args.iter_mut() {
            types.push(self.walk(arg)?);
        }
        let method = target.is_some();
        match resolve(name, method, args.len()) {
            Ok(f) => *func = f,
            Err(_) if !self.checked() => {
                *func = Func::Unresolved;
                return Ok(CelType::Dyn);
            }
            Err(e) => {
                let message = match e {
                    ResolveError::Unknown => format!("unknown function '{name}'"),
                    ResolveError::WrongStyle { method: true } => {
                        format!("'{name}' is a function, not a method: call it as {name}(…)")
                    }
                    ResolveError::WrongStyle { method: false } => {
                        format!("'{name}' is a method: call it as x.{name}(…)")
                    }
                    ResolveError::Arity { expected, got } => format!(
                        "wrong number of arguments to '{name}': expected {expected}, got {got}"
                    ),
                };
                return Err(self.error(offset, message));
            }
        }
        let name = name.clone();
        let decl = declarations().get(&*name);
        match decl {
            Some(decl) => self.overload(&name, decl, &types, method, offset),
            None => Ok(CelType::Dyn),
        }
    }

    fn operator(
        &mut self,
        name: &str,
        types: &[CelType],
        offset: usize,
    ) -> Result<CelType, CompileError> {
        match declarations().get(name) {
            Some(decl) => self.overload(name, decl, types, false, offset),
            None => Ok(CelType::Dyn),
        }
    }

    /// The result type of the overloads of `decl` that accept `types`; an error if none does.
    fn overload(
        &mut self,
        name: &str,
        decl: &FunctionDecl,
        types: &[CelType],
        method: bool,
        offset: usize,
    ) -> Result<CelType, CompileError> {
        let mut result: Option<CelType> = None;
        for overload in &decl.overloads {
            if overload.member != method || overload.params.len() != types.len() {
                continue;
            }
            let fresh: Vec<(Var, CelType)> = overload
                .type_params
                .iter()
                .map(|p| (*p, self.fresh_var()))
                .collect();
            let params: Vec<CelType> = overload
                .params
                .iter()
                .map(|p| instantiate(p, &fresh))
                .collect();
            if !self.mapping.unify_all(types, &params) {
                continue;
            }
            let t = self
                .mapping
                .substitute(&instantiate(&overload.result, &fresh), false);
            result = Some(match result {
                None => t,
                Some(previous) if previous == CelType::Dyn || previous == t => previous,
                Some(_) => CelType::Dyn,
            });
        }
        match result {
            Some(t) => Ok(t),
            None if !self.checked() => Ok(CelType::Dyn),
            None => {
                let shown: Vec<String> = types
                    .iter()
                    .map(|t| self.mapping.substitute(t, true).to_string())
                    .collect();
                let signature = match (method, shown.split_first()) {
                    (true, Some((receiver, rest))) => format!("{receiver}.({})", rest.join(", ")),
                    _ => format!("({})", shown.join(", ")),
                };
                Err(self.error(
                    offset,
                    format!("found no matching overload for '{name}' applied to '{signature}'"),
                ))
            }
        }
    }

    fn comprehension(&mut self, expr: &mut Expr) -> Result<CelType, CompileError> {
        let offset = expr.offset;
        let ExprKind::Comprehension {
            kind,
            range,
            var,
            filter,
            body,
        } = &mut expr.kind
        else {
            return Ok(CelType::Dyn);
        };
        let range_offset = range.offset;
        let range_type = self.walk(range)?;
        let range_type = self.mapping.substitute(&range_type, false);
        let var_type = match &range_type {
            CelType::List(elem) => (**elem).clone(),
            CelType::Map(key, _) if *kind != MacroKind::SortBy => (**key).clone(),
            CelType::Dyn | CelType::Error | CelType::Param(_) => {
                self.mapping.unify(&CelType::Dyn, &range_type);
                CelType::Dyn
            }
            other if self.checked() => {
                let message = if *kind == MacroKind::SortBy {
                    format!("found no matching overload for 'sortBy' applied to '{other}'")
                } else {
                    format!(
                        "expression of type '{other}' cannot be range of a comprehension (must be list, map, or dynamic)"
                    )
                };
                return Err(self.error(range_offset, message));
            }
            _ => CelType::Dyn,
        };
        self.scope.push((var.clone(), var_type.clone()));
        let result = self.comprehension_body(*kind, filter.as_deref_mut(), body, &var_type, offset);
        self.scope.pop();
        let result = result?;
        Ok(match kind {
            MacroKind::SortBy => match range_type {
                CelType::List(_) => range_type,
                _ => CelType::list(CelType::Dyn),
            },
            _ => result,
        })
    }

    fn comprehension_body(
        &mut self,
        kind: MacroKind,
        filter: Option<&mut Expr>,
        body: &mut Expr,
        var_type: &CelType,
        offset: usize,
    ) -> Result<CelType, CompileError> {
        let body_offset = body.offset;
        match kind {
            MacroKind::All | MacroKind::Exists => {
                let t = self.walk(body)?;
                self.expect(&CelType::Bool, &t, body_offset)?;
                Ok(CelType::Bool)
            }
            MacroKind::ExistsOne => {
                let t = self.walk(body)?;
                self.operator("_?_:_", &[t, CelType::Int, CelType::Int], offset)?;
                Ok(CelType::Bool)
            }
            MacroKind::Filter => {
                let t = self.walk(body)?;
                let elem = CelType::list(var_type.clone());
                self.operator("_?_:_", &[t, elem.clone(), elem], offset)?;
                Ok(CelType::list(var_type.clone()))
            }
            MacroKind::Map => {
                if let Some(filter) = filter {
                    let t = self.walk(filter)?;
                    self.operator("_?_:_", &[t, CelType::Int, CelType::Int], offset)?;
                }
                let t = self.walk(body)?;
                Ok(CelType::list(self.mapping.substitute(&t, false)))
            }
            MacroKind::SortBy => {
                let key = self.walk(body)?;
                let keys = CelType::list(key);
                let list = CelType::list(var_type.clone());
                // The keys must sort: the same types `sort` accepts.
                if let Some(decl) = declarations().get("sort") {
                    self.overload("sortBy", decl, &[keys], true, offset)?;
                }
                Ok(list)
            }
        }
    }
}

/// The `compareSecret` calls whose key, name and namespace are all string literals.
pub(crate) fn secret_refs(expr: &Expr) -> Vec<SecretRef> {
    let mut refs = Vec::new();
    collect_secret_refs(expr, &mut refs);
    refs.sort();
    refs.dedup();
    refs
}

fn collect_secret_refs(expr: &Expr, refs: &mut Vec<SecretRef>) {
    if let ExprKind::Call {
        func: Func::CompareSecret,
        args,
        ..
    } = &expr.kind
    {
        let literal = |i: usize| match args.get(i).map(|a| &a.kind) {
            Some(ExprKind::Literal(Value::String(s))) => Some(s.to_string()),
            _ => None,
        };
        if let (Some(key), Some(name)) = (literal(0), literal(1)) {
            let namespace = literal(2);
            if args.len() == 2 || namespace.is_some() {
                refs.push(SecretRef {
                    key,
                    name,
                    namespace,
                });
            }
        }
    }
    for child in expr.children() {
        collect_secret_refs(child, refs);
    }
}
