//! The store's tests. `contract` holds the behaviour every store must have, written against the
//! ports alone; `memory`, `sqlite` and `postgres` run it on the application's in-memory store
//! and on each database, and add what only that database can show (triggers, hash chain,
//! verification, files).

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The users' data keys every store of this test run is started with: one master key for the
/// run, so that a database opened twice opens its keys both times.
pub fn personal() -> std::sync::Arc<dyn authlog_application::ports::PersonalData> {
    static MASTER: std::sync::OnceLock<std::sync::Arc<authlog_crypto::MasterKey>> =
        std::sync::OnceLock::new();
    let master =
        MASTER.get_or_init(|| std::sync::Arc::new(authlog_crypto::MasterKey::generate().unwrap()));
    std::sync::Arc::new(authlog_crypto::DataKeys::new(master.clone()))
}

/// One test of contract function `$name` on a fresh store from `$fresh`, with `$attrs`.
macro_rules! contract_test {
    ([$(#[$attr:meta])*], $fresh:expr, $name:ident) => {
        $(#[$attr])*
        #[tokio::test]
        async fn $name() {
            let (store, _keep) = $fresh.await;
            crate::contract::$name(store.as_ref()).await;
        }
    };
}

/// Defines one test per contract function, each on a fresh store from `$fresh`.
macro_rules! contract_tests {
    ($attrs:tt fresh: $fresh:expr; $($name:ident),* $(,)?) => {
        $(contract_test!($attrs, $fresh, $name);)*
    };
}

/// The contract functions that take one store.
macro_rules! every_contract_test {
    ($(#[$attr:meta])* fresh: $fresh:expr) => {
        contract_tests!(
            [$(#[$attr])*] fresh: $fresh;
            appended_events_read_back_in_order_with_everything_they_carried,
            a_stream_that_does_not_exist_reads_empty,
            a_wrong_expected_version_is_a_typed_conflict_and_writes_nothing,
            the_right_expected_version_appends,
            read_all_pages_by_position,
            read_after_reads_only_the_types_asked_for,
            an_event_of_a_type_this_release_does_not_know_reads_back_as_unknown,
            an_append_across_streams_is_all_or_nothing,
            personal_data_reads_back_open_until_the_user_is_erased,
            a_part_without_events_is_a_condition_on_its_stream,
            a_signing_key_is_stored_with_its_event_or_not_at_all,
            a_revoked_key_keeps_its_place_without_its_material_and_its_replacement_follows,
            a_private_key_is_replaced_only_where_it_is_still_as_expected,
            read_stream_tail_answers_the_last_events_oldest_first,
            read_stream_edges_answers_the_first_and_the_last_events,
            a_snapshot_is_kept_unless_a_newer_one_is_and_the_events_after_it_read_back,
            a_subscriber_checkpoint_is_leased_to_one_holder_at_a_time_and_moved_by_it,
            a_users_secrets_commit_with_events_read_back_open_and_go_with_the_user,
            query_filters_by_subject_type_time_and_pages_by_position,
            live_sessions_show_their_device_and_leave_out_revoked_and_expired_ones,
            sessions_revoked_ends_the_sessions_opened_before_it_but_the_spared_one,
            recent_revocations_are_those_recorded_since_a_time,
            the_directory_lists_users_by_registration_with_roles_and_last_login,
            a_narrow_and_a_wide_prefix_page_alike,
            every_projection_reaches_the_head,
        );
    };
}

mod contract;
mod memory;
mod postgres;
mod sqlite;
