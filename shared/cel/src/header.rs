//! Header names as Go spells them: `header` is keyed by canonical name, and Tekton's
//! `header.match` and `header.canonical` look names up the same way.

/// Go's `textproto.CanonicalMIMEHeaderKey`: the first letter and every letter after `-`
/// upper case, the rest lower case (`x-github-event` → `X-Github-Event`). A name with a
/// byte that is not a valid token character is returned as is.
pub fn canonical_name(name: &str) -> String {
    let mut canonical = String::with_capacity(name.len());
    push_canonical_name(name, &mut canonical);
    canonical
}

/// Appends [`canonical_name`] of `name` to `out`.
pub fn push_canonical_name(name: &str, out: &mut String) {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        out.push_str(name);
        return;
    }
    // Token characters are ASCII: one byte, one char.
    let mut upper = true;
    for byte in name.bytes() {
        out.push(char::from(if upper {
            byte.to_ascii_uppercase()
        } else {
            byte.to_ascii_lowercase()
        }));
        upper = byte == b'-';
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonicalised_like_go() {
        assert_eq!(canonical_name("x-github-event"), "X-Github-Event");
        assert_eq!(canonical_name("X-GitHub-Event"), "X-Github-Event");
        assert_eq!(canonical_name("content-TYPE"), "Content-Type");
        assert_eq!(canonical_name("bad header"), "bad header");
    }
}
