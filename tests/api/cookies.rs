//! Tokens in cookies, with the CSRF double submit (Flask-JWT-Extended's names and messages).

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::json;

use authlog::cli::ServeArgs;

use crate::helpers::{
    assert_unauthorized, spawn_app, spawn_app_with, test_args, TestApp, PASSWORD,
};

/// The `Set-Cookie` headers of a response, by cookie name.
fn set_cookies(response: &Response) -> Vec<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let line = v.to_str().unwrap().to_owned();
            let name = line.split('=').next().unwrap().to_owned();
            (name, line)
        })
        .collect()
}

fn value<'a>(cookies: &'a [(String, String)], name: &str) -> &'a str {
    let line = &cookies
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1;
    line.split(';').next().unwrap().split_once('=').unwrap().1
}

async fn cookie_login(app: &TestApp) -> Vec<(String, String)> {
    app.register("alice").await;
    let response = app
        .post_json(
            "/login",
            json!({"username": "alice", "password": PASSWORD, "set_cookies": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    set_cookies(&response)
}

fn jar(cookies: &[(String, String)]) -> String {
    cookies
        .iter()
        .map(|(name, _)| format!("{name}={}", value(cookies, name)))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn login_with_set_cookies_sets_the_four_cookies_with_safe_attributes() {
    let app = spawn_app().await;
    let cookies = cookie_login(&app).await;
    let names: Vec<&str> = cookies.iter().map(|(n, _)| n.as_str()).collect();
    for name in [
        "access_token_cookie",
        "refresh_token_cookie",
        "csrf_access_token",
        "csrf_refresh_token",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for (name, line) in &cookies {
        assert!(line.contains("SameSite=Lax"), "{line}");
        assert!(line.contains("Secure"), "{line}");
        assert!(line.contains("Path=/"), "{line}");
        let http_only = line.contains("HttpOnly");
        assert_eq!(http_only, name.ends_with("_cookie"), "{line}");
    }
}

#[tokio::test]
async fn login_without_set_cookies_sets_none() {
    let app = spawn_app().await;
    app.register("alice").await;
    let response = app
        .post_json("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert!(set_cookies(&response).is_empty());
}

#[tokio::test]
async fn a_cookie_authenticates_a_get_without_csrf() {
    let app = spawn_app().await;
    let cookies = cookie_login(&app).await;
    let response = app
        .client
        .get(app.url("/protected"))
        .header(COOKIE, jar(&cookies))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cookie_authenticated_post_needs_the_matching_csrf_header() {
    let app = spawn_app().await;
    let cookies = cookie_login(&app).await;
    let missing = app
        .client
        .post(app.url("/logout"))
        .header(COOKIE, jar(&cookies))
        .send()
        .await
        .unwrap();
    assert_unauthorized(missing, "Missing CSRF token").await;
    let wrong = app
        .client
        .delete(app.url("/logout"))
        .header(COOKIE, jar(&cookies))
        .header("X-CSRF-TOKEN", "guessed")
        .send()
        .await
        .unwrap();
    assert_unauthorized(wrong, "CSRF double submit tokens do not match").await;
    // The refresh CSRF value does not open access-token requests.
    let crossed = app
        .client
        .delete(app.url("/logout"))
        .header(COOKIE, jar(&cookies))
        .header("X-CSRF-TOKEN", value(&cookies, "csrf_refresh_token"))
        .send()
        .await
        .unwrap();
    assert_unauthorized(crossed, "CSRF double submit tokens do not match").await;

    let right = app
        .client
        .delete(app.url("/logout"))
        .header(COOKIE, jar(&cookies))
        .header("X-CSRF-TOKEN", value(&cookies, "csrf_access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    // Logout clears all four cookies.
    let cleared = set_cookies(&right);
    assert_eq!(cleared.len(), 4);
    assert!(
        cleared.iter().all(|(_, line)| line.contains("Max-Age=0")),
        "{cleared:?}"
    );
}

/// `POST /refresh` with the login's cookies and its refresh CSRF value, as a browser sends it.
async fn refresh_by_cookie(app: &TestApp, cookies: &[(String, String)]) -> Response {
    app.client
        .post(app.url("/refresh"))
        .header(COOKIE, jar(cookies))
        .header("X-CSRF-TOKEN", value(cookies, "csrf_refresh_token"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn refresh_by_cookie_answers_with_new_cookies() {
    let app = spawn_app().await;
    let cookies = cookie_login(&app).await;
    let response = refresh_by_cookie(&app, &cookies).await;
    assert_eq!(response.status(), StatusCode::OK);
    let renewed = set_cookies(&response);
    assert_eq!(renewed.len(), 4);
    assert_ne!(
        value(&renewed, "refresh_token_cookie"),
        value(&cookies, "refresh_token_cookie")
    );
    let with_new = app
        .client
        .get(app.url("/protected"))
        .header(COOKIE, jar(&renewed))
        .send()
        .await
        .unwrap();
    assert_eq!(with_new.status(), StatusCode::OK);
}

/// A refresh by cookie retried within the reuse grace (a second tab, a lost response) sets
/// the very cookies the first answer set: the same tokens and the same CSRF values.
#[tokio::test]
async fn a_cookie_refresh_retried_within_the_reuse_grace_sets_the_same_cookies() {
    let app = spawn_app_with(ServeArgs {
        refresh_reuse_grace: 10,
        ..test_args()
    })
    .await;
    let cookies = cookie_login(&app).await;
    let refresh = || async {
        let response = refresh_by_cookie(&app, &cookies).await;
        assert_eq!(response.status(), StatusCode::OK);
        // The headers come in no fixed order.
        let mut cookies = set_cookies(&response);
        cookies.sort();
        cookies
    };
    let first = refresh().await;
    let again = refresh().await;
    assert_eq!(first.len(), 4);
    assert_eq!(again, first);
}

#[tokio::test]
async fn garbage_cookies_are_401_json_not_500() {
    let app = spawn_app().await;
    for cookie in [
        "access_token_cookie=garbage",
        "access_token_cookie=",
        "===; ;;",
        "access_token_cookie=%%%; x",
    ] {
        let response = app
            .client
            .get(app.url("/protected"))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cookie:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["msg"].is_string());
    }
}

/// The hardened options: `__Host-` names (no subdomain can plant or shadow them) and a refresh
/// cookie sent only to `/refresh` (named `__Secure-`, since `__Host-` requires `Path=/`).
#[tokio::test]
async fn host_prefixed_names_and_a_refresh_cookie_only_for_refresh_work_end_to_end() {
    let app = spawn_app_with(ServeArgs {
        cookie_host_prefix: true,
        refresh_cookie_path_only: true,
        ..test_args()
    })
    .await;
    let cookies = cookie_login(&app).await;
    let expected = [
        ("__Host-access_token_cookie", "Path=/;", true),
        ("__Secure-refresh_token_cookie", "Path=/refresh;", true),
        ("__Host-csrf_access_token", "Path=/;", false),
        ("__Host-csrf_refresh_token", "Path=/;", false),
    ];
    assert_eq!(cookies.len(), 4);
    for (name, path, http_only) in expected {
        let line = &cookies.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(line.contains(path) && line.contains("Secure"), "{line}");
        assert_eq!(line.contains("HttpOnly"), http_only, "{line}");
    }

    let access = format!(
        "__Host-access_token_cookie={}",
        value(&cookies, "__Host-access_token_cookie")
    );
    let protected = app
        .client
        .get(app.url("/protected"))
        .header(COOKIE, &access)
        .send()
        .await
        .unwrap();
    assert_eq!(protected.status(), StatusCode::OK);
    // The Flask-JWT-Extended name is not read in this mode.
    let plain = access.replacen("__Host-", "", 1);
    let refused = app
        .client
        .get(app.url("/protected"))
        .header(COOKIE, plain)
        .send()
        .await
        .unwrap();
    assert_unauthorized(refused, "Missing Authorization Header").await;

    let refresh = format!(
        "__Secure-refresh_token_cookie={}",
        value(&cookies, "__Secure-refresh_token_cookie")
    );
    let refreshed = app
        .client
        .post(app.url("/refresh"))
        .header(COOKIE, refresh)
        .header("X-CSRF-TOKEN", value(&cookies, "__Host-csrf_refresh_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);

    // Logout expires each cookie at the path it was set with, or the browser would keep it.
    let logout = app
        .client
        .post(app.url("/logout"))
        .header(COOKIE, &access)
        .header("X-CSRF-TOKEN", value(&cookies, "__Host-csrf_access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    let cleared = set_cookies(&logout);
    for (name, path, _) in expected {
        let line = &cleared.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(line.contains(path) && line.contains("Max-Age=0"), "{line}");
    }
}

#[tokio::test]
async fn host_prefixed_cookies_without_secure_are_refused_at_start() {
    let args = ServeArgs {
        cookie_host_prefix: true,
        cookie_secure: false,
        ..test_args()
    };
    let (database_url, _dir) = crate::helpers::fresh_database_url().await;
    let refused = authlog::server::Server::start(&crate::helpers::database(&database_url), &args)
        .await
        .err()
        .unwrap();
    assert!(
        refused
            .to_string()
            .contains("--cookie-host-prefix needs --cookie-secure"),
        "{refused}"
    );
}
