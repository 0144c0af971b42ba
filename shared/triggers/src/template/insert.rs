//! What a param's text becomes inside a rendered string: Tekton pastes the text into a JSON
//! string literal, so the created resource holds that text read back by a JSON parser. A
//! backslash that starts no JSON escape makes Tekton's resource unreadable and its trigger
//! fail, and so it does here; an unescaped quote or control character, which would do the
//! same in Tekton, is kept as written instead (it cannot add structure here).

use std::borrow::Cow;

/// The string inserted for a param whose Tekton text is `text`, or why Tekton could not
/// read its resource with it.
///
/// With `old_escape_quotes` every `"` becomes `\"` first, as Tekton does for templates with
/// the `triggers.tekton.dev/old-escape-quotes` annotation. `$(uid)` inside the text becomes
/// `uid` (Tekton replaces it after the params, in the whole text). The text is then decoded
/// as JSON string content. A backslash that starts no escape is an error, as in Tekton;
/// otherwise, text that is not valid string content (an unescaped quote or control
/// character: Tekton's resource would not parse, or would gain structure) is inserted as
/// written.
pub(super) fn insertion(
    text: &str,
    old_escape_quotes: bool,
    uid: &str,
) -> Result<String, &'static str> {
    let text = if old_escape_quotes {
        Cow::Owned(text.replace('"', "\\\""))
    } else {
        Cow::Borrowed(text)
    };
    let text = replace_uid(&text, uid);
    if has_invalid_escape(&text) {
        return Err("a `\\` starts no JSON escape (write `\\\\` for a backslash)");
    }
    Ok(decode(&text).unwrap_or(text))
}

/// Whether a `\` in `text` starts no JSON string escape (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, `\u` and four hex digits), or ends it.
fn has_invalid_escape(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            continue;
        }
        match chars.next() {
            Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => {}
            Some('u') if hex4(&mut chars).is_some() => {}
            _ => return true,
        }
    }
    false
}

/// `$(uid)` replaced by `uid`, except where it is escaped as `$$(uid)`.
fn replace_uid(text: &str, uid: &str) -> String {
    const UID: &str = "$(uid)";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(UID) {
        out.push_str(&rest[..at]);
        if out.ends_with('$') {
            out.push_str(UID);
        } else {
            out.push_str(uid);
        }
        rest = &rest[at + UID.len()..];
    }
    out.push_str(rest);
    out
}

/// The inside of a JSON string literal decoded as Go's `encoding/json` decodes it (a lone
/// UTF-16 surrogate becomes U+FFFD), or `None` where Go would refuse it.
pub(super) fn decode(text: &str) -> Option<String> {
    if !text.contains(['\\', '"']) && !text.chars().any(is_control) {
        return Some(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            c if is_control(c) => return None,
            '\\' => {
                let escaped = match chars.next()? {
                    c @ ('"' | '\\' | '/') => c,
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' => {
                        let unit = hex4(&mut chars)?;
                        match unit {
                            0xD800..0xDC00 => {
                                // A high surrogate pairs with a `\u` low surrogate right
                                // after it; otherwise it stands alone.
                                let mut ahead = chars.clone();
                                let low = (ahead.next() == Some('\\') && ahead.next() == Some('u'))
                                    .then(|| hex4(&mut ahead))
                                    .flatten()
                                    .filter(|low| (0xDC00..0xE000).contains(low));
                                match low {
                                    Some(low) => {
                                        chars = ahead;
                                        let code =
                                            0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                                        char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                                    }
                                    None => char::REPLACEMENT_CHARACTER,
                                }
                            }
                            unit => char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
                        }
                    }
                    _ => return None,
                };
                out.push(escaped);
            }
            c => out.push(c),
        }
    }
    Some(out)
}

fn is_control(c: char) -> bool {
    u32::from(c) < 0x20
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    (0..4).try_fold(0, |acc, _| Some(acc * 16 + chars.next()?.to_digit(16)?))
}
