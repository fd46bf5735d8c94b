//! A bounded cache of verified tokens.
//!
//! Signature verification is the expensive part of authenticating a request (tens of
//! microseconds for Ed25519), and clients send the same access token again and again. So a
//! token that verified is remembered, by its exact text, until its `exp`: the same bytes carry
//! the same signature, so the answer cannot change. Only tokens that verified are kept (garbage
//! cannot fill the cache), and only access tokens: a refresh token is single-use, so caching it
//! would only crowd out access tokens for its thirty-day life. The size is bounded, and a key
//! rotation clears it. Revocation is not cached: the caller checks it on every request.

use std::collections::HashMap;
use std::sync::RwLock;

use authlog_application::ports::{
    Claims, KeyError, PublicKey, SigningKey, TokenError, TokenKind, TokenService,
};
use time::OffsetDateTime;

pub struct VerifiedTokenCache<T> {
    inner: T,
    entries: RwLock<HashMap<Box<str>, Claims>>,
    capacity: usize,
}

impl<T: TokenService> VerifiedTokenCache<T> {
    /// Caches at most `capacity` tokens in front of `inner`.
    pub fn new(inner: T, capacity: usize) -> Self {
        Self {
            inner,
            entries: RwLock::new(HashMap::with_capacity(capacity.min(1_024))),
            capacity,
        }
    }

    fn cached(&self, token: &str, now: OffsetDateTime) -> Option<Claims> {
        let entries = self.entries.read().ok()?;
        entries
            .get(token)
            .filter(|claims| now < claims.expires_at)
            .cloned()
    }

    fn remember(&self, token: &str, claims: &Claims, now: OffsetDateTime) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, c| now < c.expires_at);
        }
        // Still full of live tokens: serve this one uncached rather than evict a live one.
        if entries.len() < self.capacity {
            entries.insert(token.into(), claims.clone());
        }
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: TokenService> TokenService for VerifiedTokenCache<T> {
    fn issue(&self, claims: &Claims) -> Result<String, TokenError> {
        self.inner.issue(claims)
    }

    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, TokenError> {
        if let Some(claims) = self.cached(token, now) {
            return Ok(claims);
        }
        let claims = self.inner.verify(token, now)?;
        if claims.kind == TokenKind::Access {
            self.remember(token, &claims, now);
        }
        Ok(claims)
    }

    fn replace_keys(&self, keys: Vec<SigningKey>, now: OffsetDateTime) -> Result<(), KeyError> {
        self.inner.replace_keys(keys, now)?;
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
        Ok(())
    }

    fn public_keys(&self) -> Vec<PublicKey> {
        self.inner.public_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authlog_domain::{SessionId, TokenId, UserId, Username};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use time::macros::datetime;
    use time::Duration;
    use uuid::Uuid;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    /// Verifies "good-N" access tokens and "refresh-N" refresh tokens (expiring at NOW + N
    /// minutes) and counts the calls.
    #[derive(Default)]
    struct Counting {
        verified: AtomicUsize,
    }

    impl TokenService for Counting {
        fn issue(&self, _: &Claims) -> Result<String, TokenError> {
            Ok("issued".into())
        }
        fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, TokenError> {
            self.verified.fetch_add(1, Ordering::SeqCst);
            let (kind, minutes) = match token.split_once('-') {
                Some(("good", m)) => (TokenKind::Access, m),
                Some(("refresh", m)) => (TokenKind::Refresh, m),
                _ => return Err(TokenError::BadSignature),
            };
            let minutes: i64 = minutes.parse().map_err(|_| TokenError::BadSignature)?;
            let expires_at = NOW + Duration::minutes(minutes);
            if now >= expires_at {
                return Err(TokenError::Expired);
            }
            Ok(Claims {
                user_id: UserId::from_uuid(Uuid::from_u128(1)),
                username: Username::parse("alice").unwrap(),
                roles: vec![],
                session_id: SessionId::from_uuid(Uuid::from_u128(2)),
                token_id: TokenId::from_uuid(Uuid::from_u128(3)),
                kind,
                fresh: false,
                issued_at: NOW,
                expires_at,
                csrf: None,
            })
        }
        fn replace_keys(&self, _: Vec<SigningKey>, _: OffsetDateTime) -> Result<(), KeyError> {
            Ok(())
        }
        fn public_keys(&self) -> Vec<PublicKey> {
            vec![]
        }
    }

    fn calls(cache: &VerifiedTokenCache<Counting>) -> usize {
        cache.inner.verified.load(Ordering::SeqCst)
    }

    #[test]
    fn a_token_is_verified_once_and_then_answered_from_the_cache() {
        let cache = VerifiedTokenCache::new(Counting::default(), 10);
        let first = cache.verify("good-15", NOW).unwrap();
        let second = cache.verify("good-15", NOW).unwrap();
        assert_eq!(first, second);
        assert_eq!(calls(&cache), 1);
    }

    #[test]
    fn a_cached_token_is_not_served_past_its_expiry() {
        let cache = VerifiedTokenCache::new(Counting::default(), 10);
        cache.verify("good-15", NOW).unwrap();
        let later = NOW + Duration::minutes(15);
        assert_eq!(cache.verify("good-15", later), Err(TokenError::Expired));
        assert_eq!(calls(&cache), 2);
    }

    #[test]
    fn failures_are_never_cached() {
        let cache = VerifiedTokenCache::new(Counting::default(), 10);
        assert!(cache.verify("forged", NOW).is_err());
        assert!(cache.verify("forged", NOW).is_err());
        assert_eq!(calls(&cache), 2);
        assert!(cache.is_empty());
    }

    #[test]
    fn the_size_stays_bounded_and_expired_entries_make_room() {
        let cache = VerifiedTokenCache::new(Counting::default(), 2);
        cache.verify("good-1", NOW).unwrap();
        cache.verify("good-2", NOW).unwrap();
        cache.verify("good-3", NOW).unwrap();
        assert_eq!(cache.len(), 2);
        let later = NOW + Duration::seconds(90);
        cache.verify("good-4", later).unwrap();
        assert_eq!(cache.len(), 2, "good-1 expired and made room for good-4");
    }

    #[test]
    fn single_use_refresh_tokens_are_not_cached() {
        let cache = VerifiedTokenCache::new(Counting::default(), 10);
        cache.verify("refresh-60", NOW).unwrap();
        cache.verify("refresh-60", NOW).unwrap();
        assert_eq!(calls(&cache), 2);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_key_rotation_empties_the_cache() {
        let cache = VerifiedTokenCache::new(Counting::default(), 10);
        cache.verify("good-15", NOW).unwrap();
        cache.replace_keys(vec![], NOW).unwrap();
        assert!(cache.is_empty());
    }
}
