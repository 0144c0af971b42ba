//! The `github` interceptor: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`,
//! or with `allowSha1` the legacy `X-Hub-Signature: sha1=<hex HMAC-SHA1>` when that is the
//! only signature sent; event types from `X-GitHub-Event`.

use crate::catalogue::GitHubInterceptor;
use http::HeaderMap;

use super::failure::{AuthFailure, Credential, Problem};
use super::request::{CredentialHeader, MacAlgorithm, Request, strip_hex, verify_mac};

pub(crate) const EVENT: &str = "x-github-event";

const SIGNATURE_256: CredentialHeader<'static> = CredentialHeader {
    name: "x-hub-signature-256",
    label: "X-Hub-Signature-256",
    credential: Credential::Signature,
};

const SIGNATURE_SHA1: CredentialHeader<'static> = CredentialHeader {
    name: "x-hub-signature",
    label: "X-Hub-Signature",
    credential: Credential::Signature,
};

pub(crate) fn verify(github: &GitHubInterceptor, request: &Request<'_>) -> Result<(), AuthFailure> {
    let Some(secret) = &github.secret else {
        return Ok(());
    };
    let secret = secret.expose();
    if SIGNATURE_256.optional(request)?.is_some() || !github.allow_sha1 {
        return match verify_sha256(secret, request) {
            Err(failure)
                if failure.problem() == &Problem::Missing
                    && SIGNATURE_SHA1.optional(request).ok().flatten().is_some() =>
            {
                Err(SIGNATURE_256.failure(Problem::OnlySha1))
            }
            result => result,
        };
    }
    let value = SIGNATURE_SHA1
        .optional(request)?
        .ok_or_else(|| SIGNATURE_256.failure(Problem::Missing))?;
    let tag = strip_hex(value, b"sha1=").ok_or_else(|| SIGNATURE_SHA1.malformed("`sha1=<hex>`"))?;
    if verify_mac(MacAlgorithm::Sha1, secret, &[request.body], &tag) {
        Ok(())
    } else {
        Err(SIGNATURE_SHA1.failure(Problem::Mismatch))
    }
}

