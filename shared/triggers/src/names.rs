//! Kubernetes name rules, checked before a name is used for a lookup, a subject or an object.

/// A DNS-1123 label: at most 63 characters of `[a-z0-9-]`, starting and ending alphanumeric.
/// Namespaces are labels.
pub fn is_dns1123_label(name: &str) -> bool {
    name.len() <= 63 && is_dns_part(name)
}

/// A DNS-1123 subdomain: at most 253 characters, labels joined by `.`. Most object names
/// (EventListener, PipelineRun, …) are subdomains.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_part)
}

fn is_dns_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(is_dns1123_label("team-a"));
        assert!(!is_dns1123_label("team.a"));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label("A"));
        assert!(!is_dns1123_label(""));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("github.listener-1"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("a/b"));
        assert!(!is_dns1123_subdomain("%2F"));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
    }
}
