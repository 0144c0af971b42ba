//! How a Sluice process reaches NATS: the server URL, one authentication method and TLS,
//! from flags shared by `sluice-ingest`, `sluice-dispatcher` and the `sluice` CLI.
//!
//! Secrets are read from files (Kubernetes mounts Secrets as files) and checked at start:
//! two authentication methods at once, half a pair (a certificate without its key, a user
//! without a password) or an unreadable file stop the process with an error naming the flag
//! and the file. No error, log line or `Debug` output holds a secret's value.

use std::fmt;
use std::path::{Path, PathBuf};

/// The NATS flags, each with its environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server(s) to connect to, comma-separated; `tls://` turns TLS on.
    #[arg(
        long = "nats-url",
        env = "SLUICE_NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true,
        global = true
    )]
    pub url: String,

    /// A NATS `.creds` file (user JWT and nkey seed), for servers in operator (JWT) mode.
    #[arg(
        long = "nats-creds",
        value_name = "FILE",
        env = "SLUICE_NATS_CREDS",
        global = true
    )]
    pub creds: Option<PathBuf>,

    /// A file holding an nkey user seed (`SU…`); the server lists the matching public key.
    #[arg(
        long = "nats-nkey-seed-file",
        value_name = "FILE",
        env = "SLUICE_NATS_NKEY_SEED_FILE",
        global = true
    )]
    pub nkey_seed_file: Option<PathBuf>,

    /// NATS user name; the password is read from `--nats-password-file`.
    #[arg(
        long = "nats-user",
        value_name = "USER",
        env = "SLUICE_NATS_USER",
        global = true
    )]
    pub user: Option<String>,

    /// A file holding the password of `--nats-user`.
    #[arg(
        long = "nats-password-file",
        value_name = "FILE",
        env = "SLUICE_NATS_PASSWORD_FILE",
        global = true
    )]
    pub password_file: Option<PathBuf>,

    /// A file holding a NATS authentication token.
    #[arg(
        long = "nats-token-file",
        value_name = "FILE",
        env = "SLUICE_NATS_TOKEN_FILE",
        global = true
    )]
    pub token_file: Option<PathBuf>,

    /// PEM file of the CA that signed the NATS server's certificate; turns TLS on.
    #[arg(
        long = "nats-tls-ca",
        value_name = "FILE",
        env = "SLUICE_NATS_TLS_CA",
        global = true
    )]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate for mutual TLS; needs `--nats-tls-key`.
    #[arg(
        long = "nats-tls-cert",
        value_name = "FILE",
        env = "SLUICE_NATS_TLS_CERT",
        global = true
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--nats-tls-cert`.
    #[arg(
        long = "nats-tls-key",
        value_name = "FILE",
        env = "SLUICE_NATS_TLS_KEY",
        global = true
    )]
    pub tls_key: Option<PathBuf>,
}

/// Why the NATS flags cannot be used. Names flags and files, never a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum NatsConfigError {
    #[error("--nats-url: {server} is not a NATS server URL: {problem}")]
    Url { server: String, problem: String },
    #[error("only one NATS authentication method may be configured, got {}", .0.join(" and "))]
    Conflict(Vec<&'static str>),
    #[error("{given} needs {missing}")]
    Incomplete {
        given: &'static str,
        missing: &'static str,
    },
    #[error("cannot read {flag} file {}", path.display())]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} file {} is empty", path.display())]
    Empty { flag: &'static str, path: PathBuf },
    #[error("{flag} file {} {problem}", path.display())]
    Invalid {
        flag: &'static str,
        path: PathBuf,
        problem: &'static str,
    },
}

/// A secret read from a file; its `Debug` and `Display` never show it.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The one authentication method in use.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Creds(PathBuf),
    Nkey(Secret),
    UserPassword { user: String, password: Secret },
    Token(Secret),
}

impl Auth {
    fn name(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Creds(_) => "creds",
            Auth::Nkey(_) => "nkey",
            Auth::UserPassword { .. } => "user-password",
            Auth::Token(_) => "token",
        }
    }
}

/// Checked NATS settings, ready to connect with.
#[derive(Debug, Clone)]
pub struct NatsConnect {
    url: String,
    servers: Vec<async_nats::ServerAddr>,
    auth: Auth,
    tls_required: bool,
    tls_ca: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
}

const CREDS: &str = "--nats-creds";
const NKEY: &str = "--nats-nkey-seed-file";
const USER: &str = "--nats-user";
const PASSWORD: &str = "--nats-password-file";
const TOKEN: &str = "--nats-token-file";
const TLS_CA: &str = "--nats-tls-ca";
const TLS_CERT: &str = "--nats-tls-cert";
const TLS_KEY: &str = "--nats-tls-key";

impl NatsArgs {
    /// Only a URL: no authentication, TLS only for a `tls://` URL.
    pub fn with_url(url: impl Into<String>) -> NatsArgs {
        NatsArgs {
            url: url.into(),
            creds: None,
            nkey_seed_file: None,
            user: None,
            password_file: None,
            token_file: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }

    /// Checks the flags together and reads the secret files.
    pub fn resolve(&self) -> Result<NatsConnect, NatsConfigError> {
        let mut methods = Vec::new();
        if self.creds.is_some() {
            methods.push(CREDS);
        }
        if self.nkey_seed_file.is_some() {
            methods.push(NKEY);
        }
        if self.user.is_some() || self.password_file.is_some() {
            methods.push(USER);
        }
        if self.token_file.is_some() {
            methods.push(TOKEN);
        }
        if methods.len() > 1 {
            return Err(NatsConfigError::Conflict(methods));
        }
        let auth = match (
            &self.creds,
            &self.nkey_seed_file,
            &self.user,
            &self.password_file,
            &self.token_file,
        ) {
            (Some(path), ..) => {
                check_creds(path)?;
                Auth::Creds(path.clone())
            }
            (_, Some(path), ..) => {
                let seed = read_secret(NKEY, path)?;
                if !seed.0.starts_with("SU") || nkeys::KeyPair::from_seed(&seed.0).is_err() {
                    return Err(NatsConfigError::Invalid {
                        flag: NKEY,
                        path: path.clone(),
                        problem: "does not hold an nkey user seed (SU…)",
                    });
                }
                Auth::Nkey(seed)
            }
            (_, _, Some(user), Some(path), _) => Auth::UserPassword {
                user: user.clone(),
                password: read_secret(PASSWORD, path)?,
            },
            (_, _, Some(_), None, _) => {
                return Err(NatsConfigError::Incomplete {
                    given: USER,
                    missing: PASSWORD,
                });
            }
            (_, _, None, Some(_), _) => {
                return Err(NatsConfigError::Incomplete {
                    given: PASSWORD,
                    missing: USER,
                });
            }
            (_, _, None, None, Some(path)) => Auth::Token(read_secret(TOKEN, path)?),
            (_, _, None, None, None) => Auth::None,
        };
        let client_cert = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                check_pem(TLS_CERT, cert)?;
                check_pem(TLS_KEY, key)?;
                Some((cert.clone(), key.clone()))
            }
            (Some(_), None) => {
                return Err(NatsConfigError::Incomplete {
                    given: TLS_CERT,
                    missing: TLS_KEY,
                });
            }
            (None, Some(_)) => {
                return Err(NatsConfigError::Incomplete {
                    given: TLS_KEY,
                    missing: TLS_CERT,
                });
            }
            (None, None) => None,
        };
        if let Some(ca) = &self.tls_ca {
            check_pem(TLS_CA, ca)?;
        }
        let servers = parse_servers(&self.url)?;
        let tls_url = servers.iter().any(|server| server.tls_required());
        Ok(NatsConnect {
            url: self.url.clone(),
            servers,
            auth,
            tls_required: tls_url || self.tls_ca.is_some() || client_cert.is_some(),
            tls_ca: self.tls_ca.clone(),
            client_cert,
        })
    }
}