fn verify_sha256(secret: &[u8], request: &Request<'_>) -> Result<(), AuthFailure> {
    let value = SIGNATURE_256.require(request)?;
    let tag =
        strip_hex(value, b"sha256=").ok_or_else(|| SIGNATURE_256.malformed("`sha256=<hex>`"))?;
    if verify_mac(MacAlgorithm::Sha256, secret, &[request.body], &tag) {
        Ok(())
    } else {
        Err(SIGNATURE_256.failure(Problem::Mismatch))
    }
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` in constant time.
pub fn verify_github_signature(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), AuthFailure> {
    let request = Request {
        headers,
        body,
        now: std::time::SystemTime::now(),
    };
    verify_sha256(secret, &request)
}

#[cfg(test)]
mod tests {
    use crate::secret::SecretValue;

    use super::*;
    use crate::auth::request::tests::{headers, mac, request};

    fn github(secret: &str, allow_sha1: bool) -> GitHubInterceptor {
        GitHubInterceptor {
            secret: Some(SecretValue::new(secret)),
            event_types: vec![],
            allow_sha1,
            ..GitHubInterceptor::default()
        }
    }

    fn sha256(secret: &str, body: &[u8]) -> Vec<u8> {
        format!(
            "sha256={}",
            hex::encode(mac(MacAlgorithm::Sha256, secret.as_bytes(), &[body]))
        )
        .into_bytes()
    }

    fn sha1(secret: &str, body: &[u8]) -> Vec<u8> {
        format!(
            "sha1={}",
            hex::encode(mac(MacAlgorithm::Sha1, secret.as_bytes(), &[body]))
        )
        .into_bytes()
    }

    fn code(
        github: &GitHubInterceptor,
        pairs: &[(&'static str, &[u8])],
        body: &[u8],
    ) -> Result<(), &'static str> {
        let h = headers(pairs);
        verify(github, &request(&h, body)).map_err(|f| f.code().as_str())
    }

    /// The vector of the issue: secret `secret`, body `{}`.
    #[test]
    fn known_vector_secret_and_empty_object() {
        let expected = b"sha256=77325902caca812dc259733aacd046b73817372c777b8d95b402647474516e13";
        assert_eq!(sha256("secret", b"{}"), expected);
        assert_eq!(
            code(
                &github("secret", false),
                &[("x-hub-signature-256", expected)],
                b"{}"
            ),
            Ok(())
        );
        let h = headers(&[("x-hub-signature-256", expected)]);
        assert_eq!(verify_github_signature(b"secret", &h, b"{}"), Ok(()));
    }

    // GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
    #[test]
    fn github_documented_test_vector_verifies() {
        let h = headers(&[(
            "x-hub-signature-256",
            b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert_eq!(
            verify_github_signature(b"It's a Secret to Everybody", &h, b"Hello, World!"),
            Ok(())
        );
        assert_eq!(
            verify_github_signature(b"wrong secret", &h, b"Hello, World!")
                .map_err(|f| f.code().as_str()),
            Err("signature_invalid")
        );
    }

    #[test]
    fn wrong_secret_tampered_body_and_missing_header_are_told_apart() {
        let g = github("s", false);
        let body = br#"{"ref":"main"}"#;
        assert_eq!(
            code(&g, &[("x-hub-signature-256", &sha256("s", body))], body),
            Ok(())
        );
        assert_eq!(
            code(&g, &[("x-hub-signature-256", &sha256("t", body))], body),
            Err("signature_invalid")
        );
        assert_eq!(
            code(
                &g,
                &[("x-hub-signature-256", &sha256("s", body))],
                br#"{"ref":"evil"}"#
            ),
            Err("signature_invalid")
        );
        assert_eq!(code(&g, &[], body), Err("signature_missing"));
    }

    #[test]
    fn malformed_and_repeated_signatures_are_invalid() {
        let g = github("s", false);
        let good = sha256("s", b"{}");
        for bad in [
            &b"sha1=00"[..],
            b"sha256=zz",
            b"sha256=",
            b"00ff",
            b"SHA256=00",
            b"sha256=\xff\xfe",
            b"sha256= 00",
        ] {
            assert_eq!(
                code(&g, &[("x-hub-signature-256", bad)], b"{}"),
                Err("signature_invalid"),
                "{bad:?}"
            );
        }
        // Uppercase hex digits are still the same MAC.
        let upper = format!(
            "sha256={}",
            String::from_utf8(good[7..].to_vec())
                .unwrap()
                .to_uppercase()
        );
        assert_eq!(
            code(&g, &[("x-hub-signature-256", upper.as_bytes())], b"{}"),
            Ok(())
        );
        // Two values, even two correct ones: refused, never "the first one counts".
        assert_eq!(
            code(
                &g,
                &[
                    ("x-hub-signature-256", &good),
                    ("x-hub-signature-256", &good)
                ],
                b"{}"
            ),
            Err("signature_invalid")
        );
    }

    #[test]
    fn sha1_only_with_allow_sha1_and_only_when_it_is_the_only_signature() {
        let body = b"{}";
        let only_sha1: &[(&'static str, &[u8])] = &[("x-hub-signature", &sha1("s", body))];
        let h = headers(only_sha1);
        let refused = verify(&github("s", false), &request(&h, body)).unwrap_err();
        assert_eq!(refused.code().as_str(), "signature_missing");
        assert!(refused.to_string().contains("allowSha1"), "{refused}");

        let allowed = github("s", true);
        assert_eq!(code(&allowed, only_sha1, body), Ok(()));
        assert_eq!(
            code(&allowed, &[("x-hub-signature", &sha1("t", body))], body),
            Err("signature_invalid")
        );
        assert_eq!(
            code(&allowed, &[("x-hub-signature", b"sha256=00")], body),
            Err("signature_invalid")
        );
        assert_eq!(code(&allowed, &[], body), Err("signature_missing"));
        // With both, the SHA-256 one decides: a good SHA-1 cannot rescue a bad SHA-256.
        assert_eq!(
            code(
                &allowed,
                &[
                    ("x-hub-signature", &sha1("s", body)),
                    ("x-hub-signature-256", &sha256("t", body))
                ],
                body
            ),
            Err("signature_invalid")
        );
    }

    #[test]
    fn without_a_secret_nothing_is_checked() {
        let g = GitHubInterceptor {
            secret: None,
            event_types: vec![],
            allow_sha1: false,
            ..GitHubInterceptor::default()
        };
        assert_eq!(code(&g, &[], b"{}"), Ok(()));
    }

    #[test]
    fn messages_name_the_header_and_never_a_value() {
        let g = github("top-secret", false);
        let wrong = sha256("other", b"{}");
        let h = headers(&[("x-hub-signature-256", &wrong)]);
        let failure = verify(&g, &request(&h, b"{}")).unwrap_err();
        let text = format!("{failure} {failure:?}");
        assert!(text.contains("X-Hub-Signature-256"), "{text}");
        assert!(!text.contains("top-secret"), "{text}");
        assert!(
            !text.contains(std::str::from_utf8(&wrong[7..]).unwrap()),
            "{text}"
        );
        let right = sha256("top-secret", b"{}");
        assert!(
            !text.contains(std::str::from_utf8(&right[7..]).unwrap()),
            "{text}"
        );
    }
}
