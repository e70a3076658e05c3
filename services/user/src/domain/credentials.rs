//! Passwords and access tokens. Passwords are stored as argon2id hashes (PHC strings); token
//! secrets are 256 random bits, of which only a SHA-256 digest is stored: a token is looked
//! up by its digest in one indexed read, fast enough for every call at the gateway.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::settings::PasswordCost;

/// What every token secret starts with, so that a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "fbt_";

/// Why a credential operation failed (never because of what the user typed).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The OS random generator failed.
    #[error("cannot draw random bytes: {0}")]
    Random(String),
    /// The password hasher failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

fn hasher(cost: PasswordCost) -> Result<Argon2<'static>, CredentialError> {
    let params =
        Params::new(cost.memory_kib, cost.iterations, 1, None).map_err(|e| CredentialError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], CredentialError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| CredentialError::Random(e.to_string()))?;
    Ok(bytes)
}

/// Hashes a password with a fresh salt (slow by design: run it off the async threads).
pub fn hash_password(password: &str, cost: PasswordCost) -> Result<String, CredentialError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| CredentialError::Hash(e.to_string()))?;
    let hash =
        hasher(cost)?.hash_password(password.as_bytes(), &salt).map_err(|e| CredentialError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// A hash of no one's password, checked when the email is unknown so that an unknown email
/// takes as long to refuse as a wrong password.
fn decoy_hash(cost: PasswordCost) -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        // A fixed salt: the decoy needs no randomness, only the same work as a real check.
        let salt = SaltString::encode_b64(b"fastbreak-decoy!").expect("16 bytes make a valid salt");
        hasher(cost)
            .and_then(|h| {
                h.hash_password(b"decoy password that matches nothing", &salt)
                    .map_err(|e| CredentialError::Hash(e.to_string()))
            })
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// Makes the decoy hash now rather than at the first unknown email.
pub fn prepare_decoy(cost: PasswordCost) {
    decoy_hash(cost);
}

/// True when `password` matches `stored`; with no stored hash (an unknown email) the same work
/// is done against a decoy and the answer is false. Slow by design.
pub fn verify_password(password: &str, stored: Option<&str>, cost: PasswordCost) -> bool {
    let (hash, real) = match stored {
        Some(hash) => (hash, true),
        None => (decoy_hash(cost), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    // The parameters in the stored hash are used, whatever the configured cost is now.
    let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
    matches && real
}

/// A new token: its secret (shown once) and the digest stored.
#[derive(Clone)]
pub struct NewToken {
    /// What the client sends as `Bearer <secret>`.
    pub secret: String,
    /// What is stored and looked up.
    pub digest: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken").field("secret", &"***").field("digest", &"***").finish()
    }
}

/// Draws a new token.
pub fn new_token() -> Result<NewToken, CredentialError> {
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    let digest = token_digest(&secret);
    Ok(NewToken { secret, digest })
}

/// The digest a token secret is stored and looked up under.
pub fn token_digest(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: PasswordCost = PasswordCost { memory_kib: 1024, iterations: 1 };

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse battery", CHEAP).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse battery", Some(&hash), CHEAP));
        assert!(!verify_password("correct horse batterY", Some(&hash), CHEAP));
        assert!(!verify_password("correct horse battery", None, CHEAP), "an unknown email never signs in");
        assert_ne!(hash, hash_password("correct horse battery", CHEAP).unwrap(), "salted");
    }

    #[test]
    fn tokens_are_random_and_only_their_digest_is_kept() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(TOKEN_PREFIX) && a.secret.len() > 40);
        assert_eq!(a.digest, token_digest(&a.secret));
        assert_eq!(a.digest.len(), 64);
        let shown = format!("{a:?}");
        assert!(!shown.contains(&a.secret) && !shown.contains(&a.digest), "{shown}");
    }
}
