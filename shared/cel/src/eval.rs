//! The tree-walking evaluator: walks a checked tree against an activation, charging the
//! environment's meter as it goes, and calls the function library for calls.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::activation::Activation;
use super::ast::{BinaryOp, Expr, ExprKind, MacroKind, UnaryOp};
use super::env::{Env, MAX_ELEMENTS};
use super::error::{EvalError, EvalErrorKind};
use super::library::{self, Call};
use super::value::{MapKey, Order, Type, Value, as_f64, describe, map_lookup, order};

/// The cost of one iteration of a macro, besides evaluating its body (cel-go's loop
/// evaluates a condition and a step per iteration).
const ITERATION_COST: usize = 2;
/// The cost of appending to the result of `map` or `filter`: cel-go's loop step builds a
/// one-element list and concatenates it, so it costs as much as a list literal.
const APPEND_COST: usize = LIST_CREATE_COST;
/// The cost of building a list or map literal, besides its elements (as in cel-go).
const LIST_CREATE_COST: usize = 10;
const MAP_CREATE_COST: usize = 30;

/// Evaluates an expression against an activation and, if given, further variables.
pub(crate) fn evaluate(
    expr: &Expr,
    activation: &Activation<'_>,
    variables: Option<&HashMap<String, Value>>,
) -> Result<Value, EvalError> {
    let mut evaluator = Evaluator {
        activation,
        variables,
        env: Env::new(activation.limits, activation.secrets),
        scope: Vec::new(),
        body: None,
        header: None,
        extensions: None,
    };
    evaluator.eval(expr)
}

struct Evaluator<'a> {
    activation: &'a Activation<'a>,
    /// Variables besides the activation's.
    variables: Option<&'a HashMap<String, Value>>,
    env: Env<'a>,
    /// Comprehension variables, innermost last.
    scope: Vec<(Arc<str>, Value)>,
    /// The activation's variables, converted on first use.
    body: Option<Value>,
    header: Option<Value>,
    extensions: Option<Value>,
}

fn no_such_key(key: &Value) -> EvalError {
    EvalError::runtime(format!("no such key: {}", describe(key)))
}

fn binary_overload(op: BinaryOp, a: &Value, b: &Value) -> EvalError {
    EvalError::runtime(format!(
        "no such overload: {} {} {}",
        a.type_name(),
        op.symbol(),
        b.type_name()
    ))
}

/// Whether an error may be absorbed by `&&`, `||` and the `all`/`exists` macros: runtime
/// errors may, exhausted limits may not.
fn absorbable(error: &EvalError) -> bool {
    error.kind == EvalErrorKind::Runtime
}

