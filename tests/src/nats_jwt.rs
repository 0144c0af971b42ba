//! NATS decentralised (operator mode) authentication for tests: an operator, the accounts it
//! signs and the users they sign, as nkeys and JWTs in the nats-io/jwt v2 format, and the
//! `.creds` files a NATS client authenticates with.
//!
//! It models what `nsc` sets up for a deployment: a self-signed operator that names its
//! system account; an application account with JetStream enabled (no limits); and users of
//! that account who may publish and subscribe to anything. [`OperatorMode::server_conf`] is the nats-server
//! configuration that trusts the operator and preloads both accounts into a memory resolver,
//! for [`NatsServer::start_configured`](crate::NatsServer::start_configured).
//!
//! A JWT is `base64url(header) "." base64url(claims) "." base64url(signature)`, unpadded, with
//! the header `{"typ":"JWT","alg":"ed25519-nkey"}` and an ed25519 signature by the issuer's
//! nkey over the first two parts. `jti` is the unpadded base32 of the SHA-512/256 hash of the
//! standard claims (`iat`, `iss`, `name`, `sub`) without it, as nats-io/jwt computes it.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde_json::{Value, json};
use sha2::{Digest, Sha512_256};

/// An operator: the root of trust a server in operator mode is configured with.
pub struct Operator {
    key: KeyPair,
    jwt: String,
    system: Account,
}

/// An account signed by an operator.
pub struct Account {
    key: KeyPair,
    jwt: String,
}

/// A user signed by an account: its JWT and its nkey seed, what a `.creds` file holds.
pub struct UserCreds {
    /// The user JWT.
    pub jwt: String,
    /// The user's nkey seed (`SU…`), the secret half.
    pub seed: String,
}

impl Operator {
    /// A new self-signed operator named `name`, with its system account (`SYS`, without
    /// JetStream, as `nsc` creates it).
    pub fn new(name: &str) -> Operator {
        let key = KeyPair::new_operator();
        let system = account(&key, "SYS", false);
        let nats = json!({"type": "operator", "system_account": system.public_key()});
        let jwt = sign(&key, &key.public_key(), name, nats);
        Operator { key, jwt, system }
    }

    /// The operator JWT, for nats-server's `operator` setting.
    pub fn jwt(&self) -> &str {
        &self.jwt
    }

    /// The system account.
    pub fn system(&self) -> &Account {
        &self.system
    }

    /// A new account signed by this operator, with JetStream enabled without limits.
    pub fn account(&self, name: &str) -> Account {
        account(&self.key, name, true)
    }
}

/// A new account signed by `operator`, with JetStream (without limits) or without.
fn account(operator: &KeyPair, name: &str, jetstream: bool) -> Account {
    let key = KeyPair::new_account();
    let mut limits = json!({
        "subs": -1, "data": -1, "payload": -1,
        "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1,
    });
    if jetstream {
        for field in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[field] = json!(-1);
        }
    }
    let nats = json!({
        "type": "account",
        "limits": limits,
        "default_permissions": {"pub": {}, "sub": {}},
    });
    let jwt = sign(operator, &key.public_key(), name, nats);
    Account { key, jwt }
}

impl Account {
    /// The account's public key (`A…`), its name in nats-server's configuration.
    pub fn public_key(&self) -> String {
        self.key.public_key()
    }

    /// The account JWT.
    pub fn jwt(&self) -> &str {
        &self.jwt
    }

    /// A new user of this account who may publish and subscribe to any subject.
    pub fn user(&self, name: &str) -> UserCreds {
        let key = KeyPair::new_user();
        let nats = json!({
            "type": "user",
            "pub": {}, "sub": {},
            "subs": -1, "data": -1, "payload": -1,
        });
        UserCreds {
            jwt: sign(&self.key, &key.public_key(), name, nats),
            seed: key.seed().expect("a generated user nkey has a seed"),
        }
    }
}

impl UserCreds {
    /// The `.creds` file's text, as `nsc` writes it.
    pub fn file_text(&self) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n",
            self.jwt, self.seed
        )
    }
}

/// An operator (with its system account) and an application account with JetStream.
pub struct OperatorMode {
    /// The operator the server trusts.
    pub operator: Operator,
    /// The account the application's users belong to.
    pub account: Account,
}

