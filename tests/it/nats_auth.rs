//! NATS that is not open: ingest, the dispatcher and `sluice dlq` against a real nats-server
//! that requires a user and password, a token, an nkey, a `.creds` file (operator mode), or
//! mutual TLS; the wrong credentials keep a process unready with an authorization error that
//! never shows the secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice_tests::NatsServer;
use sluice_tests::nats_jwt::{Operator, OperatorMode, UserCreds};
use sluice_tests::pki::TestPki;
use sluice_tests::procs::{Dispatcher, Ingest, SinkTarget, bin_path, eventually};

use crate::support::{ConfigDir, Stack, github_listener, post_push, push_body};

const SA_USER: &str = "system:serviceaccount:team-a:builder";
const USER: &str = "sluice";
const PASSWORD: &str = "s3cret-nats-password-value";
const WRONG_PASSWORD: &str = "wrong-nats-password-value";
const TOKEN: &str = "s3cret-nats-token-value";

/// Secret files, as Kubernetes mounts them.
struct Secrets(tempfile::TempDir);

impl Secrets {
    fn new() -> Secrets {
        Secrets(tempfile::tempdir().expect("tempdir"))
    }

    fn file(&self, name: &str, value: &str) -> String {
        let path = self.0.path().join(name);
        std::fs::write(&path, value).expect("write secret");
        path.display().to_string()
    }
}

async fn user_password_server() -> NatsServer {
    let conf = format!(
        "authorization {{\n  users = [\n    {{user: {USER:?}, password: {PASSWORD:?}}}\n  ]\n}}\n"
    );
    NatsServer::start_configured(&conf, || {
        async_nats::ConnectOptions::with_user_and_password(USER.into(), PASSWORD.into())
    })
    .await
}

fn listener_config() -> ConfigDir {
    ConfigDir::new().file("github.yaml", &github_listener("team-a", "builder"))
}

