//! The master key: the one secret that lives outside the database and seals the secrets in it.
//!
//! A database copied off the machine (a backup, a stolen disk, a `pg_dump`) then holds nothing
//! that signs a token. The key is 32 random bytes, kept in a file as one line of base64 (so an
//! operator can move it through a secrets manager as text), created with mode 0600.
//!
//! Sealing is AES-256-GCM with a random 96-bit nonce. Sealed bytes are
//! `MAGIC ‖ nonce ‖ ciphertext ‖ tag`; `MAGIC` names the format (so a later one can be told
//! apart) and can never begin a PKCS#8 DER document (`0x30`), which is how the signing keys an
//! older release stored in clear are recognised. Each seal is bound to what it is for (the
//! associated data: a purpose and the row's id), so sealed bytes moved to another row do not
//! open there.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

/// HMAC-SHA-256 of `message` under `key`.
fn hmac(key: &[u8], message: &[u8]) -> Zeroizing<[u8; 32]> {
    use hmac::Mac as _;
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(message);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// The first bytes of every sealed value: a byte no DER document starts with, `k`, and the
/// format's version.
const MAGIC: [u8; 3] = [0xA1, b'k', 1];
const NONCE: usize = 12;
const TAG: usize = 16;

/// The key that seals what the database must not hold in clear.
pub struct MasterKey {
    cipher: Aes256Gcm,
    /// The key for [`MasterKey::derive`]: itself derived from the master key, so that the
    /// cipher's key is never used as an HMAC key too.
    derivation: Zeroizing<[u8; 32]>,
}

/// Why a master key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("cannot read the master key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the master key file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the master key file {path} does not hold a key: expected one line of base64 encoding \
         32 bytes"
    )]
    Malformed { path: PathBuf },
    #[error("no randomness for a new master key: {0}")]
    Randomness(String),
}

/// Sealing failed: AES-GCM refuses only inputs longer than 64 GiB, which no secret is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the secret could not be sealed")]
pub struct SealError;

/// Sealed bytes that did not open: a different master key, or bytes altered or moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sealed data does not open under this master key")]
pub struct OpenError;

impl MasterKey {
    /// A new random key.
    ///
    /// # Errors
    /// [`MasterKeyError::Randomness`] when the system has none to give.
    pub fn generate() -> Result<Self, MasterKeyError> {
        Ok(Self::from_bytes(&*random_key()?))
    }

    pub(crate) fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(bytes.into()),
            derivation: hmac(bytes, b"authlog master key derivation v1"),
        }
    }

    /// A 32-byte key for `purpose`, the same for the same master key and purpose: for keys
    /// that need not be stored at all, since whoever holds the master key can make them again
    /// (the checkpoint key).
    pub fn derive(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        hmac(self.derivation.as_slice(), purpose)
    }

    /// Reads the key in `path`.
    ///
    /// # Errors
    /// [`MasterKeyError`] when the file cannot be read or does not hold a key.
    pub fn read(path: &Path) -> Result<Self, MasterKeyError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            MasterKeyError::Read {
                path: path.to_owned(),
                source,
            }
        })?);
        let malformed = || MasterKeyError::Malformed {
            path: path.to_owned(),
        };
        let decoded = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| malformed())?);
        let bytes: Zeroizing<[u8; 32]> =
            Zeroizing::new(decoded.as_slice().try_into().map_err(|_| malformed())?);
        Ok(Self::from_bytes(&bytes))
    }

    /// Makes a new key and writes it to `path`, readable and writable by its owner only. The
    /// file must not exist: a key is never overwritten (the secrets sealed under it would be
    /// lost). Answers `None` when another process created the file first; read it then.
    ///
    /// The key is written and synced to a file of its own first, then linked in as `path`:
    /// another process never reads a key file half written, and of two racing, one wins.
    ///
    /// # Errors
    /// [`MasterKeyError`] when no key can be made or the file cannot be written.
    pub fn create(path: &Path) -> Result<Option<Self>, MasterKeyError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let create_error = |source| MasterKeyError::Create {
            path: path.to_owned(),
            source,
        };
        let bytes = random_key()?;
        let mut staging = path.as_os_str().to_owned();
        // A name of this call's own: racers may be threads of one process.
        staging.push(format!(".{:016x}.new", OsRng.next_u64()));
        let staging = PathBuf::from(staging);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&staging)
            .and_then(|mut file| {
                let line = Zeroizing::new(format!("{}\n", STANDARD.encode(bytes.as_slice())));
                // The key must be on disk before anything is sealed under it.
                file.write_all(line.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::hard_link(&staging, path));
        // The staging name goes whatever happened; `path` (if linked) keeps the file.
        let _ = std::fs::remove_file(&staging);
        match written {
            Ok(()) => Ok(Some(Self::from_bytes(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(create_error(e)),
        }
    }

    /// Seals `plaintext` for `purpose` (what it is and which row: it must be given again to
    /// open it).
    ///
    /// # Errors
    /// [`SealError`] for a plaintext beyond AES-GCM's limit.
    pub fn seal(&self, purpose: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose,
                },
            )
            .map_err(|_| SealError)?;
        let mut sealed = Vec::with_capacity(MAGIC.len() + NONCE + ciphertext.len());
        sealed.extend_from_slice(&MAGIC);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens what [`MasterKey::seal`] sealed for `purpose`.
    ///
    /// # Errors
    /// [`OpenError`] when `sealed` is not sealed, was sealed under another key or for another
    /// purpose, or was altered.
    pub fn open(&self, purpose: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if !is_sealed(sealed) || sealed.len() < MAGIC.len() + NONCE + TAG {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed[MAGIC.len()..].split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| OpenError)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError)
    }
}

/// 32 bytes from the system's randomness, wiped on drop.
pub(crate) fn random_key() -> Result<Zeroizing<[u8; 32]>, MasterKeyError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng
        .try_fill_bytes(bytes.as_mut())
        .map_err(|e| MasterKeyError::Randomness(e.to_string()))?;
    Ok(bytes)
}

