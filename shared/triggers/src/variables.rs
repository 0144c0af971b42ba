//! Where `$(` begins in text: the opening of a binding's expression (`$(body.x)`) or of a
//! template's variable (`$(tt.params.x)`, `$(uid)`).
//!
//! Rendering looks for it in every string and key of every template, and in every binding
//! value, for every event. `str::find("$(")` sets up a substring searcher on each call; a
//! search for the byte `$` alone is a plain byte scan, and `$` is rare in that text.

/// The byte offset of the first `$(` in `text`.
pub(crate) fn find_open(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = bytes[from..].iter().position(|&b| b == b'$') {
        let at = from + found;
        if bytes.get(at + 1) == Some(&b'(') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Whether `text` holds a `$(`.
pub(crate) fn has_open(text: &str) -> bool {
    find_open(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::find_open;

    #[test]
    fn finds_the_first_dollar_paren_and_nothing_else() {
        assert_eq!(find_open("$(uid)"), Some(0));
        assert_eq!(find_open("build-$(tt.params.sha)-$(uid)"), Some(6));
        assert_eq!(find_open("$$(x)"), Some(1));
        assert_eq!(find_open("price: $5 ($ each) $"), None);
        assert_eq!(find_open("é$(x)"), Some(2));
        assert_eq!(find_open("$"), None);
        assert_eq!(find_open(""), None);
    }
}
