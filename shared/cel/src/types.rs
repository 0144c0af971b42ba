//! The checker's types and how they unify: a type is assignable to another when a
//! substitution of type parameters makes them agree, with `dyn` (and the error type)
//! agreeing with everything, as in CEL's type-checking rules.

use std::collections::HashMap;
use std::fmt;

/// A static type, as the checker infers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CelType {
    Dyn,
    /// The type of an expression that failed to check; assignable to and from anything.
    Error,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Timestamp,
    Duration,
    List(Box<CelType>),
    Map(Box<CelType>, Box<CelType>),
    /// `type(T)`; `Type(None)` is the bare type of types.
    Type(Option<Box<CelType>>),
    /// A type parameter of a declaration, or a fresh type variable of the checker.
    Param(Var),
}

/// A type parameter: named in a declaration (`A`), or made fresh by the checker for one
/// use of a declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Var {
    Named(char),
    Fresh(u32),
}

impl CelType {
    pub(crate) fn list(elem: CelType) -> Self {
        Self::List(Box::new(elem))
    }

    pub(crate) fn map(key: CelType, value: CelType) -> Self {
        Self::Map(Box::new(key), Box::new(value))
    }

    pub(crate) fn type_of(t: CelType) -> Self {
        Self::Type(Some(Box::new(t)))
    }

    fn is_dyn_or_error(&self) -> bool {
        matches!(self, Self::Dyn | Self::Error)
    }

    /// Parses the notation used by the declarations: `int`, `list(A)`, `map(string, dyn)`,
    /// `type(int)`, `timestamp`; a single upper-case letter is a type parameter.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(inner) = text.strip_suffix(')') {
            let (head, args) = inner.split_once('(')?;
            let args = split_top_level(args);
            return match (head.trim(), args.as_slice()) {
                ("list", [elem]) => Some(Self::list(Self::parse(elem)?)),
                ("map", [key, value]) => Some(Self::map(Self::parse(key)?, Self::parse(value)?)),
                ("type", [inner]) => Some(Self::type_of(Self::parse(inner)?)),
                _ => None,
            };
        }
        Some(match text {
            "dyn" => Self::Dyn,
            "null" | "null_type" => Self::Null,
            "bool" => Self::Bool,
            "int" => Self::Int,
            "uint" => Self::Uint,
            "double" => Self::Double,
            "string" => Self::String,
            "bytes" => Self::Bytes,
            "timestamp" | "google.protobuf.Timestamp" => Self::Timestamp,
            "duration" | "google.protobuf.Duration" => Self::Duration,
            "type" => Self::Type(None),
            "error" => Self::Error,
            p if p.len() == 1 && p.chars().all(|c| c.is_ascii_uppercase()) => {
                Self::Param(Var::Named(p.chars().next()?))
            }
            _ => return None,
        })
    }
}

/// Splits `a, map(b, c)` at its top-level commas.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

impl fmt::Display for CelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dyn => f.write_str("dyn"),
            Self::Error => f.write_str("*error*"),
            Self::Null => f.write_str("null_type"),
            Self::Bool => f.write_str("bool"),
            Self::Int => f.write_str("int"),
            Self::Uint => f.write_str("uint"),
            Self::Double => f.write_str("double"),
            Self::String => f.write_str("string"),
            Self::Bytes => f.write_str("bytes"),
            Self::Timestamp => f.write_str("google.protobuf.Timestamp"),
            Self::Duration => f.write_str("google.protobuf.Duration"),
            Self::List(elem) => write!(f, "list({elem})"),
            Self::Map(key, value) => write!(f, "map({key}, {value})"),
            Self::Type(None) => f.write_str("type"),
            Self::Type(Some(inner)) => write!(f, "type({inner})"),
            Self::Param(Var::Named(c)) => write!(f, "{c}"),
            Self::Param(Var::Fresh(n)) => write!(f, "_var{n}"),
        }
    }
}

/// Substitutions of type parameters found so far. A unification that fails is undone
/// from a log of what it changed, so trying one costs what it touches, however many
/// substitutions an expression has made before.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mapping {
    substitutions: HashMap<Var, CelType>,
    /// What the unification under way replaced: the parameter and its earlier value.
    undo: Vec<(Var, Option<CelType>)>,
}