impl Evaluator<'_> {
    fn eval(&mut self, expr: &Expr) -> Result<Value, EvalError> {
        self.env.charge(1)?;
        match &expr.kind {
            ExprKind::Literal(value) => Ok(value.clone()),
            ExprKind::Ident(name) => self.variable(name),
            ExprKind::Select {
                operand,
                field,
                test_only,
            } => {
                if let Some(value) = self.select_in_body(expr)? {
                    return Ok(value);
                }
                let operand = self.eval(operand)?;
                let Value::Map(map) = &operand else {
                    return Err(EvalError::runtime(format!(
                        "type '{}' does not support field selection (field '{field}')",
                        operand.type_name()
                    )));
                };
                let found = map.get(&MapKey::String(field.clone()));
                match (found, test_only) {
                    (found, true) => Ok(Value::Bool(found.is_some())),
                    (Some(value), false) => Ok(value.clone()),
                    (None, false) => Err(EvalError::runtime(format!("no such key: '{field}'"))),
                }
            }
            ExprKind::Index { operand, index } => {
                let operand = self.eval(operand)?;
                let index = self.eval(index)?;
                self.index(&operand, &index)
            }
            ExprKind::Call {
                name,
                func,
                target,
                args,
            } => {
                let mut values = Vec::with_capacity(args.len() + 1);
                if let Some(target) = target {
                    values.push(self.eval(target)?);
                }
                for arg in args {
                    values.push(self.eval(arg)?);
                }
                let call = Call {
                    name,
                    method: target.is_some(),
                    args: &values,
                };
                library::call(*func, &call, &mut self.env)
            }
            ExprKind::Unary(op, operand) => {
                let value = self.eval(operand)?;
                match (op, &value) {
                    (UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
                    (UnaryOp::Neg, Value::Int(i)) => i
                        .checked_neg()
                        .map(Value::Int)
                        .ok_or_else(|| EvalError::runtime("integer overflow")),
                    (UnaryOp::Neg, Value::Double(d)) => Ok(Value::Double(-d)),
                    (UnaryOp::Neg, Value::Duration(d)) => d
                        .checked_neg()
                        .map(Value::Duration)
                        .ok_or_else(|| EvalError::runtime("integer overflow")),
                    _ => Err(EvalError::runtime(format!(
                        "no such overload: {}{}",
                        if *op == UnaryOp::Not { "!" } else { "-" },
                        value.type_name()
                    ))),
                }
            }
            ExprKind::Binary(op, left, right) => {
                let left = self.eval(left)?;
                let right = self.eval(right)?;
                self.binary(*op, &left, &right)
            }
            ExprKind::And(left, right) => self.logical(left, right, false),
            ExprKind::Or(left, right) => self.logical(left, right, true),
            ExprKind::Conditional(cond, then, otherwise) => match self.eval(cond)? {
                Value::Bool(true) => self.eval(then),
                Value::Bool(false) => self.eval(otherwise),
                other => Err(EvalError::runtime(format!(
                    "no such overload: {} ? _ : _ (the condition must be a bool)",
                    other.type_name()
                ))),
            },
            ExprKind::List(items) => {
                self.env.charge(LIST_CREATE_COST + items.len())?;
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.push(self.eval(item)?);
                }
                Ok(Value::List(values.into()))
            }
            ExprKind::Map(entries) => {
                self.env.charge(MAP_CREATE_COST + entries.len())?;
                let mut map = BTreeMap::new();
                for (key, value) in entries {
                    let key_value = self.eval(key)?;
                    let key = MapKey::from_value(&key_value).ok_or_else(|| {
                        EvalError::runtime(format!(
                            "unsupported map key type: {}",
                            key_value.type_name()
                        ))
                    })?;
                    let value = self.eval(value)?;
                    // Keys equal as numbers (`0` and `0u`) are the same key.
                    if map_lookup(&map, &key_value).is_some()
                        || map.insert(key.clone(), value).is_some()
                    {
                        return Err(EvalError::runtime(format!(
                            "repeated key in map literal: {key}"
                        )));
                    }
                }
                Ok(Value::Map(Arc::new(map)))
            }
            ExprKind::Comprehension {
                kind,
                range,
                var,
                filter,
                body,
            } => self.comprehension(*kind, range, var, filter.as_deref(), body),
        }
    }

    /// `body.a.b` (or `has(body.a.b)`) read straight from the JSON body, converting only the
    /// selected value: expressions look at a few fields of bodies of many kilobytes, and
    /// converting the whole body cost more than the rest of a typical filter. `None` when the
    /// chain does not start at `body`, the body is already converted, or a step is missing
    /// or not an object: the general path then gives the same answer or the same error.
    /// Charged as the general path charges, a unit per node (`eval` charged for this one).
    fn select_in_body(&mut self, expr: &Expr) -> Result<Option<Value>, EvalError> {
        let ExprKind::Select {
            operand,
            field,
            test_only,
        } = &expr.kind
        else {
            return Ok(None);
        };
        if self.body.is_some() {
            return Ok(None);
        }
        let mut nodes = 0;
        let Some(object) = self
            .json_at(operand, self.activation.body, &mut nodes)
            .and_then(serde_json::Value::as_object)
        else {
            return Ok(None);
        };
        let value = match (object.get(&**field), test_only) {
            (found, true) => Value::Bool(found.is_some()),
            (Some(found), false) => Value::from_json(found),
            (None, false) => return Ok(None),
        };
        for _ in 0..nodes {
            self.env.charge(1)?;
        }
        Ok(Some(value))
    }

    /// The JSON value a chain of field selections from `body` names, counting its nodes.
    fn json_at<'j>(
        &self,
        expr: &Expr,
        body: &'j serde_json::Value,
        nodes: &mut usize,
    ) -> Option<&'j serde_json::Value> {
        match &expr.kind {
            ExprKind::Ident(name)
                if &**name == "body" && !self.scope.iter().any(|(n, _)| &**n == "body") =>
            {
                *nodes += 1;
                Some(body)
            }
            ExprKind::Select {
                operand,
                field,
                test_only: false,
            } => {
                let parent = self.json_at(operand, body, nodes)?;
                *nodes += 1;
                parent.as_object()?.get(&**field)
            }
            _ => None,
        }
    }

    fn variable(&mut self, name: &str) -> Result<Value, EvalError> {
        if let Some((_, value)) = self.scope.iter().rev().find(|(n, _)| &**n == name) {
            return Ok(value.clone());
        }
        if let Some(value) = self.variables.and_then(|v| v.get(name)) {
            return Ok(value.clone());
        }
        let activation = self.activation;
        let value = match name {
            "body" => self
                .body
                .get_or_insert_with(|| Value::from_json(activation.body)),
            "header" => self.header.get_or_insert_with(|| {
                Value::Map(Arc::new(
                    activation
                        .header
                        .iter()
                        .map(|(name, values)| {
                            let values: Vec<Value> =
                                values.iter().map(|v| Value::from(v.as_str())).collect();
                            (MapKey::String(name.as_str().into()), Value::from(values))
                        })
                        .collect(),
                ))
            }),
            "extensions" => self.extensions.get_or_insert_with(|| {
                Value::Map(Arc::new(
                    activation
                        .extensions
                        .iter()
                        .map(|(k, v)| (MapKey::String(k.as_str().into()), Value::from_json(v)))
                        .collect(),
                ))
            }),
            "requestURL" => return Ok(Value::from(activation.request_url)),
            other => {
                return Type::from_name(other).map(Value::Type).ok_or_else(|| {
                    EvalError::runtime(format!("undeclared reference to '{other}'"))
                });
            }
        };
        Ok(value.clone())
    }

    fn index(&mut self, operand: &Value, index: &Value) -> Result<Value, EvalError> {
        match operand {
            Value::List(items) => {
                let position = match index {
                    Value::Int(i) => usize::try_from(*i).ok(),
                    Value::Uint(u) => usize::try_from(*u).ok(),
                    Value::Double(d) if d.fract() == 0.0 && *d >= 0.0 && *d < 1e15 => {
                        // An integral double within range indexes like the int it equals.
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        Some(*d as usize)
                    }
                    Value::Double(_) => None,
                    _ => {
                        return Err(EvalError::runtime(format!(
                            "no such overload: list[{}]",
                            index.type_name()
                        )));
                    }
                };
                position.and_then(|p| items.get(p)).cloned().ok_or_else(|| {
                    EvalError::runtime(format!(
                        "index out of range: {} (list of size {})",
                        describe(index),
                        items.len()
                    ))
                })
            }
            Value::Map(map) => map_lookup(map, index)
                .cloned()
                .ok_or_else(|| no_such_key(index)),
            _ => Err(EvalError::runtime(format!(
                "no such overload: {}[{}]",
                operand.type_name(),
                index.type_name()
            ))),
        }
    }

    /// `&&` (`or == false`) and `||`: the first operand that decides the result wins, even
    /// over an error in the other; otherwise the first error.
    fn logical(&mut self, left: &Expr, right: &Expr, or: bool) -> Result<Value, EvalError> {
        let symbol = if or { "||" } else { "&&" };
        let as_bool = |result: Result<Value, EvalError>| -> Result<bool, EvalError> {
            match result? {
                Value::Bool(b) => Ok(b),
                other => Err(EvalError::runtime(format!(
                    "no such overload: {} {symbol} _ (operands must be bool)",
                    other.type_name()
                ))),
            }
        };
        let left = as_bool(self.eval(left));
        match left {
            Ok(b) if b == or => return Ok(Value::Bool(b)),
            Err(e) if !absorbable(&e) => return Err(e),
            _ => {}
        }
        let right = as_bool(self.eval(right));
        match (left, right) {
            (_, Ok(b)) if b == or => Ok(Value::Bool(b)),
            (_, Err(e)) if !absorbable(&e) => Err(e),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            (Ok(_), Ok(b)) => Ok(Value::Bool(b)),
        }
    }

    fn binary(&mut self, op: BinaryOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
        let compare = |this: &mut Self, accept: fn(Ordering) -> bool| {
            this.env.charge(1)?;
            match order(a, b) {
                Order::Is(ordering) => Ok(Value::Bool(accept(ordering))),
                Order::Unordered => Err(EvalError::runtime("NaN values cannot be ordered")),
                Order::Incomparable => Err(binary_overload(op, a, b)),
            }
        };
        match op {
            BinaryOp::Eq => Ok(Value::Bool(self.env.equals(a, b)?)),
            BinaryOp::Ne => Ok(Value::Bool(!self.env.equals(a, b)?)),
            BinaryOp::Lt => compare(self, Ordering::is_lt),
            BinaryOp::Le => compare(self, Ordering::is_le),
            BinaryOp::Gt => compare(self, Ordering::is_gt),
            BinaryOp::Ge => compare(self, Ordering::is_ge),
            BinaryOp::In => match b {
                Value::List(items) => {
                    for item in items.iter() {
                        if self.env.equals(a, item)? {
                            return Ok(Value::Bool(true));
                        }
                    }
                    Ok(Value::Bool(false))
                }
                Value::Map(map) => Ok(Value::Bool(map_lookup(map, a).is_some())),
                _ => Err(binary_overload(op, a, b)),
            },
            BinaryOp::Add => self.add(a, b),
            BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => arithmetic(op, a, b),
        }
    }

    fn add(&mut self, a: &Value, b: &Value) -> Result<Value, EvalError> {
        match (a, b) {
            (Value::String(x), Value::String(y)) => {
                let len = x.len().saturating_add(y.len());
                self.env.charge_bytes(len)?;
                self.env.check_string_len(len)?;
                let mut joined = String::with_capacity(len);
                joined.push_str(x);
                joined.push_str(y);
                Ok(Value::from(joined))
            }
            (Value::Bytes(x), Value::Bytes(y)) => {
                let len = x.len().saturating_add(y.len());
                self.env.charge_bytes(len)?;
                self.env.check_string_len(len)?;
                Ok(Value::Bytes(x.iter().chain(y.iter()).copied().collect()))
            }
            (Value::List(x), Value::List(y)) => {
                let len = x.len().saturating_add(y.len());
                self.env.charge(len)?;
                self.env.check_elements(len)?;
                Ok(Value::List(x.iter().chain(y.iter()).cloned().collect()))
            }
            (Value::Timestamp(t), Value::Duration(d))
            | (Value::Duration(d), Value::Timestamp(t)) => t
                .add(*d)
                .map(Value::Timestamp)
                .ok_or_else(timestamp_overflow),
            (Value::Duration(x), Value::Duration(y)) => x
                .checked_add(*y)
                .map(Value::Duration)
                .ok_or_else(|| EvalError::runtime("integer overflow")),
            _ => arithmetic(BinaryOp::Add, a, b),
        }
    }

    fn comprehension(
        &mut self,
        kind: MacroKind,
        range: &Expr,
        var: &Arc<str>,
        filter: Option<&Expr>,
        body: &Expr,
    ) -> Result<Value, EvalError> {
        let range = self.eval(range)?;
        if kind == MacroKind::SortBy {
            return self.sort_by(&range, var, body);
        }
        let keys: Vec<Value>;
        let items: &[Value] = match &range {
            Value::List(items) => items,
            Value::Map(map) => {
                keys = map.keys().map(MapKey::to_value).collect();
                &keys
            }
            other => {
                return Err(EvalError::runtime(format!(
                    "no such overload: {}.{}(…): macros range over a list or map",
                    other.type_name(),
                    macro_name(kind)
                )));
            }
        };
        let mut state = MacroState::new(kind, items.len());
        for item in items {
            self.env.charge(ITERATION_COST)?;
            self.scope.push((var.clone(), item.clone()));
            let step = self.step(kind, &mut state, item, filter, body);
            self.scope.pop();
            if !step? {
                break;
            }
        }
        state.finish()
    }

    /// `list.sortBy(x, key)`: the elements ordered by their keys, which must all be of one
    /// comparable type.
    fn sort_by(&mut self, range: &Value, var: &Arc<str>, key: &Expr) -> Result<Value, EvalError> {
        let Value::List(items) = range else {
            return Err(EvalError::runtime(format!(
                "no such overload: {}.sortBy(…)",
                range.type_name()
            )));
        };
        let mut keys = Vec::with_capacity(items.len());
        for item in items.iter() {
            self.env.charge(ITERATION_COST)?;
            self.scope.push((var.clone(), item.clone()));
            let key = self.eval(key);
            self.scope.pop();
            keys.push(key?);
        }
        let order = library::sort_order(&keys, &mut self.env)?;
        Ok(Value::from(
            order
                .into_iter()
                .filter_map(|i| items.get(i).cloned())
                .collect::<Vec<_>>(),
        ))
    }

    /// One iteration of a macro; `Ok(false)` ends the loop early.
    fn step(
        &mut self,
        kind: MacroKind,
        state: &mut MacroState,
        item: &Value,
        filter: Option<&Expr>,
        body: &Expr,
    ) -> Result<bool, EvalError> {
        let predicate = |this: &mut Self, expr: &Expr| -> Result<bool, EvalError> {
            match this.eval(expr)? {
                Value::Bool(b) => Ok(b),
                other => Err(EvalError::runtime(format!(
                    "{}: the predicate returned {}, not bool",
                    macro_name(kind),
                    other.type_name()
                ))),
            }
        };
        match kind {
            MacroKind::All | MacroKind::Exists => {
                let decisive = kind == MacroKind::Exists;
                match predicate(self, body) {
                    Ok(b) if b == decisive => {
                        state.decided = Some(decisive);
                        return Ok(false);
                    }
                    Ok(_) => {}
                    Err(e) if absorbable(&e) => {
                        state.error.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            MacroKind::ExistsOne => {
                if predicate(self, body)? {
                    state.count += 1;
                }
            }
            MacroKind::Filter => {
                if predicate(self, body)? {
                    self.env.charge(APPEND_COST)?;
                    state.push(item.clone())?;
                }
            }
            MacroKind::SortBy => {}
            MacroKind::Map => {
                if let Some(filter) = filter
                    && !predicate(self, filter)?
                {
                    return Ok(true);
                }
                let value = self.eval(body)?;
                self.env.charge(APPEND_COST)?;
                state.push(value)?;
            }
        }
        Ok(true)
    }
}

fn macro_name(kind: MacroKind) -> &'static str {
    match kind {
        MacroKind::All => "all",
        MacroKind::Exists => "exists",
        MacroKind::ExistsOne => "exists_one",
        MacroKind::Map => "map",
        MacroKind::Filter => "filter",
        MacroKind::SortBy => "sortBy",
    }
}

/// The accumulator of a macro.
struct MacroState {
    kind: MacroKind,
    decided: Option<bool>,
    error: Option<EvalError>,
    count: u64,
    items: Vec<Value>,
}

impl MacroState {
    fn new(kind: MacroKind, range_len: usize) -> Self {
        let capacity = if kind == MacroKind::Map { range_len } else { 0 };
        Self {
            kind,
            decided: None,
            error: None,
            count: 0,
            items: Vec::with_capacity(capacity.min(MAX_ELEMENTS)),
        }
    }

    fn push(&mut self, value: Value) -> Result<(), EvalError> {
        if self.items.len() >= MAX_ELEMENTS {
            return Err(EvalError::runtime(format!(
                "list of more than {MAX_ELEMENTS} elements exceeds the limit"
            )));
        }
        self.items.push(value);
        Ok(())
    }

    fn finish(self) -> Result<Value, EvalError> {
        match self.kind {
            MacroKind::All | MacroKind::Exists => {
                if let Some(b) = self.decided {
                    return Ok(Value::Bool(b));
                }
                match self.error {
                    Some(e) => Err(e),
                    None => Ok(Value::Bool(self.kind == MacroKind::All)),
                }
            }
            MacroKind::ExistsOne => Ok(Value::Bool(self.count == 1)),
            MacroKind::Map | MacroKind::Filter | MacroKind::SortBy => Ok(Value::from(self.items)),
        }
    }
}

/// Checked arithmetic on two ints or two uints (`a` and `b` as values, for messages): a
/// zero divisor and an overflow (`overflow` names it) are errors.
fn integer<T: CheckedArithmetic>(
    op: BinaryOp,
    (x, y): (T, T),
    (a, b): (&Value, &Value),
    overflow: &str,
) -> Result<T, EvalError> {
    let result = match op {
        BinaryOp::Add => x.add(y),
        BinaryOp::Sub => x.sub(y),
        BinaryOp::Mul => x.mul(y),
        BinaryOp::Div if y.is_zero() => return Err(EvalError::runtime("division by zero")),
        BinaryOp::Rem if y.is_zero() => return Err(EvalError::runtime("modulus by zero")),
        BinaryOp::Div => x.div(y),
        BinaryOp::Rem => x.rem(y),
        _ => return Err(binary_overload(op, a, b)),
    };
    result.ok_or_else(|| EvalError::runtime(overflow))
}

/// The checked operations of `i64` and `u64`.
trait CheckedArithmetic: Copy {
    fn is_zero(self) -> bool;
    fn add(self, other: Self) -> Option<Self>;
    fn sub(self, other: Self) -> Option<Self>;
    fn mul(self, other: Self) -> Option<Self>;
    fn div(self, other: Self) -> Option<Self>;
    fn rem(self, other: Self) -> Option<Self>;
}

macro_rules! checked_arithmetic {
    ($($t:ty),+) => {$(
        impl CheckedArithmetic for $t {
            fn is_zero(self) -> bool { self == 0 }
            fn add(self, other: Self) -> Option<Self> { self.checked_add(other) }
            fn sub(self, other: Self) -> Option<Self> { self.checked_sub(other) }
            fn mul(self, other: Self) -> Option<Self> { self.checked_mul(other) }
            fn div(self, other: Self) -> Option<Self> { self.checked_div(other) }
            fn rem(self, other: Self) -> Option<Self> { self.checked_rem(other) }
        }
    )+};
}

checked_arithmetic!(i64, u64);

fn timestamp_overflow() -> EvalError {
    EvalError::runtime("timestamp overflow: the result is outside the range of timestamps")
}

/// `- * / %` on numbers, and `+` on numbers. Int and uint arithmetic is checked; mixing a
/// double with an int or uint computes in double (JSON numbers are doubles in Tekton, so
/// `body.count * 1.5` keeps working when `count` arrives as an integer).
fn arithmetic(op: BinaryOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    match (op, a, b) {
        (BinaryOp::Sub, Value::Timestamp(t), Value::Duration(d)) => {
            return d
                .checked_neg()
                .and_then(|d| t.add(d))
                .map(Value::Timestamp)
                .ok_or_else(timestamp_overflow);
        }
        (BinaryOp::Sub, Value::Timestamp(x), Value::Timestamp(y)) => {
            return x
                .since(*y)
                .map(Value::Duration)
                .ok_or_else(|| EvalError::runtime("integer overflow"));
        }
        (BinaryOp::Sub, Value::Duration(x), Value::Duration(y)) => {
            return x
                .checked_sub(*y)
                .map(Value::Duration)
                .ok_or_else(|| EvalError::runtime("integer overflow"));
        }
        _ => {}
    }
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => {
            integer(op, (*x, *y), (a, b), "integer overflow").map(Value::Int)
        }
        (Value::Uint(x), Value::Uint(y)) => {
            integer(op, (*x, *y), (a, b), "unsigned integer overflow").map(Value::Uint)
        }
        (x, y)
            if x.is_number()
                && y.is_number()
                && matches!((x, y), (Value::Double(_), _) | (_, Value::Double(_))) =>
        {
            let (Some(x), Some(y)) = (as_f64(x), as_f64(y)) else {
                return Err(binary_overload(op, a, b));
            };
            Ok(Value::Double(match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
                _ => return Err(binary_overload(op, a, b)),
            }))
        }
        _ => Err(binary_overload(op, a, b)),
    }
}
