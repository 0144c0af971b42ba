//! The parts of a body a trigger's bindings read, without building the rest.
//!
//! Most bindings read a few plain fields (`$(body.after)`, `$(body.repository.clone_url)`).
//! [`parse_fields`] reads the body once, checks all of it is JSON as [`super::parse`] does,
//! and builds only the values those paths reach: the objects on the way keep only the fields
//! a path names, and whatever a path ends at (or meets that is not an object) is kept whole.
//! Every plain path then selects from it exactly what it selects from the whole body, and a
//! path that finds nothing finds nothing in both.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::NotJson;

/// The plain field paths read from a body, as a tree of field names. Small: every trigger
/// of a catalogue holds one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldTree {
    /// A path ends here: the value is kept whole.
    whole: bool,
    /// By name.
    fields: Vec<(Box<str>, FieldTree)>,
}

impl FieldTree {
    /// Adds the path of field names `path` (empty: the whole body).
    pub fn insert<'a>(&mut self, path: impl IntoIterator<Item = &'a str>) {
        let mut node = self;
        for field in path {
            if node.whole {
                return;
            }
            let at = match node.position(field) {
                Ok(at) => at,
                Err(at) => {
                    node.fields.insert(at, (field.into(), FieldTree::default()));
                    at
                }
            };
            node = &mut node.fields[at].1;
        }
        node.whole = true;
        node.fields = Vec::new();
    }

    /// Whether a path reads the whole body.
    pub fn is_whole(&self) -> bool {
        self.whole
    }

    /// Gives back what building the tree reserved and did not use.
    pub fn shrink_to_fit(&mut self) {
        self.fields.shrink_to_fit();
        for (_, tree) in &mut self.fields {
            tree.shrink_to_fit();
        }
    }

    fn get(&self, field: &str) -> Option<&FieldTree> {
        let at = self.position(field).ok()?;
        Some(&self.fields[at].1)
    }

    fn position(&self, field: &str) -> Result<usize, usize> {
        self.fields
            .binary_search_by(|(name, _)| name.as_ref().cmp(field))
    }
}

/// The body with only what `wanted` reaches built (see the module's doc); fails exactly
/// when [`super::parse`] does. An empty body is `null`, as there.
pub fn parse_fields(body: &[u8], wanted: &FieldTree) -> Result<Value, NotJson> {
    if wanted.whole || body.is_empty() {
        return super::parse(body);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let picked = Pick(wanted)
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    // Where the body is not JSON, the whole parse says why, in its own words.
    picked.or_else(|_| super::parse(body))
}

/// Reads one value, keeping of objects only the fields the tree names.
struct Pick<'t>(&'t FieldTree);

