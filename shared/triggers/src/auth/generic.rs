//! The generic `hmac` interceptor, for senders Sluice has no built-in for: a header of the
//! trigger's choice carries `<prefix><MAC of the body>`, the MAC an HMAC-SHA256 or
//! HMAC-SHA512 under the secret, encoded in hex or Base64.

use crate::catalogue::{HmacAlgorithm, HmacInterceptor, SignatureEncoding};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::failure::{AuthFailure, Credential, Problem};
use super::request::{CredentialHeader, MacAlgorithm, Request, decode_hex, verify_mac};

pub(crate) fn verify(hmac: &HmacInterceptor, request: &Request<'_>) -> Result<(), AuthFailure> {
    let header = CredentialHeader {
        name: &hmac.header,
        label: &hmac.header,
        credential: Credential::Signature,
    };
    let value = header.require(request)?;
    let encoded = value
        .strip_prefix(hmac.prefix.as_bytes())
        .filter(|encoded| !encoded.is_empty());
    let tag = encoded.and_then(|encoded| match hmac.encoding {
        SignatureEncoding::Hex => decode_hex(encoded),
        SignatureEncoding::Base64 => STANDARD.decode(encoded).ok(),
    });
    let Some(tag) = tag else {
        let encoding = match hmac.encoding {
            SignatureEncoding::Hex => "hex",
            SignatureEncoding::Base64 => "base64",
        };
        return Err(header.malformed(format!("`{}<{encoding}>`", hmac.prefix)));
    };
    let algorithm = match hmac.algorithm {
        HmacAlgorithm::Sha256 => MacAlgorithm::Sha256,
        HmacAlgorithm::Sha512 => MacAlgorithm::Sha512,
    };
    if verify_mac(algorithm, hmac.secret.expose(), &[request.body], &tag) {
        Ok(())
    } else {
        Err(header.failure(Problem::Mismatch))
    }
}

#[cfg(test)]
mod tests {
    use crate::secret::SecretValue;

    use super::*;
    use crate::auth::request::tests::{headers, mac, request};

    fn interceptor(
        algorithm: HmacAlgorithm,
        encoding: SignatureEncoding,
        prefix: &str,
    ) -> HmacInterceptor {
        HmacInterceptor {
            secret: SecretValue::new("hmac-secret"),
            header: "x-signature".to_owned(),
            algorithm,
            encoding,
            prefix: prefix.to_owned(),
        }
    }

    fn code(hmac: &HmacInterceptor, value: Option<&[u8]>, body: &[u8]) -> Result<(), &'static str> {
        let pairs: Vec<(&'static str, &[u8])> =
            value.into_iter().map(|v| ("x-signature", v)).collect();
        let h = headers(&pairs);
        verify(hmac, &request(&h, body)).map_err(|f| f.code().as_str())
    }

    /// RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    #[test]
    fn rfc_4231_vectors_verify_in_both_algorithms() {
        let data = b"what do ya want for nothing?";
        let mut sha256 = interceptor(HmacAlgorithm::Sha256, SignatureEncoding::Hex, "");
        sha256.secret = SecretValue::new("Jefe");
        assert_eq!(
            code(
                &sha256,
                Some(b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
                data
            ),
            Ok(())
        );
        let mut sha512 = interceptor(HmacAlgorithm::Sha512, SignatureEncoding::Hex, "sha512=");
        sha512.secret = SecretValue::new("Jefe");
        assert_eq!(
            code(&sha512, Some(b"sha512=164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"), data),
            Ok(())
        );
    }

    #[test]
    fn every_combination_signs_and_refuses() {
        let body = br#"{"event":"deploy"}"#;
        for (algorithm, mac_algorithm) in [
            (HmacAlgorithm::Sha256, MacAlgorithm::Sha256),
            (HmacAlgorithm::Sha512, MacAlgorithm::Sha512),
        ] {
            for encoding in [SignatureEncoding::Hex, SignatureEncoding::Base64] {
                for prefix in ["", "sha256=", "v1,"] {
                    let hmac = interceptor(algorithm, encoding, prefix);
                    let sign = |secret: &str, body: &[u8]| {
                        let tag = mac(mac_algorithm, secret.as_bytes(), &[body]);
                        let encoded = match encoding {
                            SignatureEncoding::Hex => hex::encode(tag),
                            SignatureEncoding::Base64 => STANDARD.encode(tag),
                        };
                        format!("{prefix}{encoded}").into_bytes()
                    };
                    let case = format!("{algorithm:?} {encoding:?} {prefix:?}");
                    assert_eq!(
                        code(&hmac, Some(&sign("hmac-secret", body)), body),
                        Ok(()),
                        "{case}"
                    );
                    assert_eq!(
                        code(&hmac, Some(&sign("wrong", body)), body),
                        Err("signature_invalid"),
                        "{case}"
                    );
                    assert_eq!(
                        code(&hmac, Some(&sign("hmac-secret", body)), b"{}"),
                        Err("signature_invalid"),
                        "{case}"
                    );
                    assert_eq!(code(&hmac, None, body), Err("signature_missing"), "{case}");
                    assert_eq!(
                        code(&hmac, Some(prefix.as_bytes()), body),
                        Err("signature_invalid"),
                        "{case}"
                    );
                    assert_eq!(
                        code(&hmac, Some(b"\xff\xfe"), body),
                        Err("signature_invalid"),
                        "{case}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_prefix_is_required_and_the_message_names_the_configured_header() {
        let hmac = interceptor(HmacAlgorithm::Sha256, SignatureEncoding::Hex, "sha256=");
        let bare = hex::encode(mac(MacAlgorithm::Sha256, b"hmac-secret", &[b"{}"]));
        let h = headers(&[("x-signature", bare.as_bytes())]);
        let failure = verify(&hmac, &request(&h, b"{}")).unwrap_err();
        assert_eq!(failure.code().as_str(), "signature_invalid");
        let text = failure.to_string();
        assert!(
            text.contains("x-signature") && text.contains("`sha256=<hex>`"),
            "{text}"
        );
        assert!(!text.contains(&bare), "{text}");
    }
}
