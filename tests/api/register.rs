use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, TestApp, PASSWORD};

#[tokio::test]
async fn register_answers_201_with_the_templates_message() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/register",
            json!({"username": "testuser", "password": "testpass"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"msg": "User registered successfully"}));
}

#[tokio::test]
async fn registering_a_taken_name_is_409_even_in_another_case() {
    let app = spawn_app().await;
    assert_eq!(app.register("alice").await, StatusCode::CREATED);
    let again = app
        .post_json(
            "/register",
            json!({"username": "ALICE", "password": PASSWORD}),
        )
        .await;
    assert_error(again, StatusCode::CONFLICT, "Username already exists").await;
}

#[tokio::test]
async fn a_unicode_look_alike_of_a_taken_name_is_409() {
    let app = spawn_app().await;
    assert_eq!(app.register("alice").await, StatusCode::CREATED);
    // Fullwidth letters normalise (NFKC) to plain ASCII.
    let lookalike = app
        .post_json(
            "/register",
            json!({"username": "ａｌｉｃｅ", "password": PASSWORD}),
        )
        .await;
    assert_error(lookalike, StatusCode::CONFLICT, "Username already exists").await;
}

#[tokio::test]
async fn missing_fields_are_400() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"username": "bob"}),
        json!({"password": PASSWORD}),
        json!({"username": "", "password": ""}),
    ] {
        let response = app.post_json("/register", body).await;
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            "Missing username or password",
        )
        .await;
    }
}

#[tokio::test]
async fn badly_shaped_usernames_and_passwords_are_400_with_the_reason() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "has space", "password": PASSWORD}),
            "username may only contain letters, digits and . _ - @ (found ' ')",
        ),
        (
            json!({"username": "a".repeat(65), "password": PASSWORD}),
            "username must be at most 64 characters",
        ),
        (
            json!({"username": "bob", "password": "short"}),
            "password must be at least 8 characters",
        ),
        (
            json!({"username": "bob", "password": "x".repeat(1025)}),
            "password must be at most 1024 bytes",
        ),
        // Eight bytes, but four characters: the minimum counts characters, as the schema's
        // minLength does.
        (
            json!({"username": "bob", "password": "éééé"}),
            "password must be at least 8 characters",
        ),
        // 600 characters, but 1200 bytes: the maximum counts bytes.
        (
            json!({"username": "bob", "password": "é".repeat(600)}),
            "password must be at most 1024 bytes",
        ),
        // Letters beyond the Basic Multilingual Plane are outside the published pattern.
        (
            json!({"username": "𝐀lice", "password": PASSWORD}),
            "username may only contain letters, digits and . _ - @ (found '𝐀')",
        ),
    ];
    for (body, msg) in cases {
        assert_error(
            app.post_json("/register", body).await,
            StatusCode::BAD_REQUEST,
            msg,
        )
        .await;
    }
}

/// Registers each of `names` at once, twenty requests in all (the names in turn); answers how
/// many were created and how many refused as taken.
async fn race_registrations(app: &TestApp, names: &[&'static str]) -> (usize, usize) {
    let attempts = (0..20).map(|i| {
        let client = app.client.clone();
        let url = app.url("/register");
        let name = names[i % names.len()];
        async move {
            client
                .post(url)
                .json(&json!({"username": name, "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    (count(StatusCode::CREATED), count(StatusCode::CONFLICT))
}

#[tokio::test]
async fn twenty_concurrent_registrations_of_one_name_give_exactly_one_201() {
    let app = spawn_app().await;
    // Different spellings of one name, to race the case-insensitive check as well.
    assert_eq!(race_registrations(&app, &["racer", "RACER"]).await, (1, 19));
    assert_eq!(app.events_of_type("Registered").await.len(), 1);
}

#[tokio::test]
async fn full_case_folding_makes_strasse_and_strasse_with_a_sharp_s_one_account() {
    let app = spawn_app().await;
    assert_eq!(app.register("straße").await, StatusCode::CREATED);
    for other in ["STRASSE", "Strasse", "strasse"] {
        let again = app
            .post_json(
                "/register",
                json!({"username": other, "password": PASSWORD}),
            )
            .await;
        assert_error(again, StatusCode::CONFLICT, "Username already exists").await;
    }
    // Any spelling logs in to the one account.
    let tokens = app.login("STRASSE").await;
    let me: Value = app.get("/me", &tokens.access).await.json().await.unwrap();
    assert_eq!(me["username"], "straße");
}

#[tokio::test]
async fn a_name_confusable_with_a_taken_one_is_409() {
    let app = spawn_app().await;
    assert_eq!(app.register("admin").await, StatusCode::CREATED);
    assert_eq!(app.register("paypal").await, StatusCode::CREATED);
    // Cyrillic а; Cyrillic а and і; a digit one for an l; the small capitals ᴀ and ʟ.
    for lookalike in [
        "\u{430}dmin",
        "\u{430}dm\u{456}n",
        "paypa1",
        "\u{1d00}dmin",
        "p\u{1d00}ypal",
        "paypa\u{29f}",
    ] {
        let refused = app
            .post_json(
                "/register",
                json!({"username": lookalike, "password": PASSWORD}),
            )
            .await;
        assert_error(refused, StatusCode::CONFLICT, "Username already exists").await;
    }
    assert_eq!(app.events_of_type("Registered").await.len(), 2);
    // A name that only shares letters is not refused.
    assert_eq!(app.register("admins").await, StatusCode::CREATED);
    // And the other way round: the plain name after its small-capital look-alike.
    assert_eq!(app.register("\u{280}oot").await, StatusCode::CREATED);
    assert_eq!(app.register("root").await, StatusCode::CONFLICT);
}

#[tokio::test]
async fn twenty_concurrent_registrations_of_confusable_names_give_exactly_one_201() {
    let app = spawn_app().await;
    // Four different names (four canonical forms, so four claims that do not collide on the
    // name) that look alike: Latin o, and Cyrillic о in either place or both.
    let names = ["root", "r\u{43e}ot", "ro\u{43e}t", "r\u{43e}\u{43e}t"];
    assert_eq!(race_registrations(&app, &names).await, (1, 19));
    // Counted in the log: one account, and no registration half-written by a loser.
    assert_eq!(app.events_of_type("Registered").await.len(), 1);
}
