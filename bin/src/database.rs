//! Opening the store a `--database-url` names, with the master key that seals its secrets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use authlog_application::ports::KeyStore;
use authlog_crypto::checkpoint_key::Ed25519CheckpointKey;
use authlog_crypto::master_key::is_sealed;
use authlog_crypto::sealed_keys::AdoptError;
use authlog_crypto::{ConcealedNames, DataKeys, MasterKey, SealedKeyStore};
use authlog_store::Store;

/// The master key file's name beside a SQLite database, when none is given.
pub const DEFAULT_MASTER_KEY_FILE: &str = "authlog.key";

/// Where the data lives: the database, and the master key that seals its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// `sqlite://PATH` or `postgres://...`.
    pub url: String,
    /// The master key file. `None`: [`DEFAULT_MASTER_KEY_FILE`] beside a SQLite database;
    /// PostgreSQL needs one named, since every instance must be given the same key.
    pub master_key_file: Option<PathBuf>,
}

impl Database {
    /// The database `url` names, with the default master key file.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            master_key_file: None,
        }
    }

    /// The same database, its master key in `path`.
    #[must_use]
    pub fn with_master_key_file(self, path: impl Into<PathBuf>) -> Self {
        Self {
            master_key_file: Some(path.into()),
            ..self
        }
    }
}

/// An opened database: the store, its signing keys sealed under the master key, the
/// concealer of names typed at password checks, whose keys are sealed alike, and the checkpoint
/// key the master key derives.
pub struct Opened {
    pub store: Arc<Store>,
    pub keys: Arc<SealedKeyStore>,
    pub names: Arc<ConcealedNames>,
    pub checkpoint_key: Arc<Ed25519CheckpointKey>,
}

/// Opens the store `database` names (`sqlite://PATH` or `postgres://...`), creating the SQLite
/// file and applying migrations as needed; then reads the master key (made on a first start),
/// checks that it opens the signing keys sealed before, seals those an older release stored in
/// clear, and starts the store with the users' data keys under it (building the read models).
///
/// # Errors
/// An unsupported scheme; a database that cannot be reached, opened or migrated; a master key
/// file that is missing (on a database whose secrets are sealed), unreadable or malformed; or
/// a master key that is not the database's.
pub async fn open(database: &Database) -> anyhow::Result<Opened> {
    let url = &database.url;
    let supported = url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://");
    if !supported {
        let scheme = url
            .split_once(':')
            .map_or(url.as_str(), |(scheme, _)| scheme);
        bail!("unsupported database URL scheme {scheme:?}: use sqlite://PATH or postgres://...");
    }
    let store = Arc::new(
        Store::connect(url)
            .await
            .context("cannot open the event store")?,
    );
    let path = match (&database.master_key_file, store.sqlite_file()) {
        (Some(path), _) => path.clone(),
        (None, Some(file)) => file.with_file_name(DEFAULT_MASTER_KEY_FILE),
        (None, None) => bail!(
            "no master key file: give one with --master-key-file or AUTHLOG_MASTER_KEY_FILE \
             (on PostgreSQL every instance must be given the same key)"
        ),
    };
    let master = Arc::new(master_key(&path, store.as_ref()).await?);
    let keys = Arc::new(SealedKeyStore::new(store.clone(), master.clone()));
    let checkpoint_key = Arc::new(Ed25519CheckpointKey::new(&master));
    let names = Arc::new(ConcealedNames::new(store.clone(), master.clone()));
    let sealed = keys.adopt().await.map_err(|e| match e {
        AdoptError::WrongMasterKey(e) => {
            anyhow!(e).context(format!("wrong master key file {}", path.display()))
        }
        AdoptError::Store(e) => anyhow!(e).context("cannot read or seal the signing keys"),
    })?;
    if sealed > 0 {
        tracing::info!(
            keys = sealed,
            master_key_file = %path.display(),
            "sealed the signing keys an older release stored in clear"
        );
    }
    // Only now, with the master key checked: the read models are built from the log, whose
    // personal data opens with the users' keys, sealed under it.
    store
        .start(Arc::new(DataKeys::new(master)))
        .await
        .context("cannot open the event store")?;
    Ok(Opened {
        store,
        keys,
        names,
        checkpoint_key,
    })
}

/// The master key in `path`, made there if the file does not exist and nothing in the database
/// is sealed yet (a first start). A database whose secrets are sealed never gets a new key:
/// they would be lost.
async fn master_key(path: &Path, keys: &dyn KeyStore) -> anyhow::Result<MasterKey> {
    if path.exists() {
        // It opens every secret in the database: as private as the database files are.
        authlog_store::sqlite::keep_private(path, "master key file");
        return Ok(MasterKey::read(path)?);
    }
    let stored = keys
        .signing_keys()
        .await
        .context("cannot read the signing keys")?;
    if stored.iter().any(|key| is_sealed(&key.private_der)) {
        bail!(
            "the master key file {} does not exist, and this database's secrets are sealed \
             under a master key: give its file with --master-key-file",
            path.display()
        );
    }
    match MasterKey::create(path)? {
        Some(key) => {
            tracing::info!(master_key_file = %path.display(), "made a new master key");
            Ok(key)
        }
        // Another process made it first: use theirs.
        None => Ok(MasterKey::read(path)?),
    }
}
