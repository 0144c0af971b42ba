//! A call as the library sees it: the name and shape (for error messages) and the
//! arguments, with accessors that fail with CEL's `no such overload` error.

use crate::error::EvalError;
use crate::value::{Value, describe};

/// A call being evaluated: its name and shape (for error messages) and its arguments,
/// receiver first.
pub(crate) struct Call<'a> {
    pub name: &'a str,
    pub method: bool,
    pub args: &'a [Value],
}

impl Call<'_> {
    /// `no such overload: size(int)` or `no such overload: int.truncate(string)`.
    pub(super) fn no_overload(&self) -> EvalError {
        let types = |values: &[Value]| {
            values
                .iter()
                .map(Value::type_name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let message = match (self.method, self.args.split_first()) {
            (true, Some((receiver, rest))) => format!(
                "no such overload: {}.{}({})",
                receiver.type_name(),
                self.name,
                types(rest)
            ),
            _ => format!("no such overload: {}({})", self.name, types(self.args)),
        };
        EvalError::runtime(message)
    }

    /// An error naming the function.
    pub(super) fn error(&self, problem: impl std::fmt::Display) -> EvalError {
        EvalError::runtime(format!("{}: {problem}", self.name))
    }

    /// The argument at `index`.
    pub(super) fn arg(&self, index: usize) -> Result<&Value, EvalError> {
        self.args.get(index).ok_or_else(|| self.no_overload())
    }

    /// The argument at `index` as a string.
    pub(super) fn str(&self, index: usize) -> Result<&str, EvalError> {
        match self.arg(index)? {
            Value::String(s) => Ok(s),
            _ => Err(self.no_overload()),
        }
    }

    /// The argument at `index` as an int (a uint that fits is accepted).
    pub(super) fn int(&self, index: usize) -> Result<i64, EvalError> {
        match self.arg(index)? {
            Value::Int(i) => Ok(*i),
            Value::Uint(u) => {
                i64::try_from(*u).map_err(|_| self.error(format!("{u} is out of range")))
            }
            _ => Err(self.no_overload()),
        }
    }

    /// The argument at `index` as a list.
    pub(super) fn list(&self, index: usize) -> Result<&[Value], EvalError> {
        match self.arg(index)? {
            Value::List(items) => Ok(items),
            _ => Err(self.no_overload()),
        }
    }

    /// An error for an index or count outside the allowed range.
    pub(super) fn out_of_range(&self, what: &str, value: i64) -> EvalError {
        self.error(format!("{what} {value} is out of range"))
    }
}

/// An error for a value that cannot be converted.
pub(super) fn conversion_error(value: &Value, target: &str) -> EvalError {
    EvalError::runtime(format!("cannot convert {} to {target}", describe(value)))
}
