//! The name index (`usernames`): which account holds which name, and where its stream is.
//!
//! A registration claims its name in its own transaction (the writer, [`crate::rows::claim_name`]).
//! Accounts registered by releases before the index existed (or by one of them still running
//! during an upgrade) are indexed from their `Registered` events when the store opens:
//! [`index_registrations`].

use std::collections::HashSet;

use authlog_application::ports::{Account, StoreError};
use authlog_domain::username::{skeleton_of, SKELETON_RULE};
use authlog_domain::{Event, Personal, StreamId, UserId};

use crate::postgres::APPEND_LOCK;
use crate::rows::{to_i64, to_u64, RawEvent, COLUMNS};
use crate::sql::{Arg, Pool, Statement, Tx};

/// A `usernames` row as lookups read it.
#[derive(Debug, sqlx::FromRow)]
pub struct AccountRow {
    pub user_id: String,
    pub stream_id: String,
    pub registered_at: i64,
    pub legacy_subject: Option<String>,
}

impl AccountRow {
    pub fn account(self) -> Result<Account, StoreError> {
        let user_id = self.user_id.parse::<UserId>().map_err(|e| {
            StoreError::Corrupt(format!("usernames.user_id {:?}: {e}", self.user_id))
        })?;
        Ok(Account {
            user_id,
            stream: StreamId::from_stored(self.stream_id),
            registered_at: to_u64(self.registered_at)?,
            legacy_subject: self.legacy_subject,
        })
    }
}

/// The names and skeletons the index holds.
#[derive(Debug, sqlx::FromRow)]
struct Taken {
    canonical: Option<String>,
    skeleton: Option<String>,
}

/// A transaction ordered with every append and every other instance's start: SQLite's
/// `BEGIN IMMEDIATE` excludes every other writer; on PostgreSQL it takes the append lock.
async fn begin_ordered_with_appends(pool: &Pool) -> Result<Tx, StoreError> {
    let mut tx = pool.begin().await?;
    if matches!(pool, Pool::Postgres(_)) {
        tx.execute(&Statement::new(
            "SELECT pg_advisory_xact_lock(?)",
            vec![APPEND_LOCK.into()],
        ))
        .await?;
    }
    Ok(tx)
}

/// Indexes every account whose `Registered` comes after the newest one indexed: on the first
/// start of this release, every account; later, only those an older release registered in the
/// meantime (none, normally, at the cost of one index lookup). Answers how many it indexed.
///
/// An account of an older release keeps its stream (named after its canonical name under the
/// rule of that time) and the `subject` its events carry. Under today's identity rule two old
/// accounts can be one name (`straße` and `strasse`) or look alike: the first registered keeps
/// the name, the later one is indexed without it (it can no longer be found by name, only by
/// id, so its sessions keep working) and a warning names it for the operator to resolve.
///
/// # Errors
/// [`StoreError`] when the database fails or holds a `Registered` that does not decode.
pub async fn index_registrations(pool: &Pool) -> Result<usize, StoreError> {
    // A registration cannot commit between the read below and the inserts.
    let mut tx = begin_ordered_with_appends(pool).await?;
    let newest: Vec<(i64,)> = tx
        .fetch(&Statement::new(
            "SELECT COALESCE(MAX(registered_at), 0) FROM usernames",
            vec![],
        ))
        .await?;
    let after = newest.first().map_or(0, |(n,)| *n);
    let rows: Vec<RawEvent> = tx
        .fetch(&Statement::new(
            format!(
                "SELECT {COLUMNS} FROM events WHERE event_type = 'Registered' AND position > ? \
                 ORDER BY position"
            ),
            vec![after.into()],
        ))
        .await?;
    if rows.is_empty() {
        // Ends the transaction now, and with it the append lock it holds on PostgreSQL.
        tx.commit().await?;
        return Ok(0);
    }
    let taken: Vec<Taken> = tx
        .fetch(&Statement::new(
            "SELECT canonical, skeleton FROM usernames",
            vec![],
        ))
        .await?;
    let mut names: HashSet<String> = taken.iter().filter_map(|t| t.canonical.clone()).collect();
    let mut skeletons: HashSet<String> = taken.into_iter().filter_map(|t| t.skeleton).collect();
    let mut indexed = 0;
    for row in rows {
        if row.payload.contains("\"sealed\"") {
            // Sealed: this release wrote it, and indexed it in the same transaction.
            continue;
        }
        let recorded = row.decode()?;
        let Event::Registered(registered) = recorded.event else {
            continue;
        };
        let Personal::Known(username) = &registered.username else {
            continue;
        };
        let user_id = registered.user_id.to_string();
        let canonical = username.canonical().to_owned();
        let skeleton = username.skeleton();
        let name = names.insert(canonical.clone()).then_some(canonical);
        let look = skeletons.insert(skeleton.clone()).then_some(skeleton);
        if name.is_none() || look.is_none() {
            tracing::warn!(
                user_id,
                position = recorded.position,
                "an account registered by an older release is one name with, or looks like, an \
                 account registered before it under today's identity rule: indexed without its \
                 {}; it can be reached by its id only until an operator renames or erases one",
                if name.is_none() {
                    "name"
                } else {
                    "confusable skeleton"
                }
            );
        }
        let stream = recorded.stream_id;
        let legacy = (stream != StreamId::user(registered.user_id)).then_some(recorded.subject);
        indexed += tx
            .execute(&Statement::new(
                "INSERT INTO usernames \
                 (user_id, stream_id, canonical, skeleton, registered_at, legacy_subject) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO NOTHING",
                vec![
                    user_id.into(),
                    stream.as_str().into(),
                    Arg::from(name),
                    Arg::from(look),
                    to_i64(recorded.position)?.into(),
                    Arg::from(legacy.flatten()),
                ],
            ))
            .await?;
    }
    tx.commit().await?;
    Ok(usize::try_from(indexed).unwrap_or(usize::MAX))
}

