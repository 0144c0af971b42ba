//! Object metadata validation on create, with the rules and messages of the real API server
//! (`ValidateObjectMeta`, `IsDNS1123Subdomain`, `IsQualifiedName`, `IsValidLabelValue`).

use std::fmt;

use serde_json::{Map, Value};

const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const ANNOTATIONS_TOTAL_MAX: usize = 256 * 1024;

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and \
     must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric \
     characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

/// One field that failed validation, as `field.Error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: Problem,
}

/// What is wrong with the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// `FieldValueInvalid`: the value and why it is not accepted.
    Invalid { value: String, detail: String },
    /// `FieldValueInvalid` of a value that is not a string.
    InvalidLiteral { value: String, detail: String },
    /// `FieldValueRequired`.
    Required { detail: String },
    /// `FieldValueTooLong`.
    TooLong { max: usize },
}

impl FieldError {
    pub fn invalid(field: &str, value: &str, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            problem: Problem::Invalid {
                value: value.to_owned(),
                detail: detail.into(),
            },
        }
    }

    /// Like [`invalid`](Self::invalid), the value printed as is (Go's `%#v` of a number,
    /// e.g. `0x0`), not quoted.
    pub fn invalid_literal(field: &str, value: &str, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            problem: Problem::InvalidLiteral {
                value: value.to_owned(),
                detail: detail.into(),
            },
        }
    }

    pub fn required(field: &str, detail: &str) -> Self {
        FieldError {
            field: field.to_owned(),
            problem: Problem::Required {
                detail: detail.to_owned(),
            },
        }
    }

    /// `details.causes[].reason`.
    pub fn reason(&self) -> &'static str {
        match self.problem {
            Problem::Invalid { .. } | Problem::InvalidLiteral { .. } => "FieldValueInvalid",
            Problem::Required { .. } => "FieldValueRequired",
            Problem::TooLong { .. } => "FieldValueTooLong",
        }
    }

    /// The message without the field: `Invalid value: "x": <detail>`.
    pub fn body(&self) -> String {
        match &self.problem {
            Problem::Invalid { value, detail } => {
                format!("Invalid value: {}: {detail}", quote(value))
            }
            Problem::InvalidLiteral { value, detail } => {
                format!("Invalid value: {value}: {detail}")
            }
            Problem::Required { detail } => format!("Required value: {detail}"),
            Problem::TooLong { max } => format!("Too long: must have at most {max} bytes"),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Validates `metadata` of an object about to be created, after `generateName` has been
/// turned into a name. Fields are assumed to have the right JSON types (checked on decode).
pub fn validate_object_meta(metadata: &Map<String, Value>) -> Vec<FieldError> {
    let text = |key: &str| metadata.get(key).and_then(Value::as_str).unwrap_or("");
    let mut errors = Vec::new();

    let generate_name = text("generateName");
    if !generate_name.is_empty() {
        for msg in dns1123_subdomain(&mask_trailing_dash(generate_name)) {
            errors.push(FieldError::invalid(
                "metadata.generateName",
                generate_name,
                msg,
            ));
        }
    }
    let name = text("name");
    if name.is_empty() {
        errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in dns1123_subdomain(name) {
            errors.push(FieldError::invalid("metadata.name", name, msg));
        }
    }

    if let Some(labels) = metadata.get("labels").and_then(Value::as_object) {
        for (key, value) in labels {
            for msg in qualified_name(key) {
                errors.push(FieldError::invalid("metadata.labels", key, msg));
            }
            let value = value.as_str().unwrap_or("");
            for msg in label_value(value) {
                errors.push(FieldError::invalid("metadata.labels", value, msg));
            }
        }
    }

    if let Some(annotations) = metadata.get("annotations").and_then(Value::as_object) {
        let mut total = 0;
        for (key, value) in annotations {
            for msg in qualified_name(&key.to_lowercase()) {
                errors.push(FieldError::invalid("metadata.annotations", key, msg));
            }
            total += key.len() + value.as_str().map_or(0, str::len);
        }
        if total > ANNOTATIONS_TOTAL_MAX {
            errors.push(FieldError {
                field: "metadata.annotations".to_owned(),
                problem: Problem::TooLong {
                    max: ANNOTATIONS_TOTAL_MAX,
                },
            });
        }
    }
    errors
}

/// `IsDNS1123Subdomain`.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errors.push(max_len(DNS1123_SUBDOMAIN_MAX));
    }
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
            }
            _ => false,
        }
    };
    if !value.split('.').all(label_ok) {
        errors.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errors
}

/// `IsQualifiedName`: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// characters.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                errors.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|msg| format!("prefix part {msg}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. \
                 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errors.push(format!("name part {}", max_len(QUALIFIED_NAME_MAX)));
    }
    if !is_qualified_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errors
}

/// `IsValidLabelValue`: empty, or at most 63 characters matching the qualified-name pattern.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errors.push(max_len(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_qualified_name_part(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// A `generateName` is validated as a name whose trailing dash is not the end.
fn mask_trailing_dash(value: &str) -> String {
    match value.strip_suffix('-') {
        Some(rest) if !rest.is_empty() => format!("{rest}a"),
        _ => value.to_owned(),
    }
}

fn max_len(max: usize) -> String {
    format!("must be no more than {max} characters")
}

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}'")).collect();
    format!(
        "{msg} (e.g. {}, regex used for validation is '{fmt}')",
        examples.join(",  or ")
    )
}

/// Go's `%q` for the strings that reach messages (JSON quoting agrees for them).
fn quote(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subdomain_rules() {
        assert!(dns1123_subdomain("a.b-c.d0").is_empty());
        assert!(!dns1123_subdomain("Upper").is_empty());
        assert!(!dns1123_subdomain("-start").is_empty());
        assert!(!dns1123_subdomain("end-").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert_eq!(
            dns1123_subdomain(&"a".repeat(254)),
            vec!["must be no more than 253 characters".to_owned()]
        );
    }

    #[test]
    fn label_rules() {
        assert!(label_value("").is_empty());
        assert!(label_value("My_value.1-2").is_empty());
        assert!(!label_value("bad value").is_empty());
        assert!(!label_value(&"a".repeat(64)).is_empty());
        assert!(qualified_name("example.com/My_name").is_empty());
        assert!(!qualified_name("Example.com/name").is_empty());
        assert!(!qualified_name("a/b/c").is_empty());
        assert!(!qualified_name("/name").is_empty());
        assert!(!qualified_name(&"a".repeat(64)).is_empty());
    }

    #[test]
    fn messages_have_the_real_shape() {
        let meta = json!({"name": "x", "labels": {"app": "bad value!"}});
        let errors = validate_object_meta(meta.as_object().unwrap());
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "metadata.labels: Invalid value: \"bad value!\": a valid label must be an empty \
             string or consist of alphanumeric characters, '-', '_' or '.', and must start and \
             end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', \
             regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        let missing = validate_object_meta(json!({}).as_object().unwrap());
        assert_eq!(
            missing[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn generate_name_may_end_with_a_dash() {
        let meta = json!({"generateName": "run-", "name": "run-abcde"});
        assert!(validate_object_meta(meta.as_object().unwrap()).is_empty());
    }
}