impl OperatorMode {
    /// Generates the operator, its system account and the application account.
    pub fn generate() -> OperatorMode {
        let operator = Operator::new("sluice-test-operator");
        let account = operator.account("SLUICE");
        OperatorMode { operator, account }
    }

    /// nats-server configuration: trust the operator, name the system account, and resolve
    /// both accounts from memory.
    pub fn server_conf(&self) -> String {
        let mut conf = format!(
            "operator: {:?}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n",
            self.operator.jwt(),
            self.operator.system().public_key()
        );
        for account in [self.operator.system(), &self.account] {
            conf.push_str(&format!(
                "  {}: {:?}\n",
                account.public_key(),
                account.jwt()
            ));
        }
        conf.push_str("}\n");
        conf
    }
}

/// A JWT for `subject`, issued and signed by `issuer`, with `nats` as its NATS claims.
fn sign(issuer: &KeyPair, subject: &str, name: &str, mut nats: Value) -> String {
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let standard = json!({
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
    });
    // nats-io/jwt hashes its standard claims, `jti` left out, in this field order (which is
    // also the sorted order, so it does not depend on how serde_json orders keys).
    let jti = base32_no_pad(&Sha512_256::digest(standard.to_string().as_bytes()));
    let mut claims = standard;
    claims["jti"] = json!(jti);
    nats["version"] = json!(2);
    claims["nats"] = nats;

    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{payload}");
    let signature = issuer
        .sign(signed.as_bytes())
        .expect("a generated nkey can sign");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// RFC 4648 base32 (upper case) without padding.
fn base32_no_pad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(part: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(part).expect("base64url")
    }

    /// The claims of `jwt`, after checking that `issuer` signed it.
    fn verified_claims(jwt: &str, issuer: &str) -> Value {
        let (signed, signature) = jwt.rsplit_once('.').expect("three parts");
        let (header, payload) = signed.split_once('.').expect("three parts");
        assert_eq!(
            serde_json::from_slice::<Value>(&decode(header)).unwrap(),
            json!({"typ": "JWT", "alg": "ed25519-nkey"})
        );
        KeyPair::from_public_key(issuer)
            .unwrap()
            .verify(signed.as_bytes(), &decode(signature))
            .expect("signed by the issuer");
        serde_json::from_slice(&decode(payload)).unwrap()
    }

    #[test]
    fn base32_matches_rfc_4648_without_padding() {
        let cases = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (input, expected) in cases {
            assert_eq!(base32_no_pad(input.as_bytes()), expected, "{input:?}");
        }
    }

    #[test]
    fn the_chain_is_signed_operator_to_account_to_user() {
        let setup = OperatorMode::generate();
        let operator = setup.operator.key.public_key();
        let claims = verified_claims(setup.operator.jwt(), &operator);
        assert_eq!(claims["sub"], json!(operator));
        assert_eq!(claims["nats"]["type"], "operator");
        assert_eq!(
            claims["nats"]["system_account"],
            json!(setup.operator.system().public_key())
        );

        let claims = verified_claims(setup.account.jwt(), &operator);
        assert_eq!(claims["sub"], json!(setup.account.public_key()));
        assert_eq!(claims["nats"]["type"], "account");
        assert_eq!(claims["nats"]["limits"]["disk_storage"], -1);
        let system = verified_claims(setup.operator.system().jwt(), &operator);
        assert!(system["nats"]["limits"].get("disk_storage").is_none());

        let user = setup.account.user("someone");
        let claims = verified_claims(&user.jwt, &setup.account.public_key());
        let key = KeyPair::from_seed(&user.seed).unwrap();
        assert_eq!(claims["sub"], json!(key.public_key()));
        assert_eq!(claims["nats"]["type"], "user");
        assert_eq!(claims["jti"].as_str().map(str::len), Some(52));
    }

    #[test]
    fn the_creds_file_holds_the_jwt_and_the_seed_in_their_blocks() {
        let user = OperatorMode::generate().account.user("someone");
        let text = user.file_text();
        let jwt_block = format!(
            "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------",
            user.jwt
        );
        let seed_block = format!(
            "-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------",
            user.seed
        );
        assert!(text.contains(&jwt_block), "{text}");
        assert!(text.contains(&seed_block), "{text}");
        assert!(user.seed.starts_with("SU"), "{}", user.seed);
    }
}
