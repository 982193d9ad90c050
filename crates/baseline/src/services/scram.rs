//! The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it: no channel
//! binding (`n,,`) and an empty user name in the messages (the server takes the user from the
//! startup message). Passwords are used as they are: SASLprep leaves the probe's ASCII
//! passwords unchanged.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The most PBKDF2 iterations accepted: a hostile server could ask for billions to stall the
/// probe. PostgreSQL's default is 4,096.
const MAX_ITERATIONS: u32 = 100_000;

/// One SCRAM-SHA-256 exchange.
pub(crate) struct Client {
    password: String,
    nonce: String,
    client_first_bare: String,
    /// What the server must prove in its final message, known once the proof is sent.
    expected_server_signature: Option<[u8; 32]>,
}

impl Client {
    /// A client with a fresh random nonce.
    pub(crate) fn new(password: &str) -> Client {
        Client::with_nonce("", password, &STANDARD.encode(rand::random::<[u8; 18]>()))
    }

    fn with_nonce(user: &str, password: &str, nonce: &str) -> Client {
        Client {
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            client_first_bare: format!("n={user},r={nonce}"),
            expected_server_signature: None,
        }
    }

    /// The client-first-message.
    pub(crate) fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final-message (with the proof) answering `server_first`.
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "the server-first-message is not UTF-8".to_owned())?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", value)) => nonce = Some(value),
                Some(("s", value)) => salt = Some(value),
                Some(("i", value)) => iterations = Some(value),
                Some(("m", _)) => return Err("the server requires an extension".to_owned()),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("the server-first-message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server nonce does not extend the client's".to_owned());
        }
        let salt = STANDARD
            .decode(salt.ok_or("the server-first-message has no salt")?)
            .map_err(|error| format!("the salt is not base64: {error}"))?;
        let iterations: u32 = iterations
            .ok_or("the server-first-message has no iteration count")?
            .parse()
            .map_err(|_| "the iteration count is not a number".to_owned())?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(format!(
                "{iterations} iterations is outside 1..={MAX_ITERATIONS}"
            ));
        }
        let salted_password = salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = hmac(&salted_password, b"Client Key");
        let stored_key = Sha256::digest(client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(client_signature)
            .map(|(key, signature)| key ^ signature)
            .collect();
        let server_key = hmac(&salted_password, b"Server Key");
        self.expected_server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }

    /// Checks the server-final-message: the server proves it knew the password too.
    pub(crate) fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let server_final = std::str::from_utf8(server_final)
            .map_err(|_| "the server-final-message is not UTF-8".to_owned())?;
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(format!("the server reports {error}"));
        }
        let signature = server_final
            .strip_prefix("v=")
            .and_then(|value| STANDARD.decode(value.split(',').next()?).ok())
            .ok_or("the server-final-message has no verifier")?;
        match self.expected_server_signature {
            Some(expected) if expected[..] == signature[..] => Ok(()),
            Some(_) => Err("the server's signature is wrong".to_owned()),
            None => Err("a server-final-message before the client-final-message".to_owned()),
        }
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `Hi(password, salt, i)` of RFC 5802: PBKDF2-HMAC-SHA-256 with one output block.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut block = hmac(password, &first);
    let mut result = block;
    for _ in 1..iterations {
        block = hmac(password, &block);
        for (out, byte) in result.iter_mut().zip(block) {
            *out ^= byte;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example exchange of RFC 7677, section 3.
    #[test]
    fn rfc_7677_example() {
        let mut client = Client::with_nonce("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = client.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(
            client
                .verify_server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_err()
        );
        assert!(client.verify_server_final(b"e=invalid-proof").is_err());
    }

    #[test]
    fn hostile_server_first_messages_are_refused() {
        for server_first in [
            &b"r=someone-elses-nonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"[..],
            b"r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            b"r=abcdef,s=not base64!,i=4096",
            b"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000",
            b"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
            b"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            b"m=ext,r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            b"\xff\xfe",
        ] {
            let mut client = Client::with_nonce("", "pw", "abc");
            assert!(
                client.client_final(server_first).is_err(),
                "{}",
                String::from_utf8_lossy(server_first)
            );
        }
    }
}
