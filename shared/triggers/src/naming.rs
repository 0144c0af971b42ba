//! Object names that make a trigger run happen once however often its event is delivered:
//! every object gets a name derived from its key ([`crate::idempotency::object_key`]; a
//! template's `generateName` becomes its prefix) and carries that key in an annotation. A
//! create that meets `409 Conflict` on an object with the same key finds the work already
//! done; one with another key is a name collision, and the object is created under the next
//! name derived from the key.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The annotation holding an object's idempotency key.
pub const ANNOTATION: &str = "sluice.dev/idempotency-key";
/// Names tried for one object before giving up on collisions.
pub const NAME_ATTEMPTS: u32 = 8;

/// The characters Kubernetes uses for `generateName` suffixes: no vowels, no look-alikes.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// Longest generated name: a Kubernetes label value, which Tekton copies names into.
const MAX_NAME: usize = 63;
const SUFFIX: usize = 8;

/// The key an object carries, if any.
pub fn key_of(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(ANNOTATION))
        .and_then(Value::as_str)
}

/// The object's `metadata.name` when it has one and no `generateName`: the name a stamped
/// object is created under.
pub fn name_of(object: &Value) -> Option<String> {
    let metadata = object.get("metadata")?.as_object()?;
    let name = metadata.get("name")?.as_str().filter(|n| !n.is_empty())?;
    metadata
        .get("generateName")
        .is_none_or(|g| g.as_str().is_none_or(str::is_empty))
        .then(|| name.to_owned())
}

/// Sets the annotation and the name for attempt `attempt` (0 first) on a rendered object.
/// `None` when the object has neither `name` nor `generateName`.
pub fn stamp(object: &mut Value, key: &str, attempt: u32) -> Option<String> {
    let metadata = object.get_mut("metadata")?.as_object_mut()?;
    let name = candidate_name(metadata, key, attempt)?;
    metadata.insert("name".to_owned(), Value::String(name.clone()));
    metadata.remove("generateName");
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(ANNOTATION.to_owned(), Value::String(key.to_owned()));
    }
    Some(name)
}

/// The name to try: a `generateName` prefix with a suffix from the key, or the template's own
/// name; after a collision, either with a further suffix from the key and the attempt.
fn candidate_name(metadata: &Map<String, Value>, key: &str, attempt: u32) -> Option<String> {
    let non_empty = |field: &str| {
        metadata
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    // A name already stamped (a retry of the same object) keeps its base.
    if let (Some(name), None) = (non_empty("name"), non_empty("generateName")) {
        if attempt == 0 {
            return Some(name.to_owned());
        }
        return Some(format!(
            "{}-{}",
            truncate(name, MAX_NAME - SUFFIX - 1),
            suffix(key, attempt)
        ));
    }
    let prefix = non_empty("generateName")?;
    Some(format!(
        "{}{}",
        truncate(prefix, MAX_NAME - SUFFIX),
        suffix(key, attempt)
    ))
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

fn suffix(key: &str, attempt: u32) -> String {
    let digest = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update(attempt.to_be_bytes())
        .finalize();
    digest
        .iter()
        .take(SUFFIX)
        .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_stamped_object_is_created_under_the_name_stamped_on_it() {
        let mut object = json!({"metadata": {"generateName": "ci-"}});
        assert_eq!(name_of(&object), None, "not stamped yet");
        let stamped = stamp(&mut object, "k.team-a.build.0", 0).unwrap();
        assert_eq!(name_of(&object), Some(stamped));
        assert_eq!(
            name_of(&json!({"metadata": {"name": "", "generateName": "ci-"}})),
            None
        );
    }

    #[test]
    fn generated_names_are_the_prefix_and_a_suffix_from_the_key() {
        let mut first = json!({"metadata": {"generateName": "ci-"}});
        let mut again = first.clone();
        let name = stamp(&mut first, "k.team-a.build.0", 0).unwrap();
        assert!(
            name.starts_with("ci-") && name.len() == 3 + SUFFIX,
            "{name}"
        );
        assert_eq!(stamp(&mut again, "k.team-a.build.0", 0).unwrap(), name);
        assert_eq!(first["metadata"]["name"], name);
        assert!(first["metadata"].get("generateName").is_none());
        assert_eq!(key_of(&first), Some("k.team-a.build.0"));

        let mut other = json!({"metadata": {"generateName": "ci-"}});
        assert_ne!(stamp(&mut other, "k2.team-a.build.0", 0).unwrap(), name);
        let mut next = json!({"metadata": {"generateName": "ci-"}});
        let collision = stamp(&mut next, "k.team-a.build.0", 1).unwrap();
        assert_ne!(collision, name, "a collision moves to another name");
    }

    #[test]
    fn given_names_are_kept_until_they_collide_and_stay_label_sized() {
        let long = "x".repeat(80);
        let mut object = json!({"metadata": {"name": long, "annotations": null}});
        assert_eq!(stamp(&mut object, "k", 0).unwrap(), "x".repeat(80));
        let mut object = json!({"metadata": {"name": "x".repeat(80)}});
        let moved = stamp(&mut object, "k", 2).unwrap();
        assert_eq!(moved.len(), MAX_NAME);
        assert!(moved.starts_with(&"x".repeat(MAX_NAME - SUFFIX - 1)));
        let mut nameless = json!({"metadata": {}});
        assert_eq!(stamp(&mut nameless, "k", 0), None);
    }
}