/// `/readyz`'s status at `base`, 0 when nothing answers.
async fn readyz(base: &str) -> u16 {
    match reqwest::get(format!("{base}/readyz")).await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// Waits until the process has logged `text`, then checks it is still not ready.
async fn assert_unready_logging(
    process: &sluice_tests::procs::Process,
    ready_url: &str,
    text: &str,
) {
    let logged = eventually(Duration::from_secs(20), || async {
        process.logs().contains(text)
    })
    .await;
    assert!(logged, "no {text:?} in the log:\n{}", process.logs());
    assert_ne!(readyz(ready_url).await, 200, "{}", process.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn user_and_password_from_files_carry_a_webhook_to_a_run() {
    let secrets = Secrets::new();
    let password = secrets.file("password", &format!("{PASSWORD}\n"));
    let flags = ["--nats-user", USER, "--nats-password-file", &password];
    let stack = Stack::start_on(
        user_password_server().await,
        listener_config(),
        |api| api.grant(SA_USER, &["create"], "tekton.dev", "pipelineruns", "team-a"),
        &flags,
        &flags,
    )
    .await;

    let client = reqwest::Client::new();
    let url = stack.ingest.hook_url("team-a", "github");
    let (status, answer) = post_push(&client, &url, &push_body(&"a".repeat(40))).await;
    assert_eq!(status, 202, "{answer}");
    let created = eventually(Duration::from_secs(30), || async {
        stack
            .api
            .object_count("tekton.dev", "pipelineruns", "team-a")
            == 1
    })
    .await;
    assert!(created, "{}", stack.dispatcher.process.logs());
    for logs in [stack.ingest.process.logs(), stack.dispatcher.process.logs()] {
        assert!(!logs.contains(PASSWORD), "the password was logged:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_keeps_ingest_and_dispatcher_unready_without_logging_it() {
    let nats = user_password_server().await;
    let config = listener_config();
    let secrets = Secrets::new();
    let wrong = secrets.file("password", WRONG_PASSWORD);
    let flags = ["--nats-user", USER, "--nats-password-file", &wrong];

    let ingest = Ingest::start(&nats.url(), config.path(), &flags).await;
    assert_unready_logging(&ingest.process, &ingest.url, "authorization violation").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dispatcher = Dispatcher::spawn(
        &nats.url(),
        config.path(),
        SinkTarget::Dir(dir.path()),
        &flags,
    );
    assert_unready_logging(
        &dispatcher.process,
        &dispatcher.metrics_url,
        "authorization violation",
    )
    .await;
    for logs in [ingest.process.logs(), dispatcher.process.logs()] {
        assert!(
            !logs.contains(WRONG_PASSWORD),
            "the password was logged:\n{logs}"
        );
        assert!(!logs.contains(PASSWORD));
    }
}

/// Starts ingest with `flags` and checks that a signed webhook is accepted (stored durably).
async fn ingest_accepts_a_webhook(nats_url: &str, flags: &[&str]) {
    let config = listener_config();
    let ingest = Ingest::start(nats_url, config.path(), flags).await;
    ingest.wait_ready().await;
    let client = reqwest::Client::new();
    let url = ingest.hook_url("team-a", "github");
    let (status, answer) = post_push(&client, &url, &push_body(&"b".repeat(40))).await;
    assert_eq!(status, 202, "{answer}\n{}", ingest.process.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_file_authenticates_ingest() {
    let nats = NatsServer::start_configured(
        &format!("authorization {{\n  token: {TOKEN:?}\n}}\n"),
        || async_nats::ConnectOptions::with_token(TOKEN.into()),
    )
    .await;
    let secrets = Secrets::new();
    let token = secrets.file("token", TOKEN);
    ingest_accepts_a_webhook(&nats.url(), &["--nats-token-file", &token]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_nkey_seed_file_authenticates_ingest() {
    let pair = nkeys::KeyPair::new_user();
    let seed = pair.seed().expect("seed");
    let conf = format!(
        "authorization {{\n  users = [\n    {{nkey: {:?}}}\n  ]\n}}\n",
        pair.public_key()
    );
    let probe_seed = seed.clone();
    let nats = NatsServer::start_configured(&conf, move || {
        async_nats::ConnectOptions::with_nkey(probe_seed.clone())
    })
    .await;
    let secrets = Secrets::new();
    let seed_file = secrets.file("seed", &format!("{seed}\n"));
    ingest_accepts_a_webhook(&nats.url(), &["--nats-nkey-seed-file", &seed_file]).await;
}

/// A server in operator (JWT) mode trusting `setup`'s operator; the readiness probe
/// connects as `probe`, a user of the application account.
async fn operator_mode_server(setup: &OperatorMode, probe: &UserCreds) -> NatsServer {
    let creds = probe.file_text();
    NatsServer::start_configured(&setup.server_conf(), move || {
        async_nats::ConnectOptions::with_credentials(&creds).expect("parse the probe's .creds")
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_creds_file_in_operator_mode_carries_a_webhook_to_a_run() {
    let setup = OperatorMode::generate();
    let nats = operator_mode_server(&setup, &setup.account.user("probe")).await;
    let user = setup.account.user("sluice");
    let secrets = Secrets::new();
    let creds = secrets.file("user.creds", &user.file_text());
    let flags = ["--nats-creds", &creds];
    let stack = Stack::start_on(
        nats,
        listener_config(),
        |api| api.grant(SA_USER, &["create"], "tekton.dev", "pipelineruns", "team-a"),
        &flags,
        &flags,
    )
    .await;

    let client = reqwest::Client::new();
    let url = stack.ingest.hook_url("team-a", "github");
    let (status, answer) = post_push(&client, &url, &push_body(&"c".repeat(40))).await;
    assert_eq!(status, 202, "{answer}");
    let created = eventually(Duration::from_secs(30), || async {
        stack
            .api
            .object_count("tekton.dev", "pipelineruns", "team-a")
            == 1
    })
    .await;
    assert!(created, "{}", stack.dispatcher.process.logs());
    for logs in [stack.ingest.process.logs(), stack.dispatcher.process.logs()] {
        assert!(
            !logs.contains(&user.seed),
            "the nkey seed was logged:\n{logs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_creds_file_from_an_unknown_account_keeps_ingest_and_dispatcher_unready() {
    let setup = OperatorMode::generate();
    let nats = operator_mode_server(&setup, &setup.account.user("probe")).await;
    // A well-formed user whose account another operator signed: the server cannot resolve it.
    let stranger = Operator::new("other-operator")
        .account("OTHER")
        .user("sluice");
    let config = listener_config();
    let secrets = Secrets::new();
    let creds = secrets.file("user.creds", &stranger.file_text());
    let flags = ["--nats-creds", &creds];

    let ingest = Ingest::start(&nats.url(), config.path(), &flags).await;
    assert_unready_logging(&ingest.process, &ingest.url, "authorization violation").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dispatcher = Dispatcher::spawn(
        &nats.url(),
        config.path(),
        SinkTarget::Dir(dir.path()),
        &flags,
    );
    assert_unready_logging(
        &dispatcher.process,
        &dispatcher.metrics_url,
        "authorization violation",
    )
    .await;
    for logs in [ingest.process.logs(), dispatcher.process.logs()] {
        assert!(
            !logs.contains(&stranger.seed),
            "the nkey seed was logged:\n{logs}"
        );
    }
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

async fn mutual_tls_server(pki: &TestPki) -> NatsServer {
    let (ca, (cert, key)) = (pki.ca(), pki.client());
    NatsServer::start_configured(&pki.nats_tls_block(), move || {
        async_nats::ConnectOptions::new()
            .add_root_certificates(ca.clone())
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_with_a_private_ca_carries_webhooks_and_refuses_a_client_without_a_certificate()
{
    let pki = TestPki::generate();
    let nats = mutual_tls_server(&pki).await;
    let (ca, (cert, key)): (PathBuf, (PathBuf, PathBuf)) = (pki.ca(), pki.client());
    let (ca, cert, key) = (path(&ca), path(&cert), path(&key));
    let tls_url = nats.tls_url();
    ingest_accepts_a_webhook(
        &nats.url(),
        &[
            "--nats-url",
            &tls_url,
            "--nats-tls-ca",
            &ca,
            "--nats-tls-cert",
            &cert,
            "--nats-tls-key",
            &key,
        ],
    )
    .await;

    let config = listener_config();
    let ingest = Ingest::start(
        &nats.url(),
        config.path(),
        &["--nats-url", &tls_url, "--nats-tls-ca", &ca],
    )
    .await;
    assert_unready_logging(&ingest.process, &ingest.url, "cannot connect to NATS").await;
}

/// Runs `sluice dlq list` against `nats_url` with `flags`.
async fn dlq_list(nats_url: &str, flags: &[&str]) -> std::process::Output {
    tokio::process::Command::new(bin_path("sluice"))
        .args(["dlq", "list"])
        .args(flags)
        .env("SLUICE_NATS_URL", nats_url)
        .output()
        .await
        .expect("run sluice")
}

#[tokio::test(flavor = "multi_thread")]
async fn sluice_dlq_list_authenticates_with_the_same_flags() {
    let nats = user_password_server().await;
    let secrets = Secrets::new();
    let password = secrets.file("password", PASSWORD);
    let output = dlq_list(
        &nats.url(),
        &["--nats-user", USER, "--nats-password-file", &password],
    )
    .await;
    assert!(output.status.success(), "{output:?}");

    let output = dlq_list(&nats.url(), &[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert!(stderr.contains("authorization"), "{stderr}");

    let wrong = secrets.file("wrong", WRONG_PASSWORD);
    let output = dlq_list(
        &nats.url(),
        &["--nats-user", USER, "--nats-password-file", &wrong],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert!(stderr.contains("authorization"), "{stderr}");
    assert!(!stderr.contains(WRONG_PASSWORD), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sluice_dlq_list_authenticates_with_a_creds_file() {
    let setup = OperatorMode::generate();
    let nats = operator_mode_server(&setup, &setup.account.user("probe")).await;
    let secrets = Secrets::new();
    let creds = secrets.file("user.creds", &setup.account.user("operator").file_text());
    let output = dlq_list(&nats.url(), &["--nats-creds", &creds]).await;
    assert!(output.status.success(), "{output:?}");

    let output = dlq_list(&nats.url(), &[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert!(stderr.contains("authorization"), "{stderr}");
}

/// Runs `sluice-ingest` with `flags` on an empty configuration; it must exit at start.
fn ingest_refuses(flags: &[&str]) -> String {
    let config = ConfigDir::new();
    let output = std::process::Command::new(bin_path("sluice-ingest"))
        .args([
            "--config-dir",
            &path(config.path()),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(flags)
        .env_remove("SLUICE_NATS_URL")
        .output()
        .expect("run sluice-ingest");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{stderr}");
    stderr
}

#[test]
fn conflicting_or_malformed_settings_stop_ingest_at_start_naming_flags_and_files() {
    let secrets = Secrets::new();
    let token = secrets.file("token", TOKEN);
    let password = secrets.file("password", PASSWORD);
    let stderr = ingest_refuses(&[
        "--nats-token-file",
        &token,
        "--nats-user",
        USER,
        "--nats-password-file",
        &password,
    ]);
    assert!(
        stderr.contains("--nats-user") && stderr.contains("--nats-token-file"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(TOKEN) && !stderr.contains(PASSWORD),
        "{stderr}"
    );

    let stderr = ingest_refuses(&["--nats-tls-cert", &token]);
    assert!(
        stderr.contains("--nats-tls-cert needs --nats-tls-key"),
        "{stderr}"
    );

    // A malformed file is refused before anything connects (the operator-mode tests above
    // authenticate with well-formed ones).
    let creds = secrets.file(
        "user.creds",
        &format!("-----BEGIN NATS USER JWT-----\n{TOKEN}\n------END NATS USER JWT------\n"),
    );
    let stderr = ingest_refuses(&["--nats-creds", &creds]);
    assert!(
        stderr.contains("--nats-creds") && stderr.contains(&creds),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN), "{stderr}");

    let missing = "/nonexistent/sluice/password";
    let stderr = ingest_refuses(&["--nats-user", USER, "--nats-password-file", missing]);
    assert!(stderr.contains(missing), "{stderr}");
}