impl Mapping {
    fn find(&self, t: &CelType) -> Option<&CelType> {
        match t {
            CelType::Param(var) => self.substitutions.get(var),
            _ => None,
        }
    }

    fn add(&mut self, param: &CelType, to: CelType) {
        if let CelType::Param(var) = param {
            let previous = self.substitutions.insert(*var, to);
            self.undo.push((*var, previous));
        }
    }

    /// Undoes what the failed unification changed.
    fn roll_back(&mut self) {
        while let Some((var, previous)) = self.undo.pop() {
            match previous {
                Some(t) => self.substitutions.insert(var, t),
                None => self.substitutions.remove(&var),
            };
        }
    }

    /// Whether `t1` and `t2` agree (an argument's type and a parameter's, an expected
    /// type and a found one); on success the mapping keeps the substitutions that made it
    /// so, on failure it is unchanged.
    pub(crate) fn unify(&mut self, t1: &CelType, t2: &CelType) -> bool {
        self.undo.clear();
        let ok = self.assignable(t1, t2, 0);
        if !ok {
            self.roll_back();
        }
        self.undo.clear();
        ok
    }

    /// Like [`Mapping::unify`], pairwise over two lists of the same length.
    pub(crate) fn unify_all(&mut self, l1: &[CelType], l2: &[CelType]) -> bool {
        if l1.len() != l2.len() {
            return false;
        }
        self.undo.clear();
        let ok = l1.iter().zip(l2).all(|(t1, t2)| self.assignable(t1, t2, 0));
        if !ok {
            self.roll_back();
        }
        self.undo.clear();
        ok
    }

    fn assignable(&mut self, t1: &CelType, t2: &CelType, depth: usize) -> bool {
        // Types are built by the checker from a bounded tree; the bound keeps a pathological
        // substitution from recursing without end.
        if depth > 256 {
            return false;
        }
        if matches!(t2, CelType::Param(_)) {
            let (valid, had_substitution) = self.valid_substitution(t1, t2, depth);
            if valid {
                return true;
            }
            if had_substitution {
                return false;
            }
        }
        if matches!(t1, CelType::Param(_)) {
            return self.valid_substitution(t2, t1, depth).0;
        }
        if t1.is_dyn_or_error() || t2.is_dyn_or_error() {
            return true;
        }
        if *t1 == CelType::Null {
            return nullable(t2);
        }
        if *t2 == CelType::Null {
            return nullable(t1);
        }
        match (t1, t2) {
            (CelType::Type(_), CelType::Type(_)) => true,
            (CelType::List(a), CelType::List(b)) => self.assignable(a, b, depth + 1),
            (CelType::Map(k1, v1), CelType::Map(k2, v2)) => {
                self.assignable(k1, k2, depth + 1) && self.assignable(v1, v2, depth + 1)
            }
            (CelType::List(_) | CelType::Map(..) | CelType::Type(_), _) => false,
            (a, b) => a == b,
        }
    }

    /// Whether `t2`, a parameter, may stand for `t1`: `(valid, t2 already had a
    /// substitution)`.
    fn valid_substitution(&mut self, t1: &CelType, t2: &CelType, depth: usize) -> (bool, bool) {
        if t1 == t2 {
            return (true, true);
        }
        if let Some(current) = self.find(t2).cloned() {
            if *t1 == current {
                return (true, true);
            }
            if self.assignable(t1, &current, depth + 1) {
                let general = most_general(t1, &current);
                if self.not_referenced_in(t2, &general, 0) {
                    self.add(t2, general);
                }
                return (true, true);
            }
            return (false, true);
        }
        if self.not_referenced_in(t2, t1, 0) {
            self.add(t2, t1.clone());
            return (true, false);
        }
        (false, false)
    }

    fn not_referenced_in(&self, t: &CelType, within: &CelType, depth: usize) -> bool {
        if t == within {
            return false;
        }
        if depth > 256 {
            return false;
        }
        match within {
            CelType::Param(_) => match self.find(within) {
                Some(sub) => self.not_referenced_in(t, sub, depth + 1),
                None => true,
            },
            CelType::List(elem) => self.not_referenced_in(t, elem, depth + 1),
            CelType::Map(k, v) => {
                self.not_referenced_in(t, k, depth + 1) && self.not_referenced_in(t, v, depth + 1)
            }
            CelType::Type(Some(inner)) => self.not_referenced_in(t, inner, depth + 1),
            _ => true,
        }
    }

