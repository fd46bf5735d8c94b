//! The token cookies, with Flask-JWT-Extended's names.

use std::time::Duration;

use authlog_application::TokenPair;
use poem::web::cookie::{Cookie, CookieJar, SameSite};

pub const ACCESS_COOKIE: &str = "access_token_cookie";
pub const REFRESH_COOKIE: &str = "refresh_token_cookie";
pub const ACCESS_CSRF_COOKIE: &str = "csrf_access_token";
pub const REFRESH_CSRF_COOKIE: &str = "csrf_refresh_token";

/// How cookies are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieSettings {
    /// `Secure` on every cookie: on by default; off only for plain-HTTP development.
    pub secure: bool,
}

impl Default for CookieSettings {
    fn default() -> Self {
        Self { secure: true }
    }
}

/// Sets the four cookies for `pair`: the tokens HttpOnly (scripts cannot read them), the CSRF
/// values readable (scripts must echo them in `X-CSRF-TOKEN`), all SameSite=Lax.
pub fn set_token_cookies(jar: &CookieJar, pair: &TokenPair, settings: CookieSettings) {
    let access_life = seconds(pair.expires_in);
    let refresh_life = seconds(pair.refresh_expires_in);
    jar.add(cookie(
        ACCESS_COOKIE,
        &pair.access_token,
        access_life,
        true,
        settings,
    ));
    jar.add(cookie(
        REFRESH_COOKIE,
        &pair.refresh_token,
        refresh_life,
        true,
        settings,
    ));
    if let Some(csrf) = &pair.access_csrf {
        jar.add(cookie(
            ACCESS_CSRF_COOKIE,
            csrf,
            access_life,
            false,
            settings,
        ));
    }
    if let Some(csrf) = &pair.refresh_csrf {
        jar.add(cookie(
            REFRESH_CSRF_COOKIE,
            csrf,
            refresh_life,
            false,
            settings,
        ));
    }
}

/// Expires all four cookies in the browser (whether or not this request carried them).
pub fn clear_token_cookies(jar: &CookieJar, settings: CookieSettings) {
    for (name, http_only) in [
        (ACCESS_COOKIE, true),
        (REFRESH_COOKIE, true),
        (ACCESS_CSRF_COOKIE, false),
        (REFRESH_CSRF_COOKIE, false),
    ] {
        jar.add(cookie(name, "", Duration::ZERO, http_only, settings));
    }
}

fn seconds(value: i64) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(0))
}

fn cookie(
    name: &str,
    value: &str,
    max_age: Duration,
    http_only: bool,
    settings: CookieSettings,
) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_path("/");
    cookie.set_http_only(http_only);
    cookie.set_secure(settings.secure);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_max_age(max_age);
    cookie
}
