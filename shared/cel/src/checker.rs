//! Compile-time checks: every name refers to a variable in scope, every call to a known
//! function with an acceptable number of arguments. Resolves calls in place.

use std::sync::Arc;

use super::ast::{Expr, ExprKind};
use super::error::CompileError;
use super::func::{Func, NAMESPACES, ResolveError, resolve};
use super::secret::SecretRef;
use super::value::{Type, Value};

/// The variables an activation provides.
pub(crate) const VARIABLES: &[&str] = &["body", "header", "extensions", "requestURL"];

/// Checks and resolves `expr`.
pub(crate) fn check(expr: &mut Expr, source: &str) -> Result<(), CompileError> {
    Checker {
        source,
        scope: Vec::new(),
    }
    .walk(expr)
}

struct Checker<'a> {
    source: &'a str,
    /// Comprehension variables in scope.
    scope: Vec<Arc<str>>,
}

impl Checker<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> CompileError {
        CompileError::at(self.source, offset, message)
    }

    fn in_scope(&self, name: &str) -> bool {
        self.scope.iter().any(|n| &**n == name)
    }

    fn walk(&mut self, expr: &mut Expr) -> Result<(), CompileError> {
        let offset = expr.offset;
        match &mut expr.kind {
            ExprKind::Literal(_) => Ok(()),
            ExprKind::Ident(name) => {
                if self.in_scope(name)
                    || VARIABLES.contains(&&**name)
                    || Type::from_name(name).is_some()
                {
                    Ok(())
                } else if NAMESPACES.contains(&&**name) {
                    Err(self.error(
                        offset,
                        format!("'{name}' is a function namespace, not a variable (use e.g. {name}.…(…))"),
                    ))
                } else {
                    Err(self.error(offset, format!("undeclared reference to '{name}'")))
                }
            }
            ExprKind::Select { operand, .. } => self.walk(operand),
            ExprKind::Index { operand, index } => {
                self.walk(operand)?;
                self.walk(index)
            }
            ExprKind::Call {
                name,
                func,
                target,
                args,
            } => {
                // `math.abs(x)` is the global function `math.abs`, unless `math` is a
                // comprehension variable.
                if let Some(t) = target
                    && let ExprKind::Ident(ns) = &t.kind
                    && NAMESPACES.contains(&&**ns)
                    && !self.in_scope(ns)
                {
                    *name = format!("{ns}.{name}").into();
                    *target = None;
                }
                if let Some(target) = target {
                    self.walk(target)?;
                }
                for arg in args.iter_mut() {
                    self.walk(arg)?;
                }
                let method = target.is_some();
                *func = resolve(name, method, args.len()).map_err(|e| {
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
                    self.error(offset, message)
                })?;
                Ok(())
            }
            ExprKind::Unary(_, operand) => self.walk(operand),
            ExprKind::Binary(_, a, b) | ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                self.walk(a)?;
                self.walk(b)
            }
            ExprKind::Conditional(a, b, c) => {
                self.walk(a)?;
                self.walk(b)?;
                self.walk(c)
            }
            ExprKind::List(items) => items.iter_mut().try_for_each(|item| self.walk(item)),
            ExprKind::Map(entries) => entries.iter_mut().try_for_each(|(k, v)| {
                self.walk(k)?;
                self.walk(v)
            }),
            ExprKind::Comprehension {
                range,
                var,
                filter,
                body,
                ..
            } => {
                self.walk(range)?;
                self.scope.push(var.clone());
                let result = filter
                    .as_deref_mut()
                    .map_or(Ok(()), |f| self.walk(f))
                    .and_then(|()| self.walk(body));
                self.scope.pop();
                result
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
