//! Argon2id password hashing.
//!
//! Hashing is deliberately slow (tens of milliseconds and 19 MiB per call), so it runs on
//! tokio's blocking pool, never on the async workers that check tokens, and at most one hash
//! per core runs at a time: a burst of logins queues here instead of starving everything else.
//!
//! Verification (every login) reuses Argon2's working memory: one 19 MiB buffer per permit,
//! kept in a pool. Allocating it per call made the kernel fault in and zero 19 MiB on every
//! login, about a tenth of a login's CPU time under a flood (`perf record`).

use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, Output, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use authlog_application::ports::{HashError, PasswordHasher};
use authlog_domain::{Password, PasswordHash};
use tokio::sync::Semaphore;

/// Argon2id cost parameters. The defaults are OWASP's: m = 19 MiB, t = 2, p = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

pub struct Argon2Hasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// Working memory for verifications, at most one buffer per permit.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Verified against when the user does not exist, so that costs what a real check costs.
    dummy: PasswordHash,
}

impl Argon2Hasher {
    /// Builds the hasher and its dummy hash (one hash's worth of work). `concurrency` bounds
    /// how many hashes run at once; the number of cores is the right value.
    ///
    /// # Errors
    /// [`HashError`] when the parameters are out of Argon2's range.
    pub async fn new(params: Argon2Params, concurrency: usize) -> Result<Self, HashError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| HashError(format!("invalid Argon2 parameters: {e}")))?;
        let mut hasher = Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            memory: Arc::new(Mutex::new(Vec::new())),
            dummy: PasswordHash::from_phc(String::new()),
        };
        let dummy = Password::parse(Self::random_dummy_password())
            .map_err(|e| HashError(format!("dummy password: {e}")))?;
        hasher.dummy = hasher.hash(dummy).await?;
        Ok(hasher)
    }

    fn random_dummy_password() -> String {
        SaltString::generate(&mut OsRng).as_str().to_owned()
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(Argon2<'static>) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError("hasher is shutting down".into()))?;
        let argon2 = self.argon2.clone();
        tokio::task::spawn_blocking(move || work(argon2))
            .await
            .map_err(|e| HashError(format!("hashing task failed: {e}")))?
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, HashError> {
        self.run(move |argon2| {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|hash| PasswordHash::from_phc(hash.to_string()))
                .map_err(|e| HashError(e.to_string()))
        })
        .await
    }

    async fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> Result<bool, HashError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.clone());
        let pool = Arc::clone(&self.memory);
        let matches = self
            .run(move |_| {
                // The permit held by `run` bounds how many buffers are out at once.
                let mut memory = pool
                    .lock()
                    .ok()
                    .and_then(|mut p| p.pop())
                    .unwrap_or_default();
                let matches = verify_with(
                    &mut memory,
                    password.expose_secret().as_bytes(),
                    hash.as_phc(),
                );
                if let Ok(mut pool) = pool.lock() {
                    pool.push(memory);
                }
                matches
            })
            .await?;
        Ok(matches && known)
    }
}

/// Verifies `password` against the PHC string `phc` (with the parameters it records), as
/// `PasswordVerifier::verify_password` does, but in `memory` (grown if too small) instead of a
/// fresh allocation. The comparison is constant-time (`Output`'s equality).
fn verify_with(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> Result<bool, HashError> {
    let unreadable =
        |e: &dyn std::fmt::Display| HashError(format!("stored hash is unreadable: {e}"));
    let parsed = password_hash::PasswordHash::new(phc).map_err(|e| unreadable(&e))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(unreadable(&"no salt or no hash"));
    };
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| unreadable(&e))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| unreadable(&e))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| unreadable(&e))?;
    let mut salt_bytes = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| unreadable(&e))?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = out
        .get_mut(..expected.len())
        .ok_or_else(|| unreadable(&"hash too long"))?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(|e| HashError(e.to_string()))?;
    let computed = Output::new(out).map_err(|e| HashError(e.to_string()))?;
    Ok(computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small parameters: these tests are about behaviour, not cost.
    fn cheap() -> Argon2Params {
        Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn password(raw: &str) -> Password {
        Password::parse(raw.into()).unwrap()
    }

    #[test]
    fn verification_in_reused_memory_matches_the_library_and_follows_the_stored_parameters() {
        let mut memory = Vec::new();
        for memory_kib in [256, 64, 128] {
            let argon2 = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(memory_kib, 1, 1, None).unwrap(),
            );
            let salt = SaltString::generate(&mut OsRng);
            let phc = argon2
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string();
            assert_eq!(verify_with(&mut memory, b"correct horse", &phc), Ok(true));
            assert_eq!(verify_with(&mut memory, b"wrong horse", &phc), Ok(false));
        }
        // Grown once to the largest cost seen, then reused.
        assert_eq!(memory.len(), 256);
        assert!(verify_with(&mut memory, b"x", "not a phc string").is_err());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_verify() {
        let hasher = Argon2Hasher::new(cheap(), 2).await.unwrap();
        let hash = hasher.hash(password("correct horse")).await.unwrap();
        assert!(hash.as_phc().starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(hasher
            .verify(password("correct horse"), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify(password("wrong horse!"), Some(hash))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let hasher = Argon2Hasher::new(cheap(), 2).await.unwrap();
        let a = hasher.hash(password("correct horse")).await.unwrap();
        let b = hasher.hash(password("correct horse")).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn without_a_hash_nothing_verifies_not_even_the_dummy_itself() {
        let hasher = Argon2Hasher::new(cheap(), 2).await.unwrap();
        assert!(!hasher
            .verify(password("anything at all"), None)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn the_dummy_hash_costs_what_a_real_hash_costs() {
        let hasher = Argon2Hasher::new(Argon2Params::default(), 2).await.unwrap();
        assert!(hasher
            .dummy
            .as_phc()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[tokio::test]
    async fn an_unreadable_stored_hash_is_an_error_not_a_match() {
        let hasher = Argon2Hasher::new(cheap(), 2).await.unwrap();
        let broken = PasswordHash::from_phc("not a phc string".into());
        assert!(hasher
            .verify(password("correct horse"), Some(broken))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn parameters_out_of_range_are_refused() {
        let bad = Argon2Params {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1,
        };
        assert!(Argon2Hasher::new(bad, 1).await.is_err());
    }
}
