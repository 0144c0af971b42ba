//! The `bitbucket` interceptor: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`, as
//! Bitbucket Cloud and Bitbucket Data Center both send it; event types from `X-Event-Key`
//! (`repo:push` on Cloud, `repo:refs_changed` on Data Center).

use crate::catalogue::BitbucketInterceptor;

use super::failure::{AuthFailure, Credential, Problem};
use super::request::{CredentialHeader, MacAlgorithm, Request, strip_hex, verify_mac};

pub(crate) const EVENT: &str = "x-event-key";

const SIGNATURE: CredentialHeader<'static> = CredentialHeader {
    name: "x-hub-signature",
    label: "X-Hub-Signature",
    credential: Credential::Signature,
};

pub(crate) fn verify(
    bitbucket: &BitbucketInterceptor,
    request: &Request<'_>,
) -> Result<(), AuthFailure> {
    let Some(secret) = &bitbucket.secret else {
        return Ok(());
    };
    let value = SIGNATURE.require(request)?;
    let tag = strip_hex(value, b"sha256=").ok_or_else(|| SIGNATURE.malformed("`sha256=<hex>`"))?;
    if verify_mac(MacAlgorithm::Sha256, secret.expose(), &[request.body], &tag) {
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
        format!(
            "sha256={}",
            hex::encode(mac(MacAlgorithm::Sha256, secret.as_bytes(), &[body]))
        )
        .into_bytes()
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