/// A `usernames` row whose skeleton may be of an older rule.
#[derive(Debug, sqlx::FromRow)]
struct Skeleton {
    user_id: String,
    canonical: String,
    skeleton: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct RuleVersion {
    version: i64,
}

/// Takes every stored skeleton again from its canonical name when the index holds skeletons
/// of a rule older than [`SKELETON_RULE`], once (the version applied is kept in
/// `store_rules`); answers how many changed.
///
/// Two accounts can look alike under the new rule that did not under the old one (`ᴀdmin` and
/// `admin`, registered before small capitals were read as capitals). The account whose
/// skeleton the new rule leaves as it was keeps it, and so does the earlier registration; the
/// other keeps its old skeleton (so both go on working, and the new rule still refuses new
/// look-alikes of either) and a warning names it for the operator.
///
/// # Errors
/// [`StoreError`] when the database fails.
pub async fn reskeleton(pool: &Pool) -> Result<usize, StoreError> {
    let mut tx = begin_ordered_with_appends(pool).await?;
    let applied: Vec<RuleVersion> = tx
        .fetch(&Statement::new(
            "SELECT version FROM store_rules WHERE name = 'skeleton'",
            vec![],
        ))
        .await?;
    if applied
        .first()
        .is_some_and(|rule| rule.version >= SKELETON_RULE)
    {
        tx.commit().await?;
        return Ok(0);
    }
    let rows: Vec<Skeleton> = tx
        .fetch(&Statement::new(
            "SELECT user_id, canonical, skeleton FROM usernames WHERE canonical IS NOT NULL \
             ORDER BY registered_at",
            vec![],
        ))
        .await?;
    let fresh: Vec<String> = rows.iter().map(|row| skeleton_of(&row.canonical)).collect();
    // What stays as it was is kept first; then the changed ones, earliest first.
    let mut taken: HashSet<&str> = rows
        .iter()
        .zip(&fresh)
        .filter(|(row, new)| row.skeleton.as_deref() == Some(new.as_str()))
        .map(|(_, new)| new.as_str())
        .collect();
    let mut changes = Vec::new();
    for (row, new) in rows.iter().zip(&fresh) {
        if row.skeleton.as_deref() == Some(new.as_str()) {
            continue;
        }
        if taken.insert(new) {
            changes.push((row.user_id.as_str(), Some(new.clone())));
            continue;
        }
        tracing::warn!(
            user_id = row.user_id,
            "an account's name looks like an earlier account's under the new confusable rule \
             (small capitals read as capitals): it keeps its old skeleton, so both keep \
             working; an operator may want to rename or erase one"
        );
        let kept = row.skeleton.as_deref().filter(|old| taken.insert(old));
        changes.push((row.user_id.as_str(), kept.map(str::to_owned)));
    }
    // Cleared first, then set: a new skeleton may be one another row holds until its turn.
    for (user_id, _) in &changes {
        tx.execute(&Statement::new(
            "UPDATE usernames SET skeleton = NULL WHERE user_id = ?",
            vec![(*user_id).into()],
        ))
        .await?;
    }
    for (user_id, skeleton) in &changes {
        tx.execute(&Statement::new(
            "UPDATE usernames SET skeleton = ? WHERE user_id = ?",
            vec![Arg::from(skeleton.clone()), (*user_id).into()],
        ))
        .await?;
    }
    tx.execute(&Statement::new(
        "INSERT INTO store_rules (name, version) VALUES ('skeleton', ?) \
         ON CONFLICT (name) DO UPDATE SET version = excluded.version",
        vec![SKELETON_RULE.into()],
    ))
    .await?;
    tx.commit().await?;
    Ok(changes.len())
}
