//! What an append writes besides its events, in its transaction (the application's
//! `Beside`): each kind's statements written here once, for both databases
//! ([`Statement`]s, which the writers' transactions run alike), by one function, [`write`],
//! that both writers call.
//!
//! A new kind is a variant of `Beside` in the application's port, its prepared form here
//! ([`Written`]: secrets sealed, times formatted), and its statements in [`statements`].

use authlog_application::ports::{AppendError, Appended, NameClaim, SigningKey, StoreError};

use crate::rows::{format_timestamp, to_i64};
use crate::sql::{Arg, Executes, Statement};

/// A `Beside` ready to be written: a secret sealed under its owner's data key, times in the
/// column format, ids as text.
pub enum Written {
    ClaimName(NameClaim),
    EraseUser(String),
    AddSigningKey(SigningKey),
    RevokeSigningKey {
        kid: String,
        at: String,
        tombstone: Vec<u8>,
        replacement: SigningKey,
    },
    PutSecret {
        user_id: String,
        kind: &'static str,
        id: String,
        sealed: Vec<u8>,
    },
    DeleteSecret {
        user_id: String,
        kind: &'static str,
        id: String,
    },
}

/// How the outcome of one statement is read.
enum Expect {
    /// Whatever it changed.
    Anything,
    /// One row, or the name (or its skeleton) is taken: the whole request is undone.
    NameClaimed,
}

/// Writes everything of `beside`, its request's events at `appended`, in `tx`. Answers the
/// refusal when one undoes the request (a claimed name): the caller then rolls the transaction
/// back. The writers commit such a request alone ([`crate::writer::AppendRequest::alone`]), so
/// undoing it undoes nobody else's.
///
/// # Errors
/// [`StoreError`] when the database fails.
pub async fn write(
    tx: &mut impl Executes,
    beside: &[Written],
    appended: Appended,
) -> Result<Result<(), AppendError>, StoreError> {
    let registered_at = to_i64(appended.first)?;
    for written in beside {
        for (statement, expect) in statements(written, registered_at) {
            let changed = tx.run(&statement).await?;
            if matches!(expect, Expect::NameClaimed) && changed == 0 {
                return Ok(Err(AppendError::NameTaken));
            }
        }
    }
    Ok(Ok(()))
}

/// The statements of `written`, the request's first event at `registered_at`.
fn statements(written: &Written, registered_at: i64) -> Vec<(Statement, Expect)> {
    let anything = |sql: &str, args: Vec<Arg>| (Statement::new(sql, args), Expect::Anything);
    match written {
        // Changes no row when the canonical name or the skeleton is taken (by a unique index,
        // so also against a claim that commits first elsewhere): the registration is undone.
        Written::ClaimName(claim) => vec![(
            Statement::new(
                "INSERT INTO usernames (user_id, stream_id, canonical, skeleton, registered_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![
                    claim.user_id.to_string().into(),
                    claim.stream.as_str().into(),
                    claim.canonical.as_str().into(),
                    claim.skeleton.as_str().into(),
                    registered_at.into(),
                ],
            ),
            Expect::NameClaimed,
        )],
        // Their data key destroyed (the row kept, its key NULL: an erased user is never given
        // a new one), their name freed (the index keeps the account, by id, without a name),
        // and their secrets deleted (unreadable without the key already; on SQLite,
        // `secure_delete` zeroes them in the file).
        Written::EraseUser(user_id) => vec![
            anything(
                "INSERT INTO user_keys (user_id, sealed_key) VALUES (?, NULL) \
                 ON CONFLICT (user_id) DO UPDATE SET sealed_key = NULL",
                vec![user_id.as_str().into()],
            ),
            anything(
                "UPDATE usernames SET canonical = NULL, skeleton = NULL WHERE user_id = ?",
                vec![user_id.as_str().into()],
            ),
            anything(
                "DELETE FROM user_secrets WHERE user_id = ?",
                vec![user_id.as_str().into()],
            ),
        ],
        Written::AddSigningKey(key) => vec![insert_key(key)],
        // Its private key erased, its public key replaced by the tombstone, its row kept; a
        // key already revoked keeps its first revocation.
        Written::RevokeSigningKey {
            kid,
            at,
            tombstone,
            replacement,
        } => vec![
            anything(
                "UPDATE signing_keys SET private_key = ?, public_key = ?, revoked_at = ? \
                 WHERE kid = ? AND revoked_at IS NULL",
                vec![
                    Vec::new().into(),
                    tombstone.clone().into(),
                    at.as_str().into(),
                    kid.as_str().into(),
                ],
            ),
            insert_key(replacement),
        ],
        Written::PutSecret {
            user_id,
            kind,
            id,
            sealed,
        } => vec![anything(
            "INSERT INTO user_secrets (user_id, kind, id, sealed) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id, kind, id) DO UPDATE SET sealed = excluded.sealed",
            vec![
                user_id.as_str().into(),
                (*kind).into(),
                id.as_str().into(),
                sealed.clone().into(),
            ],
        )],
        Written::DeleteSecret { user_id, kind, id } => vec![anything(
            "DELETE FROM user_secrets WHERE user_id = ? AND kind = ? AND id = ?",
            vec![user_id.as_str().into(), (*kind).into(), id.as_str().into()],
        )],
    }
}

/// The insert of `key`.
fn insert_key(key: &SigningKey) -> (Statement, Expect) {
    (
        Statement::new(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at) \
             VALUES (?, ?, ?, ?, ?)",
            vec![
                key.kid.as_str().into(),
                key.algorithm.as_str().into(),
                key.private_der.clone().into(),
                key.public_key.clone().into(),
                format_timestamp(key.created_at).into(),
            ],
        ),
        Expect::Anything,
    )
}