impl<'de> DeserializeSeed<'de> for Pick<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0.whole {
            return serde::Deserialize::deserialize(deserializer);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pick<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            match self.0.get(&key) {
                // A repeated field replaces the earlier one, as in the whole body.
                Some(tree) => {
                    let value = map.next_value_seed(Pick(tree))?;
                    kept.insert(key.into_owned(), value);
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        Ok(Value::Object(kept))
    }

    // A value that is not an object: a path goes no further into it, and it is kept whole.

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// Reads a value and keeps nothing of it. Unlike `IgnoredAny`, which only finds where a
/// value ends, it reads each string and number as building the value would, so that it
/// fails where that does (a number out of range, a `\u` surrogate without its pair, a
/// string that is not UTF-8) and the body is judged as a whole.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// An object's key, borrowed from the body unless it holds escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::BindingParam;
    use crate::expr::{EventContext, body_reads, evaluate};
    use crate::headers::Headers;

    /// Bodies as senders send them, and as a listener with payload validation off lets
    /// through: repeated fields, escaped keys, values that are not objects where a path goes
    /// on, numbers of every kind, and JSON that is broken only where no binding looks.
    const BODIES: &[&[u8]] = &[
        br#"{"after":"9f1c","ref":"refs/heads/main","repository":{"clone_url":"https://git.example/o/r.git","name":"r","owner":{"login":"o","id":7}},"commits":[{"id":"1"},{"id":"2"}],"n":1.5e3,"big":123456789012345678901234567890,"neg":-5,"yes":true,"none":null}"#,
        br#"{"after":"first","repository":{"clone_url":"a"},"after":"second","repository":"flat"}"#,
        br#"{"repository":"flat","repository":{"owner":{"login":"again"}}}"#,
        br#"{"repository":[{"clone_url":"in a list"}],"after":["a","b"],"ref":{"deep":{"er":1}}}"#,
        br#"{"af\u0074er":"escaped key","repository":{"clone\u005furl":"u\n\u00e9"}}"#,
        br#"  {"after" : 0.1 , "ref":-0, "repository":{}}  "#,
        br#"[{"after":"in an array"}]"#,
        br#""just text""#,
        b"42",
        b"null",
        b"",
        br#"{"after":"x",}"#,
        br#"{"after":"x"} trailing"#,
        br#"{"after":"x","other":[1,2}"#,
        br#"{"after":"x","other":"\ud800"}"#,
        br#"{"after":"x","other":"\uDC00 low"}"#,
        br#"{"after":"x","other":"\q"}"#,
        b"{\"after\":\"x\",\"other\":\"\xff\"}",
        b"{\"after\":\"x\",\"other\":\"a\tb\"}",
        br#"{"after":"x","other":1e400}"#,
        br#"{"after":"x","other":-}"#,
        br#"{"after":"x","other":tru}"#,
        br#"{"after":"x"}{"after":"y"}"#,
        br#"{"after":"x","other":{"a":1,"a":2}}"#,
    ];

    /// Sets of binding values, each with the expressions one trigger's bindings could hold.
    const BINDINGS: &[&[&str]] = &[
        &["$(body.after)"],
        &[
            "$(body.after)",
            "$(body.ref)",
            "$(body.repository.clone_url)",
        ],
        &["$(body.repository)", "$(body.repository.owner.login)"],
        &["$(body.repository.owner)", "x-$(body.after)-$(header.X-Id)"],
        &["$(body.missing.deep)", "$(body.after.more)"],
        &["$(body.commits)", "$(body.n)", "$(body.big)", "$(body.neg)"],
        &["$(body.yes) $(body.none)", "$(body.other)"],
        &["$(header.X-Id)", "$(extensions.e)", "no expression"],
        &[],
    ];

    fn params(values: &[&str]) -> Vec<BindingParam> {
        values
            .iter()
            .enumerate()
            .map(|(i, value)| BindingParam {
                name: format!("p{i}"),
                value: (*value).to_owned(),
            })
            .collect()
    }

    /// Each expression of `values`, as the trigger's render writes it (or why it cannot).
    fn rendered(values: &[&str], body: &Value) -> Vec<String> {
        let mut headers = Headers::new();
        headers.append("X-Id", "42");
        let extensions = Map::new();
        let ctx = EventContext {
            body,
            headers: &headers,
            extensions: &extensions,
            event_id: "e",
        };
        values
            .iter()
            .flat_map(|value| value.split("$(").skip(1))
            .filter_map(|piece| piece.split_once(')').map(|(expression, _)| expression))
            .map(|expression| match evaluate(expression, &ctx) {
                Ok(text) => format!("{expression} = {text}"),
                Err(problem) => format!("{expression} fails: {problem}"),
            })
            .collect()
    }

    /// [`BODIES`], and bodies nested about as deep as the parser allows (128 levels).
    fn bodies() -> Vec<Vec<u8>> {
        let mut bodies: Vec<Vec<u8>> = BODIES.iter().map(|body| body.to_vec()).collect();
        for depth in [126, 127, 128, 200] {
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            bodies.push(format!(r#"{{"after":"x","other":{nested}}}"#).into_bytes());
            bodies.push(format!(r#"{{"after":{nested}}}"#).into_bytes());
        }
        bodies
    }

    #[test]
    fn every_binding_reads_from_the_fields_what_it_reads_from_the_whole_body() {
        let mut compared = 0;
        for body in &bodies() {
            let whole = crate::body::parse(body);
            for values in BINDINGS {
                let reads = body_reads(&params(values));
                let fields = parse_fields(body, &reads);
                let shown = String::from_utf8_lossy(body);
                match (&whole, &fields) {
                    (Ok(whole), Ok(fields)) => {
                        assert_eq!(
                            rendered(values, fields),
                            rendered(values, whole),
                            "{values:?} on {shown}"
                        );
                        compared += 1;
                    }
                    (Err(whole), Err(fields)) => assert_eq!(fields, whole, "{shown}"),
                    _ => panic!("{values:?} on {shown}: whole {whole:?}, fields {fields:?}"),
                }
            }
        }
        assert!(
            compared > 50,
            "only {compared} comparisons were of JSON bodies"
        );
    }

    #[test]
    fn only_what_the_paths_reach_is_built() {
        let body = BODIES[0];
        let reads = body_reads(&params(&[
            "$(body.after)",
            "$(body.repository.owner.login)",
            "$(body.missing)",
        ]));
        let fields = parse_fields(body, &reads).unwrap();
        assert_eq!(
            fields,
            serde_json::json!({"after": "9f1c", "repository": {"owner": {"login": "o"}}})
        );

        // A path to an object keeps all of it, whichever comes first.
        let whole = crate::body::parse(body).unwrap();
        for values in [
            ["$(body.repository.owner.login)", "$(body.repository)"],
            ["$(body.repository)", "$(body.repository.owner.login)"],
        ] {
            let fields = parse_fields(body, &body_reads(&params(&values))).unwrap();
            assert_eq!(
                fields,
                serde_json::json!({"repository": whole["repository"]})
            );
        }
    }

    #[test]
    fn a_path_to_the_whole_body_or_past_a_plain_field_reads_all_of_it() {
        for values in [
            &["$(body)"][..],
            &["$(body.after)", "$(body)"],
            &["$(body['after'])"],
            &["$(body.commits[0].id)"],
            &["$(body.commits[*].id)"],
            &["$(.body.after)"],
            &["$(Body.after)"],
            &["$(..id)"],
        ] {
            let reads = body_reads(&params(values));
            assert!(reads.is_whole(), "{values:?}");
            assert_eq!(
                parse_fields(BODIES[0], &reads).unwrap(),
                crate::body::parse(BODIES[0]).unwrap()
            );
        }
    }

    #[test]
    fn bindings_that_read_no_body_still_need_it_to_be_json() {
        let reads = body_reads(&params(&["$(header.X-Id)", "$(extensions.e)"]));
        assert!(!reads.is_whole());
        assert_eq!(
            parse_fields(br#"{"a":[1,{"b":2}]}"#, &reads).unwrap(),
            serde_json::json!({})
        );
        let error = parse_fields(br#"{"a":[1,{"b":2}]"#, &reads).unwrap_err();
        assert!(
            error.to_string().starts_with("the body is not JSON ("),
            "{error}"
        );
    }
}
