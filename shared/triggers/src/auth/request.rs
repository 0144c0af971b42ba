//! What every interceptor reads from a request, and the primitives they check it with:
//! single-valued credential headers, event types, timestamps, and constant-time comparison
//! of MACs and secrets.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::failure::{AuthFailure, Credential, Problem};

/// The request as the interceptors see it: the raw body, exactly as it will be queued.
#[derive(Clone, Copy)]
pub(crate) struct Request<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The server's clock, for timestamp windows.
    pub now: SystemTime,
}

/// A credential header: `name` in lower case for the lookup, `label` as the provider spells
/// it for messages.
#[derive(Clone, Copy)]
pub(crate) struct CredentialHeader<'n> {
    pub name: &'n str,
    pub label: &'n str,
    pub credential: Credential,
}

impl CredentialHeader<'_> {
    /// A refusal about this header.
    pub fn failure(&self, problem: Problem) -> AuthFailure {
        AuthFailure::new(self.credential, Cow::Owned(self.label.to_owned()), problem)
    }

    /// The header's one value; missing or repeated is a refusal.
    pub fn require<'r>(&self, request: &Request<'r>) -> Result<&'r [u8], AuthFailure> {
        self.optional(request)?
            .ok_or_else(|| self.failure(Problem::Missing))
    }

    /// The header's one value, if sent; repeated is a refusal (which one would count is
    /// ambiguous, and senders send one).
    pub fn optional<'r>(&self, request: &Request<'r>) -> Result<Option<&'r [u8]>, AuthFailure> {
        let mut values = request.headers.get_all(self.name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(value), None) => Ok(Some(value.as_bytes())),
            (Some(_), Some(_)) => Err(self.failure(Problem::Repeated)),
        }
    }

    pub fn malformed(&self, expected: impl Into<Cow<'static, str>>) -> AuthFailure {
        self.failure(Problem::Malformed {
            expected: expected.into(),
        })
    }
}

/// Whether the request's event type (`header`) is one of `event_types`; an empty list wants
/// every event. The header must be sent exactly once and match byte for byte.
pub(crate) fn wants_event(request: &Request<'_>, header: &str, event_types: &[String]) -> bool {
    if event_types.is_empty() {
        return true;
    }
    let mut values = request.headers.get_all(header).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => event_types
            .iter()
            .any(|wanted| wanted.as_bytes() == value.as_bytes()),
        _ => false,
    }
}

/// The unit a sender's timestamp counts in.
#[derive(Clone, Copy)]
pub(crate) enum TimeUnit {
    Seconds,
    Milliseconds,
}

/// Checks a Unix timestamp header: present once, all digits, within `window` of the clock.
pub(crate) fn check_timestamp(
    request: &Request<'_>,
    header: &CredentialHeader<'_>,
    unit: TimeUnit,
    window: Duration,
) -> Result<(), AuthFailure> {
    let value = header.require(request)?;
    let expected = match unit {
        TimeUnit::Seconds => "a Unix time in seconds",
        TimeUnit::Milliseconds => "a Unix time in milliseconds",
    };
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return Err(header.malformed(expected));
    }
    let number: u64 = std::str::from_utf8(value)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| header.malformed(expected))?;
    let sent = match unit {
        TimeUnit::Seconds => Duration::from_secs(number),
        TimeUnit::Milliseconds => Duration::from_millis(number),
    };
    let now = request
        .now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let skew = now.abs_diff(sent);
    if skew > window {
        return Err(header.failure(Problem::OutsideWindow { window }));
    }
    Ok(())
}

/// The hash of an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// Whether `tag` is the HMAC of the concatenated `message` parts under `key`, compared in
/// constant time (`Mac::verify_slice`; a tag of the wrong length never verifies).
pub(crate) fn verify_mac(
    algorithm: MacAlgorithm,
    key: &[u8],
    message: &[&[u8]],
    tag: &[u8],
) -> bool {
    match algorithm {
        MacAlgorithm::Sha1 => verify_with::<Hmac<Sha1>>(key, message, tag),
        MacAlgorithm::Sha256 => verify_with::<Hmac<Sha256>>(key, message, tag),
        MacAlgorithm::Sha512 => verify_with::<Hmac<Sha512>>(key, message, tag),
    }
}

