//! Ed25519 signing keys.

use authlog_application::ports::{KeyError, KeyGenerator, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroize;

/// The JOSE name of the algorithm these keys sign with.
pub const EDDSA: &str = "EdDSA";

pub struct Ed25519KeyGenerator;

impl KeyGenerator for Ed25519KeyGenerator {
    fn generate(&self, now: OffsetDateTime) -> Result<SigningKey, KeyError> {
        let mut seed = [0u8; 32];
        OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| KeyError(format!("no randomness: {e}")))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        seed.zeroize();
        let private_der = key
            .to_pkcs8_der()
            .map_err(|e| KeyError(format!("PKCS#8 encoding: {e}")))?
            .as_bytes()
            .to_vec();
        let public_key = key.verifying_key().to_bytes().to_vec();
        Ok(SigningKey {
            kid: thumbprint(&public_key),
            algorithm: EDDSA.to_owned(),
            private_der,
            public_key,
            created_at: now,
            revoked_at: None,
        })
    }
}

/// The public key as a JWK's `x`: base64url without padding.
pub fn jwk_x(public_key: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(public_key)
}

/// The RFC 7638 JWK thumbprint of an Ed25519 public key: a `kid` anyone can recompute from the
/// JWKS entry, so it names the key without saying anything else.
pub fn thumbprint(public_key: &[u8]) -> String {
    // RFC 7638 §3.2: the required members, in lexicographic order, with no whitespace.
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        jwk_x(public_key)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn generated_keys_are_distinct_and_named_by_their_thumbprint() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let a = Ed25519KeyGenerator.generate(now).unwrap();
        let b = Ed25519KeyGenerator.generate(now).unwrap();
        assert_ne!(a.kid, b.kid);
        assert_ne!(a.private_der, b.private_der);
        assert_eq!(a.kid, thumbprint(&a.public_key));
        assert_eq!(a.public_key.len(), 32);
        assert_eq!(a.algorithm, "EdDSA");
    }

    #[test]
    fn thumbprint_matches_rfc_8037_appendix_a_3() {
        // RFC 8037 A.1's public key and A.3's thumbprint.
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(
            thumbprint(&x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
