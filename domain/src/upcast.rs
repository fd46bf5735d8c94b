//! Upcasters: each turns a stored payload of one schema version of an event type into the next
//! version's shape, when the row is read. Rows are never rewritten (the log is append-only and
//! hash-chained), so every upcaster stays here for as long as a database may hold its version.
//!
//! To change an event type's shape (other than by adding an optional field): raise its version
//! in [`Event::schema_version`](crate::Event::schema_version) and
//! [`Event::current_version`](crate::Event::current_version), add a step below from the old
//! version, and add a golden fixture of the new bytes as the new release stores them.

use serde_json::{Map, Value};

/// One step: the type, the version it reads, and the change that makes it the next version.
struct Step {
    event_type: &'static str,
    from: u32,
    apply: fn(&mut Map<String, Value>),
}

/// Every step, in no particular order: [`upcast`] finds the ones it needs.
const STEPS: &[Step] = &[
    Step {
        event_type: "LoggedIn",
        from: 1,
        // Version 1 held a copy of the username: personal data the user id already names.
        apply: |payload| {
            payload.remove("username");
        },
    },
    Step {
        event_type: "LoginFailed",
        from: 1,
        // Version 1 held the name typed, in clear; the check's stream and subject say whose it
        // was.
        apply: |payload| {
            payload.remove("username");
        },
    },
    Step {
        event_type: "Registered",
        from: 1,
        // Version 2 is stored with its personal fields sealed; once the store has opened them
        // it has version 1's shape.
        apply: |_| {},
    },
    Step {
        event_type: "PasswordChanged",
        from: 1,
        // As `Registered`.
        apply: |_| {},
    },
];

/// `payload`, stored as version `from` of `event_type`, in the shape of version `to`.
///
/// # Errors
/// When the payload is not a JSON object, or a step from some version on the way is missing
/// (a release that raised a version without adding its upcaster: a test catches it first).
pub fn upcast(
    event_type: &str,
    from: u32,
    to: u32,
    payload: Value,
) -> Result<Value, serde_json::Error> {
    use serde::de::Error;
    let Value::Object(mut fields) = payload else {
        return Err(serde_json::Error::custom(
            "the payload is not a JSON object",
        ));
    };
    for version in from..to {
        let step = STEPS
            .iter()
            .find(|step| step.event_type == event_type && step.from == version)
            .ok_or_else(|| {
                serde_json::Error::custom(format!("no upcaster from version {version}"))
            })?;
        (step.apply)(&mut fields);
    }
    Ok(Value::Object(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    #[test]
    fn every_version_below_the_current_one_of_every_type_has_a_step() {
        for &event_type in Event::TYPES {
            let current = Event::current_version(event_type).unwrap();
            for version in 1..current {
                assert!(
                    STEPS
                        .iter()
                        .any(|s| s.event_type == event_type && s.from == version),
                    "{event_type} has no upcaster from version {version}"
                );
            }
        }
        for step in STEPS {
            let current = Event::current_version(step.event_type).unwrap();
            assert!(
                step.from < current,
                "a step from {} {}",
                step.event_type,
                step.from
            );
        }
    }

    #[test]
    fn a_payload_that_is_not_an_object_is_an_error() {
        assert!(upcast("LoggedIn", 1, 2, Value::Null).is_err());
        assert!(upcast("LoggedIn", 1, 2, serde_json::json!([1])).is_err());
    }
}
