use std::error::Error as _;

use super::*;

const SECRET: &str = "correct-horse-battery-staple";

fn args() -> NatsArgs {
    NatsArgs::with_url("nats://127.0.0.1:4222")
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// The error and all its causes, as a user would read them.
fn chain(error: &NatsConfigError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[test]
fn two_authentication_methods_are_refused_naming_both_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut flags = args();
    flags.token_file = Some(write(&dir, "token", SECRET));
    flags.user = Some("sluice".into());
    flags.password_file = Some(write(&dir, "password", SECRET));
    let error = flags.resolve().unwrap_err().to_string();
    assert!(error.contains("--nats-user"), "{error}");
    assert!(error.contains("--nats-token-file"), "{error}");
    assert!(!error.contains(SECRET), "{error}");
}

#[test]
fn half_pairs_are_refused_naming_the_missing_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut flags = args();
    flags.tls_cert = Some(write(&dir, "cert.pem", "-----BEGIN CERTIFICATE-----\n"));
    let error = flags.resolve().unwrap_err().to_string();
    assert_eq!(error, "--nats-tls-cert needs --nats-tls-key");

    let mut flags = args();
    flags.user = Some("sluice".into());
    let error = flags.resolve().unwrap_err().to_string();
    assert_eq!(error, "--nats-user needs --nats-password-file");
}

#[test]
fn an_unreadable_file_is_named() {
    let mut flags = args();
    flags.token_file = Some(PathBuf::from("/nonexistent/sluice/token"));
    let error = flags.resolve().unwrap_err().to_string();
    assert!(error.contains("--nats-token-file"), "{error}");
    assert!(error.contains("/nonexistent/sluice/token"), "{error}");
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A secret in the wrong file: the nkey check refuses it without quoting it.
    let mut flags = args();
    flags.nkey_seed_file = Some(write(&dir, "seed", SECRET));
    let error = flags.resolve().unwrap_err();
    assert!(chain(&error).contains("--nats-nkey-seed-file"), "{error}");
    assert!(!chain(&error).contains(SECRET), "{error}");
    assert!(!format!("{error:?}").contains(SECRET));

    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{SECRET}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{SECRET}\n------END USER NKEY SEED------\n"
    );
    let mut flags = args();
    flags.creds = Some(write(&dir, "user.creds", &creds));
    let error = flags.resolve().unwrap_err();
    assert!(chain(&error).contains("user.creds"), "{error}");
    assert!(!chain(&error).contains(SECRET), "{error}");

    // Accepted settings keep the secret out of their `Debug` too.
    let mut flags = args();
    flags.user = Some("sluice".into());
    flags.password_file = Some(write(&dir, "password", &format!("{SECRET}\n")));
    let resolved = flags.resolve().expect("user and password");
    assert_eq!(resolved.auth_method(), "user-password");
    assert!(!format!("{resolved:?}").contains(SECRET));
    let mut flags = args();
    flags.token_file = Some(write(&dir, "token", SECRET));
    let resolved = flags.resolve().expect("token");
    assert!(!format!("{resolved:?}").contains(SECRET));
}

#[test]
fn a_malformed_creds_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut flags = args();
    flags.creds = Some(write(&dir, "broken.creds", "not a creds file\n"));
    let error = flags.resolve().unwrap_err().to_string();
    assert!(error.contains("--nats-creds"), "{error}");
    assert!(error.contains("broken.creds"), "{error}");
}

#[test]
fn a_valid_nkey_seed_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = nkeys::KeyPair::new_user().seed().expect("seed");
    let mut flags = args();
    flags.nkey_seed_file = Some(write(&dir, "seed", &format!("{seed}\n")));
    let resolved = flags.resolve().expect("nkey");
    assert_eq!(resolved.auth_method(), "nkey");
    assert!(!format!("{resolved:?}").contains(&seed));
}

#[test]
fn tls_urls_and_a_ca_turn_tls_on() {
    assert!(!args().resolve().expect("plain").tls_required());
    let flags = NatsArgs::with_url("nats://a:4222,tls://b:4222");
    assert!(flags.resolve().expect("tls url").tls_required());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut flags = args();
    flags.tls_ca = Some(write(&dir, "ca.pem", "-----BEGIN CERTIFICATE-----\n"));
    assert!(flags.resolve().expect("ca").tls_required());
    let mut flags = args();
    flags.tls_ca = Some(write(&dir, "ca.txt", "hello"));
    let error = flags.resolve().unwrap_err().to_string();
    assert!(
        error.contains("ca.txt") && error.contains("not PEM"),
        "{error}"
    );
}

#[test]
fn credentials_in_a_url_are_not_shown() {
    let resolved = NatsArgs::with_url("nats://u:p@a:4222,nats://b:4222")
        .resolve()
        .expect("url");
    assert_eq!(resolved.shown_url(), "nats://***@a:4222,nats://b:4222");
}

#[test]
fn credentials_in_the_url_are_not_shown_anywhere() {
    assert_eq!(
        redact_url("nats://user:pa@ss@host:4222"),
        "nats://***@host:4222"
    );
    assert_eq!(
        redact_url("tls://token@a:1,nats://b:2"),
        "tls://***@a:1,nats://b:2"
    );
    assert_eq!(redact_url("127.0.0.1:4222"), "127.0.0.1:4222");
    assert_eq!(redact_url("u:p@h"), "***@h");
}

#[test]
fn several_servers_are_read_from_one_url_flag() {
    let connect = NatsArgs::with_url("nats://10.0.0.1:4222, nats://10.0.0.2:4223,10.0.0.3")
        .resolve()
        .expect("three servers");
    let servers: Vec<(String, u16)> = connect
        .servers()
        .iter()
        .map(|server| (server.host().to_owned(), server.port()))
        .collect();
    assert_eq!(
        servers,
        [
            ("10.0.0.1".to_owned(), 4222),
            ("10.0.0.2".to_owned(), 4223),
            ("10.0.0.3".to_owned(), 4222)
        ]
    );
    assert!(!connect.tls_required());
    let tls = NatsArgs::with_url("nats://a:4222,tls://b:4222")
        .resolve()
        .expect("two");
    assert!(tls.tls_required(), "one tls:// server asks for TLS");
}

#[test]
fn a_server_that_is_no_url_is_named_without_its_password() {
    let error = NatsArgs::with_url(format!("nats://a:4222,nats://sluice:{SECRET}@b:port"))
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("--nats-url: nats://***@b:port"),
        "{error}"
    );
    assert!(!error.contains(SECRET), "{error}");
    let error = NatsArgs::with_url(" , ").resolve().unwrap_err().to_string();
    assert!(error.contains("no server given"), "{error}");
}
