//! The token cookies, with Flask-JWT-Extended's names (optionally `__Host-` prefixed, and the
//! refresh cookie optionally limited to `/refresh`).

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
    /// Prefix the names with `__Host-`: the browser then accepts the cookies only from this
    /// exact host over HTTPS, with `Path=/` and no `Domain`, so a sibling subdomain cannot
    /// plant or shadow them. Off by default: the names are Flask-JWT-Extended's.
    pub host_prefix: bool,
    /// Send the refresh token cookie only to `/refresh` (`Path=/refresh`), so that no other
    /// request carries it. Off by default (`Path=/`, as Flask-JWT-Extended sets it).
    pub refresh_path_only: bool,
}

impl Default for CookieSettings {
    fn default() -> Self {
        Self {
            secure: true,
            host_prefix: false,
            refresh_path_only: false,
        }
    }
}

impl CookieSettings {
    /// The access token cookie's name.
    pub fn access_name(self) -> &'static str {
        if self.host_prefix {
            "__Host-access_token_cookie"
        } else {
            ACCESS_COOKIE
        }
    }

    /// The refresh token cookie's name. `__Host-` requires `Path=/`, so a refresh cookie
    /// limited to `/refresh` takes `__Secure-` (HTTPS only, set by this host) instead.
    pub fn refresh_name(self) -> &'static str {
        match (self.host_prefix, self.refresh_path_only) {
            (false, _) => REFRESH_COOKIE,
            (true, false) => "__Host-refresh_token_cookie",
            (true, true) => "__Secure-refresh_token_cookie",
        }
    }

    fn refresh_path(self) -> &'static str {
        if self.refresh_path_only {
            "/refresh"
        } else {
            "/"
        }
    }

    fn csrf_names(self) -> (&'static str, &'static str) {
        if self.host_prefix {
            ("__Host-csrf_access_token", "__Host-csrf_refresh_token")
        } else {
            (ACCESS_CSRF_COOKIE, REFRESH_CSRF_COOKIE)
        }
    }

    /// The four cookies: name, path, and whether scripts are kept from reading it. The CSRF
    /// values stay at `Path=/`: the page's scripts read them to echo in `X-CSRF-TOKEN`.
    fn all(self) -> [(&'static str, &'static str, bool); 4] {
        let (access_csrf, refresh_csrf) = self.csrf_names();
        [
            (self.access_name(), "/", true),
            (self.refresh_name(), self.refresh_path(), true),
            (access_csrf, "/", false),
            (refresh_csrf, "/", false),
        ]
    }
}

/// Sets the four cookies for `pair`: the tokens HttpOnly (scripts cannot read them), the CSRF
/// values readable (scripts must echo them in `X-CSRF-TOKEN`), all SameSite=Lax.
pub fn set_token_cookies(jar: &CookieJar, pair: &TokenPair, settings: CookieSettings) {
    let access_life = seconds(pair.expires_in);
    let refresh_life = seconds(pair.refresh_expires_in);
    let [access, refresh, access_csrf, refresh_csrf] = settings.all();
    let values = [
        (access, Some(&pair.access_token), access_life),
        (refresh, Some(&pair.refresh_token), refresh_life),
        (access_csrf, pair.access_csrf.as_ref(), access_life),
        (refresh_csrf, pair.refresh_csrf.as_ref(), refresh_life),
    ];
    for ((name, path, http_only), value, life) in values {
        if let Some(value) = value {
            jar.add(cookie(name, value, path, life, http_only, settings));
        }
    }
}

/// Expires all four cookies in the browser (whether or not this request carried them).
pub fn clear_token_cookies(jar: &CookieJar, settings: CookieSettings) {
    for (name, path, http_only) in settings.all() {
        jar.add(cookie(name, "", path, Duration::ZERO, http_only, settings));
    }
}

fn seconds(value: i64) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(0))
}

fn cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: Duration,
    http_only: bool,
    settings: CookieSettings,
) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_path(path);
    cookie.set_http_only(http_only);
    cookie.set_secure(settings.secure);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_max_age(max_age);
    cookie
}