impl NatsConnect {
    /// The URL as given; it may hold credentials (`nats://user:pass@host`), so show
    /// [`Self::shown_url`] instead.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The servers of `--nats-url`, in the order given: the client connects to one of them
    /// and learns the rest of a cluster from it.
    pub fn servers(&self) -> Vec<async_nats::ServerAddr> {
        self.servers.clone()
    }

    /// The URL with any credentials in it replaced by `***`.
    pub fn shown_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The authentication method's name, for logs: `none`, `creds`, `nkey`,
    /// `user-password` or `token`.
    pub fn auth_method(&self) -> &'static str {
        self.auth.name()
    }

    /// Whether the connection must use TLS.
    pub fn tls_required(&self) -> bool {
        self.tls_required
    }

    /// async-nats options carrying the authentication and TLS settings; callers add their
    /// own name, timeouts and reconnect policy.
    pub async fn options(&self) -> Result<async_nats::ConnectOptions, NatsConfigError> {
        let mut options = match &self.auth {
            Auth::None => async_nats::ConnectOptions::new(),
            Auth::Creds(path) => async_nats::ConnectOptions::new()
                .credentials_file(path)
                .await
                .map_err(|_| NatsConfigError::Invalid {
                    flag: CREDS,
                    path: path.clone(),
                    problem: "is not a NATS credentials file (user JWT and nkey seed)",
                })?,
            Auth::Nkey(seed) => async_nats::ConnectOptions::new().nkey(seed.0.clone()),
            Auth::UserPassword { user, password } => async_nats::ConnectOptions::new()
                .user_and_password(user.clone(), password.0.clone()),
            Auth::Token(token) => async_nats::ConnectOptions::new().token(token.0.clone()),
        };
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.client_cert {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options.require_tls(self.tls_required))
    }
}

