//! Signed checkpoints: taken over HTTP, checked by an independent Ed25519 implementation, and
//! the attacks on the database that only a checkpoint kept outside it shows.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{backend, only_admins_and_auditors, spawn_app, Backend, TestApp};
use crate::restart::cut_the_tail;

/// An app with an admin ("root") and a user ("alice") who logged in and out: its log ends with
/// `Revoked` (reason `logout`), then a later login.
async fn app_with_history() -> (TestApp, String) {
    let app = spawn_app().await;
    let admin = app.logged_in_with_role("root", "admin").await;
    let alice = app.registered_and_logged_in("alice").await;
    assert_eq!(
        app.delete("/logout", &alice.access).await.status(),
        StatusCode::OK
    );
    app.login("alice").await;
    (app, admin.access)
}

async fn checkpoint(app: &TestApp, token: &str) -> Value {
    let response = app.get("/audit/checkpoint", token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `authlog verify`, with `checkpoint` in a file when given: success, and stdout or stderr.
async fn verify(app: &TestApp, checkpoint: Option<&Value>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoint.json");
    let mut args = vec!["verify".to_owned()];
    if let Some(checkpoint) = checkpoint {
        std::fs::write(&file, checkpoint.to_string()).unwrap();
        args.extend(["--checkpoint".to_owned(), file.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = app.cli(&args).await;
    let said = if output.status.success() {
        String::from_utf8_lossy(&output.stdout).into_owned()
    } else {
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    (output.status.success(), said)
}

#[tokio::test]
async fn a_checkpoint_is_the_heads_hash_signed_with_the_published_key() {
    let (app, admin) = app_with_history().await;
    let taken = checkpoint(&app, &admin).await;
    let (head, hash): (i64, Vec<u8>) = app
        .fetch_one("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
        .await;
    assert_eq!(taken["position"], head);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(taken["hash"], hex.as_str());

    // Checked by the `cryptography` package's Ed25519, with the published key alone.
    let keys: Value = app
        .get_anonymous("/.well-known/authlog-checkpoint-keys.json")
        .await
        .json()
        .await
        .unwrap();
    let python = std::env::var("AUTHLOG_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import base64, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
checkpoint, keys = json.loads(sys.argv[1]), json.loads(sys.argv[2])
unpad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
key = next(k for k in keys["keys"] if k["kid"] == checkpoint["kid"])
message = "authlog-checkpoint.v1\n{position}\n{hash}\n{recorded_at}".format(**checkpoint)
Ed25519PublicKey.from_public_bytes(unpad(key["x"])).verify(
    unpad(checkpoint["signature"]), message.encode())
print("verified")
"#;
    let output = tokio::process::Command::new(&python)
        .args(["-c", script, &taken.to_string(), &keys.to_string()])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success() && output.stdout.starts_with(b"verified"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (intact, said) = verify(&app, Some(&taken)).await;
    assert!(intact, "{said}");
    assert!(
        said.contains(&format!("the checkpoint at position {head}")),
        "{said}"
    );
}

#[tokio::test]
async fn admins_and_auditors_take_checkpoints_and_no_one_else() {
    let (app, _) = app_with_history().await;
    let auditor = only_admins_and_auditors(&app, "/audit/checkpoint").await;
    checkpoint(&app, &auditor.access).await;
}

/// The attacker drops the guard, deletes the trailing events (the `Revoked` of a logout
/// among them) and puts the guard back: the chain that is left checks out, and only the
/// checkpoint says the tail is gone.
#[tokio::test]
async fn a_cut_tail_passes_the_chain_walk_and_fails_the_checkpoint() {
    let (app, admin) = app_with_history().await;
    let taken = checkpoint(&app, &admin).await;
    for sql in cut_the_tail(4) {
        app.execute(&sql).await;
    }
    let (intact, said) = verify(&app, None).await;
    assert!(intact, "without a checkpoint the cut does not show: {said}");
    let (intact, said) = verify(&app, Some(&taken)).await;
    let position = taken["position"].as_u64().unwrap();
    assert!(!intact);
    assert!(
        said.contains(&format!("no longer holds position {position}")),
        "{said}"
    );
}

/// The attacker turns the logout's `Revoked` into an admin's and recomputes every later hash:
/// the walk finds an intact chain; the checkpoint's hash no longer matches.
#[tokio::test]
async fn an_edit_rechained_to_the_head_passes_the_chain_walk_and_fails_the_checkpoint() {
    let (app, admin) = app_with_history().await;
    let taken = checkpoint(&app, &admin).await;
    let (edited,): (i64,) = app
        .fetch_one("SELECT position FROM events WHERE event_type = 'Revoked'")
        .await;
    rewrite_and_rechain(&app, edited, "\"logout\"", "\"admin\"").await;
    let (reason,): (String,) = app
        .fetch_one("SELECT payload FROM events WHERE event_type = 'Revoked'")
        .await;
    assert!(reason.contains("\"admin\""), "{reason}");

    let (intact, said) = verify(&app, None).await;
    assert!(intact, "re-chained, the walk finds nothing: {said}");
    let (intact, said) = verify(&app, Some(&taken)).await;
    let position = taken["position"].as_u64().unwrap();
    assert!(!intact);
    assert!(
        said.contains(&format!(
            "the log at position {position} is not what the checkpoint"
        )),
        "{said}"
    );
}

/// A checkpoint edited to name another position, one signed by another server's key (another
/// master key), or a file that is no checkpoint, is refused before the log is consulted.
#[tokio::test]
async fn an_altered_checkpoint_or_another_servers_is_refused() {
    let (app, admin) = app_with_history().await;
    let mut taken = checkpoint(&app, &admin).await;
    taken["position"] = Value::from(taken["position"].as_u64().unwrap() - 1);
    let (intact, said) = verify(&app, Some(&taken)).await;
    assert!(!intact);
    assert!(said.contains("signature does not verify"), "{said}");

    // Another server's names another key (its master key's); the black-box suite gives every
    // app on PostgreSQL one master key, so that one is made here.
    let mut theirs = checkpoint(&app, &admin).await;
    theirs["kid"] = Value::from("another servers key");
    let (intact, said) = verify(&app, Some(&theirs)).await;
    assert!(!intact);
    assert!(
        said.contains("not by this server's checkpoint key"),
        "{said}"
    );

    let (intact, said) = verify(&app, Some(&Value::from("not a checkpoint"))).await;
    assert!(!intact);
    assert!(said.contains("is not a checkpoint"), "{said}");
}

/// What an attacker with write access runs: the row at `position` edited (`from` → `to` in its
/// payload), and every hash from it to the head recomputed, with the guards off meanwhile.
async fn rewrite_and_rechain(app: &TestApp, position: i64, from: &str, to: &str) {
    use authlog_store::chain::{self, RowContent};
    type Row = (
        i64,
        String,
        i64,
        String,
        Option<String>,
        String,
        String,
        String,
        Option<i64>,
    );
    let (previous,): (Vec<u8>,) = app
        .fetch_one(&format!(
            "SELECT hash FROM events WHERE position = {}",
            position - 1
        ))
        .await;
    let rows: Vec<Row> = app
        .fetch_all(&format!(
            "SELECT position, stream_id, stream_version, event_type, subject, payload, metadata, \
             recorded_at, schema_version FROM events WHERE position >= {position} \
             ORDER BY position"
        ))
        .await;
    let (off, on) = match backend() {
        Backend::Sqlite => (
            vec!["DROP TRIGGER events_refuse_update".to_owned()],
            vec![
                "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events BEGIN \
                  SELECT RAISE(ABORT, 'events is append-only: UPDATE refused'); END"
                    .to_owned(),
            ],
        ),
        Backend::Postgres => (
            vec!["ALTER TABLE events DISABLE TRIGGER events_refuse_update".to_owned()],
            vec!["ALTER TABLE events ENABLE TRIGGER events_refuse_update".to_owned()],
        ),
    };
    for sql in off {
        app.execute(&sql).await;
    }
    let mut previous = previous;
    for row in rows {
        let payload = if row.0 == position {
            row.5.replace(from, to)
        } else {
            row.5.clone()
        };
        let hash = chain::link(
            &previous,
            &RowContent {
                position: u64::try_from(row.0).unwrap(),
                stream_id: &row.1,
                stream_version: u64::try_from(row.2).unwrap(),
                event_type: &row.3,
                subject: row.4.as_deref(),
                payload: &payload,
                metadata: &row.6,
                recorded_at: &row.7,
                schema_version: row.8.map(|v| u64::try_from(v).unwrap()),
            },
        );
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let literal = match backend() {
            Backend::Sqlite => format!("X'{hex}'"),
            Backend::Postgres => format!("'\\x{hex}'::bytea"),
        };
        app.execute(&format!(
            "UPDATE events SET payload = '{}', hash = {literal} WHERE position = {}",
            payload.replace('\'', "''"),
            row.0
        ))
        .await;
        previous = hash.to_vec();
    }
    for sql in on {
        app.execute(&sql).await;
    }
}