fn verify_with<M: Mac + KeyInit>(key: &[u8], message: &[&[u8]], tag: &[u8]) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return false;
    };
    for part in message {
        Mac::update(&mut mac, part);
    }
    mac.verify_slice(tag).is_ok()
}

/// Whether a token sent by the caller is the secret. Both are hashed first, so the
/// comparison takes the same time whatever their lengths and contents.
pub(crate) fn token_matches(token: &[u8], secret: &[u8]) -> bool {
    let token = Sha256::digest(token);
    let secret = Sha256::digest(secret);
    token.as_slice().ct_eq(secret.as_slice()).into()
}

/// `<prefix><hex>` decoded; `None` when the prefix or the hex digits are wrong.
pub(crate) fn strip_hex(value: &[u8], prefix: &[u8]) -> Option<Vec<u8>> {
    value
        .strip_prefix(prefix)
        .filter(|digits| !digits.is_empty())
        .and_then(decode_hex)
}

/// Hex digits (either case) decoded; `None` when one is not a digit or one is left over.
pub(crate) fn decode_hex(digits: &[u8]) -> Option<Vec<u8>> {
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    // A table and a plain loop: decoding through iterator adapters cost more than the MAC
    // it checks.
    let mut bytes = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        let (high, low) = (
            HEX_VALUES[usize::from(pair[0])],
            HEX_VALUES[usize::from(pair[1])],
        );
        if high == NOT_HEX || low == NOT_HEX {
            return None;
        }
        bytes.push((high << 4) | low);
    }
    Some(bytes)
}

/// Marks a byte that is not a hex digit in [`HEX_VALUES`].
const NOT_HEX: u8 = 0xff;

