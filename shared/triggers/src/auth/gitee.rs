//! The `gitee` interceptor. Gitee's webhook settings offer a password or a signing key:
//! - password: `X-Gitee-Token` is the secret itself;
//! - signature: `X-Gitee-Token` is Base64(HMAC-SHA256(key = secret, message =
//!   `<X-Gitee-Timestamp>\n<secret>`)), the timestamp in milliseconds and within the window.
//!
//! `mode: auto` (the default) accepts either: the token is the secret, or it is a valid
//! signature over a fresh timestamp. That is no weaker than either mode alone: both need the
//! secret, and a captured signature still expires with its timestamp. Neither mode covers the
//! body. Event types come from `X-Gitee-Event`.

use crate::catalogue::{GiteeInterceptor, GiteeMode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::failure::{AuthFailure, Credential, Problem};
use super::request::{
    CredentialHeader, MacAlgorithm, Request, TimeUnit, check_timestamp, token_matches, verify_mac,
};

pub(crate) const EVENT: &str = "x-gitee-event";

const TOKEN: CredentialHeader<'static> = CredentialHeader {
    name: "x-gitee-token",
    label: "X-Gitee-Token",
    credential: Credential::Token,
};

const TIMESTAMP: CredentialHeader<'static> = CredentialHeader {
    name: "x-gitee-timestamp",
    label: "X-Gitee-Timestamp",
    credential: Credential::Timestamp,
};

/// Length of an HMAC-SHA256.
const SIGNATURE_LEN: usize = 32;

pub(crate) fn verify(gitee: &GiteeInterceptor, request: &Request<'_>) -> Result<(), AuthFailure> {
    let token = TOKEN.require(request)?;
    let secret = gitee.secret.expose();
    match gitee.mode {
        GiteeMode::Password if token_matches(token, secret) => Ok(()),
        GiteeMode::Password => Err(TOKEN.failure(Problem::Mismatch)),
        GiteeMode::Signature => verify_signature(gitee, token, request),
        GiteeMode::Auto if token_matches(token, secret) => Ok(()),
        // Only a token shaped like a signature is judged as one, so that a wrong password
        // is answered `token_invalid` and not with a timestamp problem.
        GiteeMode::Auto if decode_signature(token).is_some() => {
            verify_signature(gitee, token, request)
        }
        GiteeMode::Auto => Err(TOKEN.failure(Problem::Mismatch)),
    }
}

fn verify_signature(
    gitee: &GiteeInterceptor,
    token: &[u8],
    request: &Request<'_>,
) -> Result<(), AuthFailure> {
    check_timestamp(
        request,
        &TIMESTAMP,
        TimeUnit::Milliseconds,
        gitee.timestamp_window,
    )?;
    let timestamp = TIMESTAMP.require(request)?;
    let tag = decode_signature(token).ok_or_else(|| TOKEN.malformed("Base64 of an HMAC-SHA256"))?;
    let secret = gitee.secret.expose();
    if verify_mac(
        MacAlgorithm::Sha256,
        secret,
        &[timestamp, b"\n", secret],
        &tag,
    ) {
        Ok(())
    } else {
        Err(TOKEN.failure(Problem::Mismatch))
    }
}