    /// `t` with every substituted parameter replaced; with `params_to_dyn`, parameters left
    /// open become `dyn`.
    pub(crate) fn substitute(&self, t: &CelType, params_to_dyn: bool) -> CelType {
        self.substitute_at(t, params_to_dyn, 0)
    }

    fn substitute_at(&self, t: &CelType, params_to_dyn: bool, depth: usize) -> CelType {
        if depth > 256 {
            return CelType::Dyn;
        }
        if let Some(sub) = self.find(t) {
            return self.substitute_at(sub, params_to_dyn, depth + 1);
        }
        match t {
            CelType::Param(_) if params_to_dyn => CelType::Dyn,
            CelType::List(elem) => {
                CelType::list(self.substitute_at(elem, params_to_dyn, depth + 1))
            }
            CelType::Map(k, v) => CelType::map(
                self.substitute_at(k, params_to_dyn, depth + 1),
                self.substitute_at(v, params_to_dyn, depth + 1),
            ),
            CelType::Type(Some(inner)) => {
                CelType::type_of(self.substitute_at(inner, params_to_dyn, depth + 1))
            }
            other => other.clone(),
        }
    }
}

/// Whether `null` may be used as a value of type `t`.
fn nullable(t: &CelType) -> bool {
    matches!(
        t,
        CelType::Null | CelType::Dyn | CelType::Timestamp | CelType::Duration
    )
}

/// Whether `t1` is at most as specific as `t2` (`dyn` and parameters are the least).
fn less_or_equally_specific(t1: &CelType, t2: &CelType) -> bool {
    match (t1, t2) {
        (CelType::Dyn | CelType::Param(_), _) => true,
        (_, CelType::Dyn | CelType::Param(_)) => false,
        (CelType::List(a), CelType::List(b)) => less_or_equally_specific(a, b),
        (CelType::Map(k1, v1), CelType::Map(k2, v2)) => {
            less_or_equally_specific(k1, k2) && less_or_equally_specific(v1, v2)
        }
        (CelType::Type(_), CelType::Type(_)) => true,
        (a, b) => a == b,
    }
}

/// The more general of two types that agree.
pub(crate) fn most_general(t1: &CelType, t2: &CelType) -> CelType {
    if less_or_equally_specific(t1, t2) {
        t1.clone()
    } else {
        t2.clone()
    }
}

/// Replaces the named parameters of a declaration with fresh variables, so that each use of
/// an overload unifies on its own.
pub(crate) fn instantiate(t: &CelType, fresh: &[(Var, CelType)]) -> CelType {
    match t {
        CelType::Param(var) => fresh
            .iter()
            .find(|(v, _)| v == var)
            .map_or_else(|| t.clone(), |(_, f)| f.clone()),
        CelType::List(elem) => CelType::list(instantiate(elem, fresh)),
        CelType::Map(k, v) => CelType::map(instantiate(k, fresh), instantiate(v, fresh)),
        CelType::Type(Some(inner)) => CelType::type_of(instantiate(inner, fresh)),
        other => other.clone(),
    }
}

/// The type parameters named in `t`, each once, in order of appearance.
pub(crate) fn params_in(t: &CelType, out: &mut Vec<Var>) {
    match t {
        CelType::Param(var) if !out.contains(var) => out.push(*var),
        CelType::List(elem) => params_in(elem, out),
        CelType::Map(k, v) => {
            params_in(k, out);
            params_in(v, out);
        }
        CelType::Type(Some(inner)) => params_in(inner, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> CelType {
        CelType::parse(text).unwrap()
    }

    #[test]
    fn parameters_unify_and_dyn_agrees_with_everything() {
        let mut m = Mapping::default();
        assert!(m.unify(&t("list(int)"), &t("list(A)")));
        assert_eq!(m.substitute(&t("A"), false), t("int"));
        assert!(!m.unify(&t("string"), &t("A")));
        assert!(m.unify(&t("dyn"), &t("A")));
        assert!(m.unify(&t("map(string, list(int))"), &t("map(string, dyn)")));
        assert!(!m.unify(&t("uint"), &t("int")));
        assert!(m.unify(&t("null"), &t("timestamp")));
        assert_eq!(
            t("map(string, list(A))").to_string(),
            "map(string, list(A))"
        );
    }
}
