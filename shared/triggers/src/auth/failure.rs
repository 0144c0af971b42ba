//! Why a request was refused: which credential failed which check, as a stable `code` and a
//! message that names the header and the check, never a secret, a signature, a token or an
//! expected value.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// The stable `code` of a 401 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCode {
    SignatureMissing,
    SignatureInvalid,
    TokenMissing,
    TokenInvalid,
    TimestampMissing,
    TimestampInvalid,
    TimestampOutsideWindow,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignatureMissing => "signature_missing",
            Self::SignatureInvalid => "signature_invalid",
            Self::TokenMissing => "token_missing",
            Self::TokenInvalid => "token_invalid",
            Self::TimestampMissing => "timestamp_missing",
            Self::TimestampInvalid => "timestamp_invalid",
            Self::TimestampOutsideWindow => "timestamp_outside_window",
        }
    }
}

/// What a credential header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A MAC computed with the secret (`X-Hub-Signature-256`, `X-Slack-Signature`…).
    Signature,
    /// The secret itself, or (Gitee) a token derived from it.
    Token,
    /// The time the sender signed at.
    Timestamp,
}

/// What is wrong with the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing,
    /// Sent more than once: refused rather than guessing which value counts.
    Repeated,
    /// Not of the form `expected` (`sha256=<hex>`, a Unix time in seconds…).
    Malformed {
        expected: Cow<'static, str>,
    },
    /// Well formed, but computed with another secret or over other content.
    Mismatch,
    /// A timestamp further than `window` from the server's clock (either way).
    OutsideWindow {
        window: Duration,
    },
    /// GitHub: only the legacy SHA-1 `X-Hub-Signature` was sent, and the interceptor does not
    /// allow it.
    OnlySha1,
}

/// A refused credential: the header it came in and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    credential: Credential,
    problem: Problem,
    /// The header, as the provider spells it (or as the hmac interceptor names it).
    header: Cow<'static, str>,
}

impl AuthFailure {
    pub fn new(
        credential: Credential,
        header: impl Into<Cow<'static, str>>,
        problem: Problem,
    ) -> Self {
        Self {
            credential,
            problem,
            header: header.into(),
        }
    }

    pub fn code(&self) -> FailureCode {
        match (self.credential, &self.problem) {
            (Credential::Signature, Problem::Missing | Problem::OnlySha1) => {
                FailureCode::SignatureMissing
            }
            (Credential::Signature, _) => FailureCode::SignatureInvalid,
            (Credential::Token, Problem::Missing) => FailureCode::TokenMissing,
            (Credential::Token, _) => FailureCode::TokenInvalid,
            (Credential::Timestamp, Problem::Missing) => FailureCode::TimestampMissing,
            (Credential::Timestamp, Problem::OutsideWindow { .. }) => {
                FailureCode::TimestampOutsideWindow
            }
            (Credential::Timestamp, _) => FailureCode::TimestampInvalid,
        }
    }

    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    pub fn header(&self) -> &str {
        &self.header
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = &self.header;
        let what = match self.credential {
            Credential::Signature => "signature",
            Credential::Token => "token",
            Credential::Timestamp => "timestamp",
        };
        match &self.problem {
            Problem::Missing => write!(f, "the {header} header is missing"),
            Problem::Repeated => write!(
                f,
                "the {header} header was sent more than once; send exactly one"
            ),
            Problem::Malformed { expected } => {
                write!(f, "the {header} header is not of the form {expected}")
            }
            Problem::Mismatch if self.credential == Credential::Signature => write!(
                f,
                "the {header} signature does not match the request and the listener's secret"
            ),
            Problem::Mismatch => write!(
                f,
                "the {header} {what} does not match the listener's secret"
            ),
            Problem::OutsideWindow { window } => write!(
                f,
                "the {header} timestamp is more than {} away from the server's clock",
                DisplayWindow(*window)
            ),
            Problem::OnlySha1 => write!(
                f,
                "the {header} header is missing (the legacy SHA-1 X-Hub-Signature is accepted only when the interceptor sets `allowSha1`)"
            ),
        }
    }
}

/// `5m`, `1h`, `90s`: a window as it is written in the configuration.
struct DisplayWindow(Duration);

impl fmt::Display for DisplayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        match millis {
            m if m % 3_600_000 == 0 => write!(f, "{}h", m / 3_600_000),
            m if m % 60_000 == 0 => write!(f, "{}m", m / 60_000),
            m if m % 1_000 == 0 => write!(f, "{}s", m / 1_000),
            m => write!(f, "{m}ms"),
        }
    }
}
