//! The `slack` interceptor: `X-Slack-Signature: v0=<hex HMAC-SHA256 of
//! "v0:<X-Slack-Request-Timestamp>:<body>">` under the app's signing secret, with the
//! timestamp (seconds) within the window, five minutes unless configured. Tekton's slack
//! interceptor does not verify; Sluice does.

use crate::catalogue::SlackInterceptor;

use super::failure::{AuthFailure, Credential, Problem};
use super::request::{
    CredentialHeader, MacAlgorithm, Request, TimeUnit, check_timestamp, strip_hex, verify_mac,
};

const SIGNATURE: CredentialHeader<'static> = CredentialHeader {
    name: "x-slack-signature",
    label: "X-Slack-Signature",
    credential: Credential::Signature,
};

const TIMESTAMP: CredentialHeader<'static> = CredentialHeader {
    name: "x-slack-request-timestamp",
    label: "X-Slack-Request-Timestamp",
    credential: Credential::Timestamp,
};

pub(crate) fn verify(slack: &SlackInterceptor, request: &Request<'_>) -> Result<(), AuthFailure> {
    let value = SIGNATURE.require(request)?;
    check_timestamp(
        request,
        &TIMESTAMP,
        TimeUnit::Seconds,
        slack.timestamp_window,
    )?;
    let timestamp = TIMESTAMP.require(request)?;
    let tag = strip_hex(value, b"v0=").ok_or_else(|| SIGNATURE.malformed("`v0=<hex>`"))?;
    let message: [&[u8]; 4] = [b"v0:", timestamp, b":", request.body];
    if verify_mac(MacAlgorithm::Sha256, slack.secret.expose(), &message, &tag) {
        Ok(())
    } else {
        Err(SIGNATURE.failure(Problem::Mismatch))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::secret::SecretValue;

    use super::*;
    use crate::auth::request::tests::{NOW_SECS, headers, mac, request};

    fn slack(secret: &str) -> SlackInterceptor {
        SlackInterceptor {
            secret: SecretValue::new(secret),
            timestamp_window: Duration::from_secs(300),
            requested_fields: None,
        }
    }

    fn sign(secret: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
        let tag = mac(
            MacAlgorithm::Sha256,
            secret.as_bytes(),
            &[b"v0:", timestamp.as_bytes(), b":", body],
        );
        format!("v0={}", hex::encode(tag)).into_bytes()
    }

    fn code(pairs: &[(&'static str, &[u8])], body: &[u8]) -> Result<(), &'static str> {
        let h = headers(pairs);
        verify(&slack("slack-secret"), &request(&h, body)).map_err(|f| f.code().as_str())
    }

    /// Slack's documented example ("Verifying requests from Slack"), at its own time.
    #[test]
    fn slack_documented_vector_verifies() {
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let h = headers(&[
            (
                "x-slack-signature",
                b"v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
            ("x-slack-request-timestamp", b"1531420618"),
        ]);
        let at = |secs| Request {
            headers: &h,
            body,
            now: UNIX_EPOCH + Duration::from_secs(secs),
        };
        assert_eq!(
            verify(
                &slack("8f742231b10e8888abcd99yyyzzz85a5"),
                &at(1_531_420_618)
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                &slack("8f742231b10e8888abcd99yyyzzz85a5"),
                &at(1_531_420_618 + 301)
            )
            .map_err(|f| f.code().as_str()),
            Err("timestamp_outside_window")
        );
    }

    #[test]
    fn signature_timestamp_and_body_are_all_checked() {
        let body = br#"{"type":"event_callback"}"#;
        let now = NOW_SECS.to_string();
        let ok = sign("slack-secret", &now, body);
        let ts = ("x-slack-request-timestamp", now.as_bytes());
        assert_eq!(code(&[("x-slack-signature", &ok), ts], body), Ok(()));
        assert_eq!(
            code(
                &[("x-slack-signature", &sign("other", &now, body)), ts],
                body
            ),
            Err("signature_invalid")
        );
        assert_eq!(
            code(&[("x-slack-signature", &ok), ts], br#"{"type":"evil"}"#),
            Err("signature_invalid")
        );
        assert_eq!(code(&[ts], body), Err("signature_missing"));
        assert_eq!(
            code(&[("x-slack-signature", &ok)], body),
            Err("timestamp_missing")
        );
        assert_eq!(
            code(
                &[
                    ("x-slack-signature", &ok),
                    ("x-slack-request-timestamp", b"\xff1")
                ],
                body
            ),
            Err("timestamp_invalid")
        );
        // An old request, correctly signed for its time: a replay.
        let old = (NOW_SECS - 301).to_string();
        assert_eq!(
            code(
                &[
                    ("x-slack-signature", &sign("slack-secret", &old, body)),
                    ("x-slack-request-timestamp", old.as_bytes())
                ],
                body
            ),
            Err("timestamp_outside_window")
        );
        let future = (NOW_SECS + 301).to_string();
        assert_eq!(
            code(
                &[
                    ("x-slack-signature", &sign("slack-secret", &future, body)),
                    ("x-slack-request-timestamp", future.as_bytes())
                ],
                body
            ),
            Err("timestamp_outside_window")
        );
        // The timestamp is part of what is signed.
        let other = (NOW_SECS - 1).to_string();
        assert_eq!(
            code(
                &[
                    ("x-slack-signature", &ok),
                    ("x-slack-request-timestamp", other.as_bytes())
                ],
                body
            ),
            Err("signature_invalid")
        );
        for bad in [&b"v1=00"[..], b"v0=", b"v0=zz", b"00"] {
            assert_eq!(
                code(&[("x-slack-signature", bad), ts], body),
                Err("signature_invalid"),
                "{bad:?}"
            );
        }
        assert_eq!(
            code(
                &[("x-slack-signature", &ok), ("x-slack-signature", &ok), ts],
                body
            ),
            Err("signature_invalid")
        );
        assert_eq!(
            code(&[("x-slack-signature", &ok), ts, ts], body),
            Err("timestamp_invalid")
        );
    }
}