/// The value of each byte as a hex digit, either case, or [`NOT_HEX`].
const HEX_VALUES: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;

    /// HMAC of the concatenated `message` parts.
    pub(crate) fn mac(algorithm: MacAlgorithm, key: &[u8], message: &[&[u8]]) -> Vec<u8> {
        fn with<M: Mac + KeyInit>(key: &[u8], message: &[&[u8]]) -> Vec<u8> {
            let mut mac = <M as KeyInit>::new_from_slice(key).unwrap();
            for part in message {
                Mac::update(&mut mac, part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match algorithm {
            MacAlgorithm::Sha1 => with::<Hmac<Sha1>>(key, message),
            MacAlgorithm::Sha256 => with::<Hmac<Sha256>>(key, message),
            MacAlgorithm::Sha512 => with::<Hmac<Sha512>>(key, message),
        }
    }

    /// A header map from `(name, value bytes)`; values may be any bytes HTTP allows,
    /// invalid UTF-8 included.
    pub(crate) fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    /// A fixed clock: 2024-01-01T00:00:00Z.
    pub(crate) const NOW_SECS: u64 = 1_704_067_200;

    pub(crate) fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW_SECS)
    }

    pub(crate) fn request<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Request<'a> {
        Request {
            headers,
            body,
            now: now(),
        }
    }

    const TS: CredentialHeader<'static> = CredentialHeader {
        name: "x-ts",
        label: "X-Ts",
        credential: Credential::Timestamp,
    };

    #[test]
    fn timestamps_are_digits_within_the_window_either_way() {
        let window = Duration::from_secs(300);
        let check = |value: &[u8]| {
            let h = headers(&[("x-ts", value)]);
            check_timestamp(&request(&h, b""), &TS, TimeUnit::Seconds, window)
                .map_err(|f| f.code().as_str())
        };
        assert_eq!(check(NOW_SECS.to_string().as_bytes()), Ok(()));
        assert_eq!(check((NOW_SECS - 300).to_string().as_bytes()), Ok(()));
        assert_eq!(check((NOW_SECS + 300).to_string().as_bytes()), Ok(()));
        for stale in [NOW_SECS - 301, NOW_SECS + 301, 0, u64::MAX] {
            assert_eq!(
                check(stale.to_string().as_bytes()),
                Err("timestamp_outside_window"),
                "{stale}"
            );
        }
        for bad in [
            &b""[..],
            b"+1704067200",
            b"-5",
            b"1.5",
            b"17040672OO",
            b"\xff\xfe",
            b"99999999999999999999999",
        ] {
            assert_eq!(check(bad), Err("timestamp_invalid"), "{bad:?}");
        }
        let none = HeaderMap::new();
        assert_eq!(
            check_timestamp(&request(&none, b""), &TS, TimeUnit::Seconds, window)
                .map_err(|f| f.code().as_str()),
            Err("timestamp_missing")
        );
    }

    #[test]
    fn milliseconds_count_as_milliseconds() {
        let window = Duration::from_secs(3600);
        let ms = NOW_SECS * 1000;
        for (value, ok) in [
            (ms, true),
            (ms - 3_600_000, true),
            (ms - 3_600_001, false),
            (NOW_SECS, false),
        ] {
            let h = headers(&[("x-ts", value.to_string().as_bytes())]);
            let result = check_timestamp(&request(&h, b""), &TS, TimeUnit::Milliseconds, window);
            assert_eq!(result.is_ok(), ok, "{value}");
        }
    }

    #[test]
    fn a_repeated_credential_header_is_refused() {
        let h = headers(&[("x-ts", b"1"), ("x-ts", b"1")]);
        let failure = TS.require(&request(&h, b"")).unwrap_err();
        assert_eq!(failure.code().as_str(), "timestamp_invalid");
        assert!(failure.to_string().contains("more than once"), "{failure}");
    }

    #[test]
    fn hex_tags_decode_in_either_case_and_anything_else_is_malformed() {
        assert_eq!(
            strip_hex(b"sha256=00ff7A", b"sha256="),
            Some(vec![0x00, 0xff, 0x7a])
        );
        for malformed in [
            &b"sha256="[..],
            b"sha256=abc",
            b"sha256=zz",
            b"sha256=0g",
            b"sha1=00",
            b"00ff",
            b"sha256= 00",
        ] {
            assert_eq!(strip_hex(malformed, b"sha256="), None, "{malformed:?}");
        }
        for byte in 0..=u8::MAX {
            let digit = char::from(byte).to_digit(16).map(|value| value as u8);
            assert_eq!(decode_hex(&[byte, b'0']), digit.map(|d| vec![d << 4]));
            assert_eq!(decode_hex(&[b'0', byte]), digit.map(|d| vec![d]));
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(b"secret", b"secret"));
        assert!(!token_matches(b"secre", b"secret"));
        assert!(!token_matches(b"secret2", b"secret"));
        assert!(!token_matches(b"", b"secret"));
    }

    #[test]
    fn macs_of_the_wrong_length_never_verify() {
        let tag = mac(MacAlgorithm::Sha256, b"k", &[b"m"]);
        assert!(verify_mac(MacAlgorithm::Sha256, b"k", &[b"m"], &tag));
        assert!(!verify_mac(MacAlgorithm::Sha256, b"k", &[b"m"], &tag[..16]));
        assert!(!verify_mac(MacAlgorithm::Sha256, b"k", &[b"m"], b""));
        assert!(!verify_mac(MacAlgorithm::Sha512, b"k", &[b"m"], &tag));
    }

    #[test]
    fn event_types_match_one_value_exactly() {
        let types = vec!["push".to_owned()];
        let wants = |pairs: &[(&'static str, &[u8])]| {
            let h = headers(pairs);
            wants_event(&request(&h, b""), "x-event", &types)
        };
        assert!(wants(&[("x-event", b"push")]));
        assert!(!wants(&[("x-event", b"Push")]));
        assert!(!wants(&[("x-event", b"push"), ("x-event", b"push")]));
        assert!(!wants(&[("x-event", b"\xffpush")]));
        assert!(!wants(&[]));
        let h = HeaderMap::new();
        assert!(wants_event(&request(&h, b""), "x-event", &[]));
    }
}
