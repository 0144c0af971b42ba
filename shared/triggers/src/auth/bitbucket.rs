//! The `bitbucket` interceptor: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`, as
//! Bitbucket Cloud and Bitbucket Data Center both send it, or the same with `sha1=` or
//! `sha512=` (HMAC-SHA1, HMAC-SHA512), which Tekton's interceptor verifies too; event types
//! from `X-Event-Key` (`repo:push` on Cloud, `repo:refs_changed` on Data Center).

use crate::catalogue::BitbucketInterceptor;

use super::failure::{AuthFailure, Credential, Problem};
use super::request::{CredentialHeader, MacAlgorithm, Request, strip_hex, verify_mac};

pub(crate) const EVENT: &str = "x-event-key";

const SIGNATURE: CredentialHeader<'static> = CredentialHeader {
    name: "x-hub-signature",
    label: "X-Hub-Signature",
    credential: Credential::Signature,
};

/// The MACs a signature may name by its prefix.
const ALGORITHMS: [(&[u8], MacAlgorithm); 3] = [
    (b"sha256=", MacAlgorithm::Sha256),
    (b"sha1=", MacAlgorithm::Sha1),
    (b"sha512=", MacAlgorithm::Sha512),
];

pub(crate) fn verify(
    bitbucket: &BitbucketInterceptor,
    request: &Request<'_>,
) -> Result<(), AuthFailure> {
    let Some(secret) = &bitbucket.secret else {
        return Ok(());
    };
    let value = SIGNATURE.require(request)?;
    let (algorithm, tag) = ALGORITHMS
        .iter()
        .find_map(|(prefix, algorithm)| Some((*algorithm, strip_hex(value, prefix)?)))
        .ok_or_else(|| SIGNATURE.malformed("`sha256=<hex>` (or `sha1=`, `sha512=`)"))?;
    if verify_mac(algorithm, secret.expose(), &[request.body], &tag) {
        Ok(())
    } else {
        Err(SIGNATURE.failure(Problem::Mismatch))
    }
}

#[cfg(test)]
mod tests {
    use crate::secret::SecretValue;

    use super::*;
    use crate::auth::request::tests::{headers, mac, request};

    fn code(pairs: &[(&'static str, &[u8])], body: &[u8]) -> Result<(), &'static str> {
        let bitbucket = BitbucketInterceptor {
            secret: Some(SecretValue::new("bb-secret")),
            event_types: vec![],
        };
        let h = headers(pairs);
        verify(&bitbucket, &request(&h, body)).map_err(|f| f.code().as_str())
    }

    fn sign(secret: &str, body: &[u8]) -> Vec<u8> {
        sign_with(MacAlgorithm::Sha256, "sha256", secret, body)
    }

    fn sign_with(algorithm: MacAlgorithm, tag: &str, secret: &str, body: &[u8]) -> Vec<u8> {
        format!(
            "{tag}={}",
            hex::encode(mac(algorithm, secret.as_bytes(), &[body]))
        )
        .into_bytes()
    }

    #[test]
    fn sha1_and_sha512_signatures_are_verified_as_tekton_verifies_them() {
        let body = br#"{"push":{}}"#;
        for (algorithm, tag) in [
            (MacAlgorithm::Sha1, "sha1"),
            (MacAlgorithm::Sha512, "sha512"),
        ] {
            let signed = sign_with(algorithm, tag, "bb-secret", body);
            assert_eq!(code(&[("x-hub-signature", &signed)], body), Ok(()), "{tag}");
            let wrong = sign_with(algorithm, tag, "other", body);
            assert_eq!(
                code(&[("x-hub-signature", &wrong)], body),
                Err("signature_invalid"),
                "{tag}"
            );
        }
        // The prefix names the algorithm: a SHA-256 MAC under `sha1=` does not verify.
        let mislabelled = sign("bb-secret", body)
            .strip_prefix(b"sha256=")
            .map(|hex| [&b"sha1="[..], hex].concat())
            .unwrap();
        assert_eq!(
            code(&[("x-hub-signature", &mislabelled)], body),
            Err("signature_invalid")
        );
    }

    /// Same construction as GitHub's: the issue's vector holds here too.
    #[test]
    fn known_vector_secret_and_empty_object() {
        let bitbucket = BitbucketInterceptor {
            secret: Some(SecretValue::new("secret")),
            event_types: vec![],
        };
        let h = headers(&[(
            "x-hub-signature",
            b"sha256=77325902caca812dc259733aacd046b73817372c777b8d95b402647474516e13",
        )]);
        assert_eq!(verify(&bitbucket, &request(&h, b"{}")), Ok(()));
    }

    #[test]
    fn signature_checks() {
        let body = br#"{"push":{}}"#;
        assert_eq!(
            code(&[("x-hub-signature", &sign("bb-secret", body))], body),
            Ok(())
        );
        assert_eq!(
            code(&[("x-hub-signature", &sign("other", body))], body),
            Err("signature_invalid")
        );
        assert_eq!(
            code(&[("x-hub-signature", &sign("bb-secret", body))], b"{}"),
            Err("signature_invalid")
        );
        assert_eq!(code(&[], body), Err("signature_missing"));
        // GitHub's header name is not Bitbucket's.
        assert_eq!(
            code(&[("x-hub-signature-256", &sign("bb-secret", body))], body),
            Err("signature_missing")
        );
        for bad in [&b"sha1=00"[..], b"sha256=xyz", b"\xff\xff", b"sha256="] {
            assert_eq!(
                code(&[("x-hub-signature", bad)], body),
                Err("signature_invalid"),
                "{bad:?}"
            );
        }
        let good = sign("bb-secret", body);
        assert_eq!(
            code(
                &[("x-hub-signature", &good), ("x-hub-signature", &good)],
                body
            ),
            Err("signature_invalid")
        );
    }
}