/// Whether `bytes` are in the sealed format (as opposed to a secret an older release stored in
/// clear).
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_sealed_opens_under_the_same_key_and_purpose_only() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"signing key k1", b"secret").unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(
            key.open(b"signing key k1", &sealed).unwrap().as_slice(),
            b"secret"
        );
        assert_eq!(key.open(b"signing key k2", &sealed), Err(OpenError));
        let other = MasterKey::generate().unwrap();
        assert_eq!(other.open(b"signing key k1", &sealed), Err(OpenError));
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(b"signing key k1", &altered), Err(OpenError));
        assert_eq!(key.open(b"signing key k1", &sealed[..10]), Err(OpenError));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let key = MasterKey::generate().unwrap();
        assert_ne!(
            key.seal(b"p", b"same").unwrap(),
            key.seal(b"p", b"same").unwrap()
        );
    }

    #[test]
    fn a_pkcs8_document_is_never_taken_for_sealed_bytes() {
        // Every DER document starts with a SEQUENCE tag.
        assert!(!is_sealed(&[0x30, 0x2e, 0x02, 0x01]));
    }

    #[test]
    fn a_created_key_file_is_private_reads_back_and_is_never_overwritten() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authlog.key");
        let key = MasterKey::create(&path).unwrap().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = key.seal(b"p", b"secret").unwrap();
        let again = MasterKey::read(&path).unwrap();
        assert_eq!(again.open(b"p", &sealed).unwrap().as_slice(), b"secret");
        assert!(MasterKey::create(&path).unwrap().is_none());
        assert_eq!(again.open(b"p", &sealed).unwrap().as_slice(), b"secret");
    }

    #[test]
    fn of_racing_creations_one_wins_and_every_racer_then_reads_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authlog.key");
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let made = MasterKey::create(&path).unwrap();
                    let won = made.is_some();
                    let key = made.unwrap_or_else(|| MasterKey::read(&path).unwrap());
                    (key.seal(b"p", b"secret").unwrap(), won)
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|(_, won)| *won).count(), 1);
        let sealed: Vec<_> = results.into_iter().map(|(sealed, _)| sealed).collect();
        let key = MasterKey::read(&path).unwrap();
        for bytes in &sealed {
            assert_eq!(key.open(b"p", bytes).unwrap().as_slice(), b"secret");
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no staging file is left behind");
    }

    #[test]
    fn a_file_that_holds_no_key_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authlog.key");
        for text in ["", "not base64!", "c2hvcnQ=\n"] {
            std::fs::write(&path, text).unwrap();
            let error = MasterKey::read(&path).err().unwrap();
            assert!(
                matches!(error, MasterKeyError::Malformed { .. }),
                "{text:?}"
            );
            assert!(error.to_string().contains("authlog.key"));
        }
    }
}
