//! A bounded cache of verified tokens.
//!
//! Signature verification is the expensive part of authenticating a request (tens of
//! microseconds for Ed25519), and clients send the same access token again and again. So a
//! token that verified is remembered, by its exact text, until its `exp`: the same bytes carry
//! the same signature, so the answer cannot change. Only tokens that verified are kept (garbage
//! cannot fill the cache), and only access tokens: a refresh token is single-use, so caching it
//! would only crowd out access tokens for its thirty-day life. The size is bounded, and a key
//! rotation clears it. Revocation is not cached: the caller checks it on every request.
//!
//! Entries are found by the token's last 32 bytes (part of its signature, so as good as random)
//! and confirmed by comparing the whole token: hashing a 400-byte token on every request was
//! the cache's main cost in the profile. The claims are shared (`Arc`), not copied, per hit.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use authlog_application::ports::{
    Claims, Companions, KeyError, PublicKey, SigningKey, TokenError, TokenKind, TokenService,
};
use authlog_domain::TokenId;
use time::OffsetDateTime;

pub struct VerifiedTokenCache<T> {
    inner: T,
    entries: RwLock<HashMap<Tail, Entry>>,
    capacity: usize,
}

/// The last bytes of a token: its signature's end, the map's key.
type Tail = [u8; 32];

struct Entry {
    token: Box<str>,
    claims: Arc<Claims>,
}

fn tail(token: &str) -> Tail {
    let bytes = token.as_bytes();
    let mut tail = [0; 32];
    let start = bytes.len().saturating_sub(tail.len());
    tail[..bytes.len() - start].copy_from_slice(&bytes[start..]);
    tail
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

    fn cached(&self, token: &str, now: OffsetDateTime) -> Option<Arc<Claims>> {
        let entries = self.entries.read().ok()?;
        // A plain comparison: reaching it at all takes the 32 secret signature bytes of a cached
        // token, so its timing tells nothing that was not known.
        entries
            .get(&tail(token))
            .filter(|entry| *entry.token == *token && now < entry.claims.expires_at)
            .map(|entry| Arc::clone(&entry.claims))
    }

    fn remember(&self, token: &str, claims: &Arc<Claims>, now: OffsetDateTime) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, entry| now < entry.claims.expires_at);
        }
        // Still full of live tokens: serve this one uncached rather than evict a live one.
        // (Another token with the same tail is replaced: both are valid, and the whole-token
        // comparison keeps either from being answered with the other's claims.)
        if entries.len() < self.capacity {
            let entry = Entry {
                token: token.into(),
                claims: Arc::clone(claims),
            };
            entries.insert(tail(token), entry);
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

    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Arc<Claims>, TokenError> {
        if let Some(claims) = self.cached(token, now) {
            return Ok(claims);
        }
        let claims = self.inner.verify(token, now)?;
        if claims.kind == TokenKind::Access {
            self.remember(token, &claims, now);
        }
        Ok(claims)
    }

    fn companions(&self, refresh_token_id: TokenId) -> Companions {
        self.inner.companions(refresh_token_id)
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
        fn companions(&self, _: TokenId) -> Companions {
            Companions {
                access_id: TokenId::from_uuid(uuid::Uuid::nil()),
                access_csrf: String::new(),
                refresh_csrf: String::new(),
            }
        }
        fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Arc<Claims>, TokenError> {
            self.verified.fetch_add(1, Ordering::SeqCst);
            // Anything after a '.' is padding, for tokens that share their tail.
            let token = token.split('.').next().unwrap_or_default();
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
            Ok(Arc::new(Claims {
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
            }))
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
    fn tokens_that_share_their_tail_are_never_confused() {
        let cache = VerifiedTokenCache::new(Counting::default(), 10);
        let padding = "x".repeat(40);
        let (five, nine) = (format!("good-5.{padding}"), format!("good-9.{padding}"));
        assert_eq!(tail(&five), tail(&nine));
        for _ in 0..3 {
            let a = cache.verify(&five, NOW).unwrap();
            let b = cache.verify(&nine, NOW).unwrap();
            assert_eq!(a.expires_at, NOW + Duration::minutes(5));
            assert_eq!(b.expires_at, NOW + Duration::minutes(9));
        }
        // Forged text with a cached token's tail is verified (and refused), not served.
        let forged = format!("forged.{padding}");
        assert_eq!(cache.verify(&forged, NOW), Err(TokenError::BadSignature));
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
