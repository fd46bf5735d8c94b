//! The contract on the application's in-memory store, which the use-case tests stand on: it
//! must behave as the databases do.

use std::sync::Arc;

use authlog_application::testing::InMemoryEventStore;

async fn fresh() -> (Arc<InMemoryEventStore>, ()) {
    (Arc::new(InMemoryEventStore::new()), ())
}

every_contract_test!(fresh: fresh());

#[tokio::test]
async fn of_twenty_concurrent_creations_of_one_stream_exactly_one_wins() {
    crate::contract::of_twenty_concurrent_creations_of_one_stream_exactly_one_wins(fresh().await.0)
        .await;
}

#[tokio::test]
async fn of_twenty_concurrent_claims_of_alike_names_exactly_one_wins() {
    crate::contract::of_twenty_concurrent_claims_of_alike_names_exactly_one_wins(fresh().await.0)
        .await;
}

#[tokio::test]
async fn positions_are_gap_free_and_increasing_across_concurrent_streams() {
    crate::contract::positions_are_gap_free_and_increasing_across_concurrent_streams(
        fresh().await.0,
    )
    .await;
}