/// Reads a one-line secret, without the surrounding whitespace a file often ends with.
fn read_secret(flag: &'static str, path: &Path) -> Result<Secret, NatsConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| NatsConfigError::Read {
        flag,
        path: path.to_owned(),
        source,
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(NatsConfigError::Empty {
            flag,
            path: path.to_owned(),
        });
    }
    Ok(Secret(secret.to_owned()))
}

/// A certificate or key file must be readable PEM; async-nats reads it again on connect.
fn check_pem(flag: &'static str, path: &Path) -> Result<(), NatsConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| NatsConfigError::Read {
        flag,
        path: path.to_owned(),
        source,
    })?;
    if !text.contains("-----BEGIN ") {
        return Err(NatsConfigError::Invalid {
            flag,
            path: path.to_owned(),
            problem: "is not PEM",
        });
    }
    Ok(())
}

/// A `.creds` file holds a user JWT block and a user nkey seed block.
fn check_creds(path: &Path) -> Result<(), NatsConfigError> {
    let text = read_secret(CREDS, path)?;
    let invalid = |problem| NatsConfigError::Invalid {
        flag: CREDS,
        path: path.to_owned(),
        problem,
    };
    let jwt = block_after(&text.0, "-----BEGIN NATS USER JWT-----")
        .ok_or_else(|| invalid("holds no user JWT (-----BEGIN NATS USER JWT-----)"))?;
    if jwt.split('.').count() != 3 {
        return Err(invalid("holds a user JWT that is not a JWT"));
    }
    let seed = block_after(&text.0, "-----BEGIN USER NKEY SEED-----")
        .ok_or_else(|| invalid("holds no nkey seed (-----BEGIN USER NKEY SEED-----)"))?;
    if nkeys::KeyPair::from_seed(seed).is_err() {
        return Err(invalid("holds an nkey seed that is not valid"));
    }
    Ok(())
}

/// The first non-empty line after `marker`, if it is not another marker.
fn block_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    text[start..]
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .filter(|line| !line.starts_with("---"))
}

/// `url` with the user information of each server replaced by `***`.
/// The servers of a `--nats-url` value: one URL, or several separated by commas
/// (`nats://a:4222,nats://b:4222`); each may leave out `nats://` and the port.
fn parse_servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, NatsConfigError> {
    let servers: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .collect();
    if servers.is_empty() {
        return Err(NatsConfigError::Url {
            server: format!("{url:?}"),
            problem: "no server given".to_owned(),
        });
    }
    servers
        .into_iter()
        .map(|server| {
            server
                .parse::<async_nats::ServerAddr>()
                .map_err(|error| NatsConfigError::Url {
                    server: redact_url(server),
                    problem: error.to_string(),
                })
        })
        .collect()
}

pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let start = server.find("://").map_or(0, |i| i + 3);
            match server[start..].rfind('@') {
                Some(at) => format!("{}***{}", &server[..start], &server[start + at..]),
                None => server.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests;
