//! The `gitlab` interceptor: `X-Gitlab-Token` is the secret itself (GitLab's "secret
//! token"), compared in constant time; event types from `X-Gitlab-Event`. The token does not
//! cover the body: GitLab offers nothing that would.

use crate::catalogue::GitLabInterceptor;

use super::failure::{AuthFailure, Credential, Problem};
use super::request::{CredentialHeader, Request, token_matches};

pub(crate) const EVENT: &str = "x-gitlab-event";

const TOKEN: CredentialHeader<'static> = CredentialHeader {
    name: "x-gitlab-token",
    label: "X-Gitlab-Token",
    credential: Credential::Token,
};

pub(crate) fn verify(gitlab: &GitLabInterceptor, request: &Request<'_>) -> Result<(), AuthFailure> {
    let Some(secret) = &gitlab.secret else {
        return Ok(());
    };
    let token = TOKEN.require(request)?;
    if token_matches(token, secret.expose()) {
        Ok(())
    } else {
        Err(TOKEN.failure(Problem::Mismatch))
    }
}

#[cfg(test)]
mod tests {
    use crate::secret::SecretValue;

    use super::*;
    use crate::auth::request::tests::{headers, request};

    fn code(pairs: &[(&'static str, &[u8])]) -> Result<(), &'static str> {
        let gitlab = GitLabInterceptor {
            secret: Some(SecretValue::new("gl-token")),
            event_types: vec![],
        };
        let h = headers(pairs);
        verify(&gitlab, &request(&h, b"{}")).map_err(|f| f.code().as_str())
    }

    #[test]
    fn the_token_must_be_the_secret_exactly() {
        assert_eq!(code(&[("x-gitlab-token", b"gl-token")]), Ok(()));
        for wrong in [
            &b"gl-token "[..],
            b"gl-toke",
            b"GL-TOKEN",
            b"gl-token\xff",
            b"",
        ] {
            assert_eq!(
                code(&[("x-gitlab-token", wrong)]),
                Err("token_invalid"),
                "{wrong:?}"
            );
        }
        assert_eq!(code(&[]), Err("token_missing"));
        assert_eq!(
            code(&[
                ("x-gitlab-token", b"gl-token"),
                ("x-gitlab-token", b"gl-token")
            ]),
            Err("token_invalid")
        );
    }

    #[test]
    fn the_message_never_shows_the_token() {
        let gitlab = GitLabInterceptor {
            secret: Some(SecretValue::new("gl-token")),
            event_types: vec![],
        };
        let h = headers(&[("x-gitlab-token", b"guessed-token")]);
        let failure = verify(&gitlab, &request(&h, b"{}")).unwrap_err();
        let text = format!("{failure} {failure:?}");
        assert!(text.contains("X-Gitlab-Token"), "{text}");
        assert!(
            !text.contains("gl-token") && !text.contains("guessed"),
            "{text}"
        );
    }
}