fn decode_signature(token: &[u8]) -> Option<Vec<u8>> {
    STANDARD
        .decode(token)
        .ok()
        .filter(|tag| tag.len() == SIGNATURE_LEN)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::secret::SecretValue;

    use super::*;
    use crate::auth::request::tests::{NOW_SECS, headers, mac, request};

    const SECRET: &str = "gitee-key";

    fn gitee(mode: GiteeMode) -> GiteeInterceptor {
        GiteeInterceptor {
            secret: SecretValue::new(SECRET),
            event_types: vec![],
            mode,
            timestamp_window: Duration::from_secs(3600),
        }
    }

    /// `X-Gitee-Token` for `timestamp` (milliseconds, as text) under `secret`.
    fn sign(secret: &str, timestamp: &str) -> Vec<u8> {
        let tag = mac(
            MacAlgorithm::Sha256,
            secret.as_bytes(),
            &[timestamp.as_bytes(), b"\n", secret.as_bytes()],
        );
        STANDARD.encode(tag).into_bytes()
    }

    fn code(mode: GiteeMode, pairs: &[(&'static str, &[u8])]) -> Result<(), &'static str> {
        let h = headers(pairs);
        verify(&gitee(mode), &request(&h, b"{}")).map_err(|f| f.code().as_str())
    }

    fn ms(offset_secs: i64) -> String {
        ((NOW_SECS as i64 + offset_secs) * 1000).to_string()
    }

    /// Gitee's documented construction, computed independently: HMAC-SHA256 of
    /// `1576754827988\nsecret` under `secret`, Base64.
    #[test]
    fn signature_is_hmac_of_timestamp_newline_secret() {
        let tag = mac(MacAlgorithm::Sha256, b"secret", &[b"1576754827988\nsecret"]);
        assert_eq!(
            sign("secret", "1576754827988"),
            STANDARD.encode(tag).into_bytes()
        );
    }

    #[test]
    fn password_mode_compares_the_token_with_the_secret() {
        assert_eq!(
            code(GiteeMode::Password, &[("x-gitee-token", SECRET.as_bytes())]),
            Ok(())
        );
        assert_eq!(
            code(GiteeMode::Password, &[("x-gitee-token", b"nope")]),
            Err("token_invalid")
        );
        assert_eq!(code(GiteeMode::Password, &[]), Err("token_missing"));
        // A valid signature is not the password.
        let now = ms(0);
        assert_eq!(
            code(
                GiteeMode::Password,
                &[
                    ("x-gitee-token", &sign(SECRET, &now)),
                    ("x-gitee-timestamp", now.as_bytes())
                ]
            ),
            Err("token_invalid")
        );
    }

    #[test]
    fn signature_mode_checks_the_timestamp_window_and_the_mac() {
        let now = ms(0);
        let ok = sign(SECRET, &now);
        assert_eq!(
            code(
                GiteeMode::Signature,
                &[
                    ("x-gitee-token", &ok),
                    ("x-gitee-timestamp", now.as_bytes())
                ]
            ),
            Ok(())
        );
        for offset in [-3599, 3599] {
            let ts = ms(offset);
            assert_eq!(
                code(
                    GiteeMode::Signature,
                    &[
                        ("x-gitee-token", &sign(SECRET, &ts)),
                        ("x-gitee-timestamp", ts.as_bytes())
                    ]
                ),
                Ok(()),
                "{offset}"
            );
        }
        for offset in [-3601, 3601] {
            let ts = ms(offset);
            assert_eq!(
                code(
                    GiteeMode::Signature,
                    &[
                        ("x-gitee-token", &sign(SECRET, &ts)),
                        ("x-gitee-timestamp", ts.as_bytes())
                    ]
                ),
                Err("timestamp_outside_window"),
                "{offset}"
            );
        }
        // The signature is bound to its timestamp.
        let other = ms(1);
        assert_eq!(
            code(
                GiteeMode::Signature,
                &[
                    ("x-gitee-token", &ok),
                    ("x-gitee-timestamp", other.as_bytes())
                ]
            ),
            Err("token_invalid")
        );
        assert_eq!(
            code(
                GiteeMode::Signature,
                &[
                    ("x-gitee-token", &sign("wrong", &now)),
                    ("x-gitee-timestamp", now.as_bytes())
                ]
            ),
            Err("token_invalid")
        );
        assert_eq!(
            code(GiteeMode::Signature, &[("x-gitee-token", &ok)]),
            Err("timestamp_missing")
        );
        assert_eq!(
            code(
                GiteeMode::Signature,
                &[("x-gitee-timestamp", now.as_bytes())]
            ),
            Err("token_missing")
        );
        assert_eq!(
            code(
                GiteeMode::Signature,
                &[("x-gitee-token", &ok), ("x-gitee-timestamp", b"soon")]
            ),
            Err("timestamp_invalid")
        );
        assert_eq!(
            code(
                GiteeMode::Signature,
                &[
                    ("x-gitee-token", b"not base64 \xff"),
                    ("x-gitee-timestamp", now.as_bytes())
                ]
            ),
            Err("token_invalid")
        );
        // The password is not a signature.
        assert_eq!(
            code(
                GiteeMode::Signature,
                &[
                    ("x-gitee-token", SECRET.as_bytes()),
                    ("x-gitee-timestamp", now.as_bytes())
                ]
            ),
            Err("token_invalid")
        );
        assert_eq!(
            code(
                GiteeMode::Signature,
                &[
                    ("x-gitee-token", &ok),
                    ("x-gitee-token", &ok),
                    ("x-gitee-timestamp", now.as_bytes())
                ]
            ),
            Err("token_invalid")
        );
    }

    #[test]
    fn auto_mode_accepts_either_and_keeps_the_window() {
        let now = ms(0);
        assert_eq!(
            code(
                GiteeMode::Auto,
                &[
                    ("x-gitee-token", SECRET.as_bytes()),
                    ("x-gitee-timestamp", now.as_bytes())
                ]
            ),
            Ok(())
        );
        assert_eq!(
            code(GiteeMode::Auto, &[("x-gitee-token", SECRET.as_bytes())]),
            Ok(())
        );
        assert_eq!(
            code(
                GiteeMode::Auto,
                &[
                    ("x-gitee-token", &sign(SECRET, &now)),
                    ("x-gitee-timestamp", now.as_bytes())
                ]
            ),
            Ok(())
        );
        let stale = ms(-7200);
        assert_eq!(
            code(
                GiteeMode::Auto,
                &[
                    ("x-gitee-token", &sign(SECRET, &stale)),
                    ("x-gitee-timestamp", stale.as_bytes())
                ]
            ),
            Err("timestamp_outside_window")
        );
        // A wrong password is a wrong token, whatever the timestamp says.
        assert_eq!(
            code(GiteeMode::Auto, &[("x-gitee-token", b"wrong")]),
            Err("token_invalid")
        );
        assert_eq!(
            code(
                GiteeMode::Auto,
                &[
                    ("x-gitee-token", &sign("wrong", &now)),
                    ("x-gitee-timestamp", now.as_bytes())
                ]
            ),
            Err("token_invalid")
        );
    }
}
