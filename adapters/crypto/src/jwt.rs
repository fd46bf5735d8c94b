//! Access and refresh tokens as JWTs (RFC 7519), following RFC 8725's advice: the algorithm
//! is fixed by configuration and never taken from the token, the key is looked up by `kid`
//! among authlog's own keys only, and `iss`, `aud`, `nbf`, `exp` and `type` are all checked.
//!
//! EdDSA (Ed25519) is the default: public keys are published as a JWKS so any service can
//! verify tokens. HS256 with a shared secret is the opt-in for setups that want the Flask
//! template's behaviour; it publishes nothing.
//!
//! A pair's companions (the access token's id, the CSRF values) are an HMAC of the refresh
//! token's id under a key derived from the signing key ([`TokenService::companions`]): as
//! unpredictable as random values, and the same each time a pair is issued again.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use authlog_application::ports::{
    Claims, Companions, KeyError, PublicKey, SigningKey, TokenError, TokenKind, TokenService,
};
use authlog_domain::{Role, SessionId, TokenId, UserId, Username};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::keys::EDDSA;

/// Longest `kid` looked up; anything longer is refused before it touches a map.
const MAX_KID_LEN: usize = 128;
/// Shortest HS256 secret accepted (RFC 7518 §3.2: a key at least as long as the hash).
pub const MIN_HS256_SECRET: usize = 32;
/// Least estimated entropy of an HS256 secret, in bits: what a brute-force search of the
/// secret from one token would have to cover.
pub const MIN_HS256_ENTROPY_BITS: f64 = 128.0;

/// Why an HS256 secret is refused: too short, or obviously not random. The estimate is the
/// Shannon entropy of the secret's own byte frequencies (bits a byte: `aaaa…` 0, `abab…` 1,
/// hex about 4, base64 about 5), times its length counted in distinct byte pairs, so that a
/// word repeated counts once, and a run of the alphabet or the keyboard not at all. Random hex or base64 of 32 bytes (`openssl rand -hex 32`,
/// `-base64 32`) scores about 220. It is a floor against mistakes (a placeholder, a word
/// repeated), not a proof of randomness.
///
/// # Errors
/// The refusal, saying what was measured.
pub fn check_hs256_secret(secret: &[u8]) -> Result<(), String> {
    if secret.len() < MIN_HS256_SECRET {
        return Err(format!(
            "must be at least {MIN_HS256_SECRET} bytes for HS256, got {}",
            secret.len()
        ));
    }
    let bits = estimated_entropy_bits(secret);
    if bits < MIN_HS256_ENTROPY_BITS {
        return Err(format!(
            "looks weak for HS256: about {bits:.0} bits of entropy (one character repeated, or a \
             short pattern), at least {MIN_HS256_ENTROPY_BITS:.0} needed; make one with \
             `openssl rand -hex 32`"
        ));
    }
    Ok(())
}

/// Runs a person types rather than draws: the alphabet, the digits, and the keyboard's rows
/// left to right (one row after the other, as `qwertyuiopasdfghjklzxcvbnm` is typed) and its
/// columns top to bottom (`1qaz2wsx…`).
const RUNS: &[&[u8]] = &[
    b"abcdefghijklmnopqrstuvwxyz",
    b"0123456789",
    b"1234567890",
    b"qwertyuiopasdfghjklzxcvbnm",
    b"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/",
];

/// Whether the three bytes of `window` are consecutive in a run of [`RUNS`], forwards or
/// backwards, in either case (`abc`, `CBA`, `rty`, `wsx`). Three, not two: a random secret
/// holds the odd pair like `ab`, it rarely holds three in a row, and a typed run is long.
fn in_a_run(window: &[u8]) -> bool {
    let lower: Vec<u8> = window.iter().map(u8::to_ascii_lowercase).collect();
    RUNS.iter().any(|run| {
        run.windows(lower.len())
            .any(|part| part == lower.as_slice() || part.iter().rev().eq(lower.iter()))
    })
}

/// The Shannon entropy of the byte histogram times the number of distinct byte pairs (plus
/// one), in bits; the pairs inside a run of the alphabet, the digits or the keyboard
/// ([`RUNS`]) do not count, so `abcdef…` and `qwerty…` score as a few characters do. Random
/// hex and base64 of 32 bytes never came near the floor: at least 156 bits over 100,000 of
/// each.
#[allow(clippy::cast_precision_loss)] // counts of at most a few KiB
fn estimated_entropy_bits(bytes: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    let per_byte: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let c = c as f64;
            (c / n) * (n / c).log2()
        })
        .sum();
    // Pair i is bytes i and i + 1; a run of three marks both its pairs.
    let mut in_runs = vec![false; bytes.len().saturating_sub(1)];
    for (i, window) in bytes.windows(3).enumerate() {
        if in_a_run(window) {
            in_runs[i] = true;
            in_runs[i + 1] = true;
        }
    }
    let pairs: std::collections::HashSet<&[u8]> = bytes
        .windows(2)
        .zip(&in_runs)
        .filter(|(_, in_run)| !**in_run)
        .map(|(pair, _)| pair)
        .collect();
    per_byte * (pairs.len() + 1) as f64
}

/// Who issues tokens, for whom, and how much clock skew between instances is tolerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: i64,
    /// The longest lifetime of any token (the refresh lifetime): how long a retired key must
    /// keep verifying.
    pub max_token_lifetime: Duration,
}

/// The claims as they travel in the JWT.
#[derive(Debug, Serialize, Deserialize)]
struct JwtClaims {
    sub: String,
    username: String,
    roles: Vec<String>,
    sid: String,
    jti: String,
    #[serde(rename = "type")]
    kind: String,
    fresh: bool,
    iat: i64,
    nbf: i64,
    exp: i64,
    iss: String,
    aud: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    csrf: Option<String>,
}

/// The keys in force: one signs, these verify.
struct KeyRing {
    /// The JOSE name of the algorithm in force, compared with the raw header.
    algorithm_name: &'static str,
    signer: Signer,
    verifying: HashMap<String, DecodingKey>,
    /// For HS256: the one key, whatever the header says.
    shared: Option<DecodingKey>,
    public: Vec<PublicKey>,
    validation: Validation,
    /// Keys the companions of each pair: derived from the signing key, never used to sign.
    companion_key: Zeroizing<[u8; 32]>,
}

/// HMAC-SHA256 of `parts` under `key`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The companions key of a signing secret (an Ed25519 key's PKCS#8, or the HS256 secret): a
/// separate key, so that nothing ever MACs with the signing key itself.
fn companion_key(signing_secret: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hmac(signing_secret, &[b"authlog token companions v1"]))
}

/// What signs tokens.
enum Signer {
    /// An Ed25519 key, parsed and expanded once, with the encoded header of every token it
    /// signs (it names the key's `kid`). `jsonwebtoken::encode` parses the PKCS#8 document and
    /// derives the public key again on every token: a scalar multiplication that cost more than
    /// the signature itself, twice per login and per refresh.
    Ed25519 {
        /// Boxed: an expanded key is some 220 bytes, the HS256 variant a pointer's worth.
        key: Box<ed25519_dalek::SigningKey>,
        header: String,
    },
    /// The HS256 secret (an HMAC key costs nothing to set up).
    Hs256(EncodingKey),
}

impl Signer {
    fn ed25519(kid: &str, private_der: &[u8]) -> Result<Self, KeyError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(private_der)
            .map_err(|e| KeyError(format!("key {kid} is not an Ed25519 private key: {e}")))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        Ok(Self::Ed25519 {
            key: Box::new(key),
            header: encode_part(&header)
                .map_err(|e| KeyError(format!("the token header of key {kid}: {e}")))?,
        })
    }

    /// The compact serialisation of `claims` signed: `header.claims.signature`, each part
    /// base64url without padding (RFC 7515 §7.1), byte for byte what `jsonwebtoken::encode`
    /// makes of the same header and claims.
    fn sign(&self, claims: &JwtClaims) -> Result<String, TokenError> {
        match self {
            Self::Ed25519 { key, header } => {
                use ed25519_dalek::Signer as _;
                let claims = encode_part(claims).map_err(|e| TokenError::Signing(e.to_string()))?;
                // Two dots, and 86 characters of base64url for the 64-byte signature.
                let mut token = String::with_capacity(header.len() + claims.len() + 88);
                token.push_str(header);
                token.push('.');
                token.push_str(&claims);
                let signature = key.sign(token.as_bytes());
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
                Ok(token)
            }
            Self::Hs256(secret) => {
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, secret)
                    .map_err(|e| TokenError::Signing(e.to_string()))
            }
        }
    }
}

/// One part of a token: `value` as JSON, base64url without padding.
fn encode_part(value: &impl Serialize) -> Result<String, serde_json::Error> {
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(value)?))
}

/// Issues and verifies tokens; the key ring can be replaced while requests are served.
pub struct JwtTokens {
    config: JwtConfig,
    ring: RwLock<Arc<KeyRing>>,
}

fn validation(config: &JwtConfig, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    // Time is checked against the caller's clock (see `verify`), not jsonwebtoken's own.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation
}

impl JwtTokens {
    /// EdDSA with `keys` (oldest first; the newest unrevoked one signs). Keys retired longer ago
    /// than any token lives are dropped: nothing they signed can still be valid. Revoked keys
    /// verify nothing, but still retire the key before them.
    ///
    /// # Errors
    /// [`KeyError`] when no key is in force, or a key is not an Ed25519 key of the right length.
    pub fn eddsa(
        config: JwtConfig,
        keys: Vec<SigningKey>,
        now: OffsetDateTime,
    ) -> Result<Self, KeyError> {
        let ring = Self::eddsa_ring(&config, keys, now)?;
        Ok(Self {
            config,
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    /// HS256 with a shared `secret` of at least 32 bytes.
    ///
    /// # Errors
    /// [`KeyError`] when the secret is shorter than 32 bytes.
    pub fn hs256(config: JwtConfig, secret: &[u8]) -> Result<Self, KeyError> {
        check_hs256_secret(secret).map_err(|e| KeyError(format!("the HS256 secret {e}")))?;
        let ring = KeyRing {
            algorithm_name: "HS256",
            signer: Signer::Hs256(EncodingKey::from_secret(secret)),
            verifying: HashMap::new(),
            shared: Some(DecodingKey::from_secret(secret)),
            public: vec![],
            validation: validation(&config, Algorithm::HS256),
            companion_key: companion_key(secret),
        };
        Ok(Self {
            config,
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    fn eddsa_ring(
        config: &JwtConfig,
        keys: Vec<SigningKey>,
        now: OffsetDateTime,
    ) -> Result<KeyRing, KeyError> {
        let Some(newest) = keys.iter().rev().find(|k| !k.is_revoked()) else {
            return Err(KeyError(
                "no signing key in force (none, or all revoked)".into(),
            ));
        };
        let signer = Signer::ed25519(&newest.kid, &newest.private_der)?;
        let horizon = now - config.max_token_lifetime - Duration::seconds(config.leeway_seconds);
        let retired_at = keys
            .iter()
            .skip(1)
            .map(|k| Some(k.created_at))
            .chain([None]);
        let mut verifying = HashMap::with_capacity(keys.len());
        let mut public = Vec::with_capacity(keys.len());
        for (key, retired_at) in keys.iter().zip(retired_at) {
            if key.is_revoked() {
                continue;
            }
            if key.algorithm != EDDSA {
                return Err(KeyError(format!(
                    "key {} is {}, expected EdDSA",
                    key.kid, key.algorithm
                )));
            }
            // jsonwebtoken slices the key without checking its length: a short one would panic
            // on the first token that names it.
            if key.public_key.len() != ed25519_dalek::PUBLIC_KEY_LENGTH {
                return Err(KeyError(format!(
                    "key {}'s public key is {} bytes, expected {}",
                    key.kid,
                    key.public_key.len(),
                    ed25519_dalek::PUBLIC_KEY_LENGTH
                )));
            }
            if retired_at.is_some_and(|at| at < horizon) {
                continue;
            }
            verifying.insert(key.kid.clone(), DecodingKey::from_ed_der(&key.public_key));
            public.push(PublicKey {
                kid: key.kid.clone(),
                algorithm: EDDSA.to_owned(),
                public_key: key.public_key.clone(),
            });
        }
        Ok(KeyRing {
            algorithm_name: EDDSA,
            signer,
            verifying,
            shared: None,
            public,
            validation: validation(config, Algorithm::EdDSA),
            companion_key: companion_key(&newest.private_der),
        })
    }

    fn ring(&self) -> Arc<KeyRing> {
        // A poisoned lock only means a writer panicked between two whole-value stores; the
        // ring inside is still a complete one.
        match self.ring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn decode(&self, token: &str) -> Result<JwtClaims, TokenError> {
        let ring = self.ring();
        let header = RawHeader::read(token)?;
        // Compared as text: `none` and other names jsonwebtoken has no variant for must be
        // refused as a wrong algorithm too, not slip through as a parse error.
        if header.alg != ring.algorithm_name {
            return Err(TokenError::WrongAlgorithm);
        }
        let key = match &ring.shared {
            Some(shared) => shared,
            None => {
                let kid = header.kid.ok_or(TokenError::UnknownKey)?;
                if kid.len() > MAX_KID_LEN {
                    return Err(TokenError::UnknownKey);
                }
                ring.verifying.get(&kid).ok_or(TokenError::UnknownKey)?
            }
        };
        jsonwebtoken::decode::<JwtClaims>(token, key, &ring.validation)
            .map(|data| data.claims)
            .map_err(map_error)
    }
}

/// The two header fields read before verification, straight from the token's first segment.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

impl RawHeader {
    fn read(token: &str) -> Result<Self, TokenError> {
        let segment = token
            .split('.')
            .next()
            .filter(|_| token.matches('.').count() == 2)
            .ok_or_else(|| TokenError::Malformed("Not enough segments".into()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| TokenError::Malformed("Invalid header padding".into()))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| TokenError::Malformed("Invalid header string".into()))
    }
}

fn map_error(e: jsonwebtoken::errors::Error) -> TokenError {
    match e.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::WrongAlgorithm,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) => {
            TokenError::Malformed(format!("Missing claim: {claim}"))
        }
        ErrorKind::InvalidToken => TokenError::Malformed("Not enough segments".into()),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            TokenError::Malformed("Invalid token encoding".into())
        }
        ErrorKind::Json(_) => TokenError::Malformed("Invalid token claims".into()),
        _ => TokenError::Malformed("Invalid token".into()),
    }
}

fn malformed(what: &str) -> TokenError {
    TokenError::Malformed(format!("Invalid {what} claim"))
}

fn timestamp(seconds: i64, what: &str) -> Result<OffsetDateTime, TokenError> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| malformed(what))
}

impl TokenService for JwtTokens {
    fn issue(&self, claims: &Claims) -> Result<String, TokenError> {
        let ring = self.ring();
        let jwt = JwtClaims {
            sub: claims.user_id.to_string(),
            username: claims.username.as_str().to_owned(),
            roles: claims.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            sid: claims.session_id.to_string(),
            jti: claims.token_id.to_string(),
            kind: match claims.kind {
                TokenKind::Access => "access",
                TokenKind::Refresh => "refresh",
            }
            .to_owned(),
            fresh: claims.fresh,
            iat: claims.issued_at.unix_timestamp(),
            nbf: claims.issued_at.unix_timestamp(),
            exp: claims.expires_at.unix_timestamp(),
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            csrf: claims.csrf.clone(),
        };
        ring.signer.sign(&jwt)
    }

    fn companions(&self, refresh_token_id: TokenId) -> Companions {
        let ring = self.ring();
        let id = refresh_token_id.as_uuid();
        let derive = |label: &[u8]| hmac(ring.companion_key.as_slice(), &[label, id.as_bytes()]);
        let access = derive(b"access jti");
        let mut access_id = [0; 16];
        access_id.copy_from_slice(&access[..16]);
        let csrf = |label: &[u8]| URL_SAFE_NO_PAD.encode(&derive(label)[..16]);
        Companions {
            // Pseudorandom bytes, marked as a random (v4) UUID.
            access_id: TokenId::from_uuid(uuid::Builder::from_random_bytes(access_id).into_uuid()),
            access_csrf: csrf(b"access csrf"),
            refresh_csrf: csrf(b"refresh csrf"),
        }
    }

    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Arc<Claims>, TokenError> {
        let jwt = self.decode(token)?;
        let now = now.unix_timestamp();
        if now > jwt.exp.saturating_add(self.config.leeway_seconds) {
            return Err(TokenError::Expired);
        }
        if jwt.nbf > now.saturating_add(self.config.leeway_seconds) {
            return Err(TokenError::NotYetValid);
        }
        let kind = match jwt.kind.as_str() {
            "access" => TokenKind::Access,
            "refresh" => TokenKind::Refresh,
            _ => return Err(malformed("type")),
        };
        let roles = jwt
            .roles
            .iter()
            .map(|r| Role::parse(r).map_err(|_| malformed("roles")))
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Claims {
            user_id: jwt.sub.parse::<UserId>().map_err(|_| malformed("sub"))?,
            username: Username::parse(&jwt.username).map_err(|_| malformed("username"))?,
            roles,
            session_id: jwt.sid.parse::<SessionId>().map_err(|_| malformed("sid"))?,
            token_id: jwt.jti.parse::<TokenId>().map_err(|_| malformed("jti"))?,
            kind,
            fresh: jwt.fresh,
            issued_at: timestamp(jwt.iat, "iat")?,
            expires_at: timestamp(jwt.exp, "exp")?,
            csrf: jwt.csrf,
        }))
    }

    fn replace_keys(&self, keys: Vec<SigningKey>, now: OffsetDateTime) -> Result<(), KeyError> {
        if self.ring().shared.is_some() {
            // HS256: the database's key pairs are not in use; the shared secret stays.
            return Ok(());
        }
        let ring = Arc::new(Self::eddsa_ring(&self.config, keys, now)?);
        match self.ring.write() {
            Ok(mut current) => *current = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(())
    }

    fn public_keys(&self) -> Vec<PublicKey> {
        self.ring().public.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Ed25519KeyGenerator;
    use authlog_application::ports::KeyGenerator;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn config() -> JwtConfig {
        JwtConfig {
            issuer: "authlog".into(),
            audience: "authlog-clients".into(),
            leeway_seconds: 0,
            max_token_lifetime: Duration::days(30),
        }
    }

    fn key() -> SigningKey {
        Ed25519KeyGenerator.generate(NOW).unwrap()
    }

    fn claims(kind: TokenKind) -> Claims {
        Claims {
            user_id: UserId::from_uuid(Uuid::now_v7()),
            username: Username::parse("alice").unwrap(),
            roles: vec![Role::admin()],
            session_id: SessionId::from_uuid(Uuid::now_v7()),
            token_id: TokenId::from_uuid(Uuid::now_v7()),
            kind,
            fresh: true,
            issued_at: NOW,
            expires_at: NOW + Duration::minutes(15),
            csrf: None,
        }
    }

    fn part(token: &str, n: usize) -> serde_json::Value {
        let raw = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(n).unwrap())
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    }

    /// Re-encodes `token` with one part replaced, keeping the original signature.
    fn with_part(token: &str, n: usize, value: &serde_json::Value) -> String {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[n] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
        parts.join(".")
    }

    #[test]
    fn an_issued_token_verifies_to_the_same_claims() {
        let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        let claims = claims(TokenKind::Access);
        let token = tokens.issue(&claims).unwrap();
        assert_eq!(tokens.verify(&token, NOW), Ok(Arc::new(claims)));
    }

    #[test]
    fn the_header_names_eddsa_and_the_kid_and_the_payload_has_every_claim() {
        let key = key();
        let tokens = JwtTokens::eddsa(config(), vec![key.clone()], NOW).unwrap();
        let token = tokens.issue(&claims(TokenKind::Refresh)).unwrap();
        let header = part(&token, 0);
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], key.kid.as_str());
        let payload = part(&token, 1);
        for claim in [
            "sub", "username", "roles", "sid", "jti", "type", "fresh", "iat", "nbf", "exp", "iss",
            "aud",
        ] {
            assert!(payload.get(claim).is_some(), "missing {claim}");
        }
        assert_eq!(payload["type"], "refresh");
        assert_eq!(payload["iss"], "authlog");
        assert_eq!(payload["aud"], "authlog-clients");
    }

    #[test]
    fn a_token_is_byte_for_byte_what_jsonwebtoken_encodes() {
        // Signing with the key expanded once must not change a single byte of a token: a retried
        // refresh answers the identical pair, and other verifiers parse these tokens.
        let key = key();
        let tokens = JwtTokens::eddsa(config(), vec![key.clone()], NOW).unwrap();
        for kind in [TokenKind::Access, TokenKind::Refresh] {
            let claims = Claims {
                csrf: Some("c5rf".into()),
                ..claims(kind)
            };
            let ours = tokens.issue(&claims).unwrap();
            let jwt: JwtClaims = serde_json::from_value(part(&ours, 1)).unwrap();
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(key.kid.clone());
            let theirs =
                jsonwebtoken::encode(&header, &jwt, &EncodingKey::from_ed_der(&key.private_der))
                    .unwrap();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn a_private_key_that_is_not_ed25519_is_refused_when_loaded_not_when_used() {
        let broken = SigningKey {
            private_der: vec![0x30, 0x03, 0x02, 0x01, 0x00],
            ..key()
        };
        let refused = JwtTokens::eddsa(config(), vec![broken.clone()], NOW).err();
        assert!(refused.is_some_and(|e| e.0.contains(&broken.kid)));
    }

    #[test]
    fn an_expired_token_is_refused_and_leeway_is_honoured() {
        let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        let token = tokens.issue(&claims(TokenKind::Access)).unwrap();
        let after = NOW + Duration::minutes(15) + Duration::seconds(1);
        assert_eq!(tokens.verify(&token, after), Err(TokenError::Expired));

        let lenient = JwtTokens::eddsa(
            JwtConfig {
                leeway_seconds: 5,
                ..config()
            },
            vec![key()],
            NOW,
        )
        .unwrap();
        let token = lenient.issue(&claims(TokenKind::Access)).unwrap();
        assert!(lenient.verify(&token, after).is_ok());
    }

    #[test]
    fn a_token_used_before_nbf_is_refused() {
        let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        let token = tokens.issue(&claims(TokenKind::Access)).unwrap();
        assert_eq!(
            tokens.verify(&token, NOW - Duration::seconds(10)),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        let mut c = claims(TokenKind::Access);
        c.roles = vec![];
        let token = tokens.issue(&c).unwrap();
        let mut payload = part(&token, 1);
        payload["roles"] = serde_json::json!(["admin"]);
        let forged = with_part(&token, 1, &payload);
        assert_eq!(tokens.verify(&forged, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_token_signed_by_another_key_with_our_kid_fails_the_signature() {
        let ours = key();
        let mut theirs = key();
        theirs.kid = ours.kid.clone();
        let forger = JwtTokens::eddsa(config(), vec![theirs], NOW).unwrap();
        let verifier = JwtTokens::eddsa(config(), vec![ours], NOW).unwrap();
        let token = forger.issue(&claims(TokenKind::Access)).unwrap();
        assert_eq!(verifier.verify(&token, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn alg_none_and_hs256_are_refused_before_any_key_is_used() {
        let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        let token = tokens.issue(&claims(TokenKind::Access)).unwrap();
        for alg in ["none", "HS256"] {
            let mut header = part(&token, 0);
            header["alg"] = serde_json::json!(alg);
            let forged = with_part(&token, 0, &header);
            let result = tokens.verify(&forged, NOW);
            assert_eq!(result, Err(TokenError::WrongAlgorithm), "alg {alg}");
        }
    }

    #[test]
    fn unknown_missing_and_hostile_kids_are_refused() {
        let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        let token = tokens.issue(&claims(TokenKind::Access)).unwrap();
        for kid in [
            serde_json::json!("nope"),
            serde_json::json!("../../etc/passwd"),
            serde_json::json!("k".repeat(10_000)),
            serde_json::Value::Null,
        ] {
            let mut header = part(&token, 0);
            header["kid"] = kid;
            let forged = with_part(&token, 0, &header);
            assert_eq!(tokens.verify(&forged, NOW), Err(TokenError::UnknownKey));
        }
    }

    #[test]
    fn a_foreign_issuer_or_audience_is_refused() {
        let key = key();
        let ours = JwtTokens::eddsa(config(), vec![key.clone()], NOW).unwrap();
        let other_iss = JwtTokens::eddsa(
            JwtConfig {
                issuer: "evil".into(),
                ..config()
            },
            vec![key.clone()],
            NOW,
        )
        .unwrap();
        let other_aud = JwtTokens::eddsa(
            JwtConfig {
                audience: "evil".into(),
                ..config()
            },
            vec![key.clone()],
            NOW,
        )
        .unwrap();
        let c = claims(TokenKind::Access);
        assert_eq!(
            ours.verify(&other_iss.issue(&c).unwrap(), NOW),
            Err(TokenError::WrongIssuer)
        );
        assert_eq!(
            ours.verify(&other_aud.issue(&c).unwrap(), NOW),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        for garbage in ["", "abc", "a.b", "a.b.c", "....", "\u{0}", "eyJ.eyJ.sig"] {
            assert!(
                matches!(tokens.verify(garbage, NOW), Err(TokenError::Malformed(_))),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn an_older_key_keeps_verifying_after_a_newer_one_takes_over() {
        let old = key();
        let mut new = key();
        new.created_at = NOW + Duration::seconds(1);
        let before = JwtTokens::eddsa(config(), vec![old.clone()], NOW).unwrap();
        let token = before.issue(&claims(TokenKind::Access)).unwrap();
        let after = JwtTokens::eddsa(config(), vec![old, new.clone()], NOW).unwrap();
        assert!(after.verify(&token, NOW).is_ok());
        let fresh = after.issue(&claims(TokenKind::Access)).unwrap();
        assert_eq!(part(&fresh, 0)["kid"], new.kid.as_str());
    }

    #[test]
    fn one_refresh_token_id_always_gets_the_same_companions_and_identical_tokens() {
        let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        let id = TokenId::from_uuid(Uuid::from_u128(7));
        let companions = tokens.companions(id);
        assert_eq!(tokens.companions(id), companions);
        assert_eq!(companions.access_csrf.len(), 22, "128 bits, base64url");
        assert_ne!(companions.access_csrf, companions.refresh_csrf);
        assert_ne!(companions.access_id, id);
        let other = tokens.companions(TokenId::from_uuid(Uuid::from_u128(8)));
        assert_ne!(other.access_id, companions.access_id);
        assert_ne!(other.access_csrf, companions.access_csrf);
        // Ed25519 is deterministic: the same claims sign to the same token.
        let claims = claims(TokenKind::Refresh);
        assert_eq!(
            tokens.issue(&claims).unwrap(),
            tokens.issue(&claims).unwrap()
        );
    }

    #[test]
    fn companions_depend_on_the_signing_key() {
        let id = TokenId::from_uuid(Uuid::from_u128(7));
        let one = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        let two = JwtTokens::eddsa(
            config(),
            vec![Ed25519KeyGenerator.generate(NOW).unwrap()],
            NOW,
        )
        .unwrap();
        assert_ne!(one.companions(id), two.companions(id));
        let hs = JwtTokens::hs256(config(), &secret(1)).unwrap();
        assert_ne!(hs.companions(id), one.companions(id));
    }

    #[test]
    fn a_revoked_key_verifies_nothing_is_not_published_and_still_retires_the_key_before_it() {
        let old = Ed25519KeyGenerator
            .generate(NOW - Duration::days(60))
            .unwrap();
        let compromised = Ed25519KeyGenerator
            .generate(NOW - Duration::days(40))
            .unwrap();
        let tokens = JwtTokens::eddsa(config(), vec![compromised.clone()], NOW).unwrap();
        let signed = tokens.issue(&claims(TokenKind::Access)).unwrap();

        let revoked = SigningKey {
            private_der: vec![],
            public_key: Ed25519KeyGenerator.generate(NOW).unwrap().public_key,
            revoked_at: Some(NOW),
            ..compromised.clone()
        };
        let replacement = Ed25519KeyGenerator.generate(NOW).unwrap();
        tokens
            .replace_keys(vec![old, revoked, replacement.clone()], NOW)
            .unwrap();

        assert_eq!(tokens.verify(&signed, NOW), Err(TokenError::UnknownKey));
        // The old key was retired 40 days ago by the revoked one, longer than any token lives:
        // revoking its successor does not bring it back.
        let kids: Vec<String> = tokens.public_keys().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, vec![replacement.kid.clone()]);
        let fresh = tokens.issue(&claims(TokenKind::Access)).unwrap();
        assert!(tokens.verify(&fresh, NOW).is_ok());
    }

    /// An older release knows no `revoked_at`: it sees a revoked key as an ordinary one, whose
    /// private key is gone and whose public key is a tombstone (the public half of a key
    /// nobody kept). Its tokens must be refused there too.
    #[test]
    fn a_revoked_key_seen_by_a_release_that_does_not_know_revocation_verifies_nothing() {
        let compromised = key();
        let tokens = JwtTokens::eddsa(config(), vec![compromised.clone()], NOW).unwrap();
        let signed = tokens.issue(&claims(TokenKind::Access)).unwrap();
        let as_an_older_release_reads_it = SigningKey {
            private_der: vec![],
            public_key: key().public_key,
            ..compromised
        };
        tokens
            .replace_keys(vec![as_an_older_release_reads_it, key()], NOW)
            .unwrap();
        assert_eq!(tokens.verify(&signed, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn a_public_key_of_the_wrong_length_is_refused_when_loaded_not_when_used() {
        let short = SigningKey {
            public_key: vec![1, 2, 3],
            ..key()
        };
        assert!(JwtTokens::eddsa(config(), vec![short, key()], NOW).is_err());
    }

    #[test]
    fn a_csrf_value_travels_in_the_token() {
        let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        let mut c = claims(TokenKind::Access);
        c.csrf = Some("double-submit".into());
        let token = tokens.issue(&c).unwrap();
        assert_eq!(part(&token, 1)["csrf"], "double-submit");
        assert_eq!(
            tokens.verify(&token, NOW).unwrap().csrf.as_deref(),
            Some("double-submit")
        );
    }

    #[test]
    fn an_hs256_token_made_with_the_public_key_as_secret_is_refused() {
        // Algorithm confusion (RFC 8725 §2.1): sign HS256 with the published public key.
        let key = key();
        let verifier = JwtTokens::eddsa(config(), vec![key.clone()], NOW).unwrap();
        let mut secret = key.public_key.clone();
        secret.resize(32, 0);
        let forger = JwtTokens::hs256(config(), &secret).unwrap();
        let mut forged_header = part(&forger.issue(&claims(TokenKind::Access)).unwrap(), 0);
        forged_header["kid"] = serde_json::json!(key.kid);
        let forged = with_part(
            &forger.issue(&claims(TokenKind::Access)).unwrap(),
            0,
            &forged_header,
        );
        assert_eq!(
            verifier.verify(&forged, NOW),
            Err(TokenError::WrongAlgorithm)
        );
    }

    /// 32 distinct bytes, different for each `seed`: 160 bits by the estimate.
    fn secret(seed: u8) -> Vec<u8> {
        (0..32u8)
            .map(|i| i.wrapping_mul(7).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn an_hs256_secret_that_is_short_or_obviously_not_random_is_refused() {
        assert!(check_hs256_secret(&secret(1)[..31])
            .unwrap_err()
            .contains("at least 32 bytes"));
        for weak in [
            vec![b'a'; 64],
            b"abababababababababababababababababababab".to_vec(),
            b"changeme-changeme-changeme-changeme".to_vec(),
            b"password1234567890password1234567890".to_vec(),
            // Runs of the alphabet and of the keyboard: every byte distinct, nothing random.
            b"abcdefghijklmnopqrstuvwxyz012345".to_vec(),
            b"qwertyuiopasdfghjklzxcvbnm123456".to_vec(),
            b"ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210".to_vec(),
            b"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/".to_vec(),
        ] {
            let refusal = check_hs256_secret(&weak).unwrap_err();
            assert!(refusal.contains("looks weak"), "{refusal}");
        }
        let hex = b"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let base64 = b"2jmj7l5rSw0yVb/vlWAYkK/YBwk2jmj7l5rSw0yVb/E=";
        assert_eq!(check_hs256_secret(hex), Ok(()));
        assert_eq!(check_hs256_secret(base64), Ok(()));
        assert_eq!(check_hs256_secret(&secret(1)), Ok(()));
    }

    #[test]
    fn hs256_needs_a_32_byte_secret_and_then_round_trips_without_publishing_keys() {
        assert!(JwtTokens::hs256(config(), &secret(7)[..31]).is_err());
        let tokens = JwtTokens::hs256(config(), &secret(7)).unwrap();
        let c = claims(TokenKind::Access);
        let token = tokens.issue(&c).unwrap();
        assert_eq!(part(&token, 0)["alg"], "HS256");
        assert_eq!(tokens.verify(&token, NOW), Ok(Arc::new(c)));
        assert!(tokens.public_keys().is_empty());
        let other = JwtTokens::hs256(config(), &secret(8)).unwrap();
        assert_eq!(other.verify(&token, NOW), Err(TokenError::BadSignature));
        let eddsa = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
        assert_eq!(eddsa.verify(&token, NOW), Err(TokenError::WrongAlgorithm));
    }

    #[test]
    fn replacing_the_keys_switches_signing_and_keeps_old_tokens_verifying() {
        let old = key();
        let tokens = JwtTokens::eddsa(config(), vec![old.clone()], NOW).unwrap();
        let before = tokens.issue(&claims(TokenKind::Access)).unwrap();
        let mut new = key();
        new.created_at = NOW + Duration::seconds(1);
        tokens
            .replace_keys(vec![old.clone(), new.clone()], NOW)
            .unwrap();
        let after = tokens.issue(&claims(TokenKind::Access)).unwrap();
        assert_eq!(part(&after, 0)["kid"], new.kid.as_str());
        assert!(tokens.verify(&before, NOW).is_ok());
        let kids: Vec<String> = tokens.public_keys().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, vec![old.kid, new.kid]);
        assert!(tokens.replace_keys(vec![], NOW).is_err());
    }

    #[test]
    fn a_key_retired_longer_ago_than_any_token_lives_is_no_longer_published_or_trusted() {
        let old = key();
        let mut new = key();
        new.created_at = NOW + Duration::days(1);
        let token = JwtTokens::eddsa(config(), vec![old.clone()], NOW)
            .unwrap()
            .issue(&claims(TokenKind::Access))
            .unwrap();
        let much_later = NOW + Duration::days(32);
        let tokens = JwtTokens::eddsa(config(), vec![old, new.clone()], much_later).unwrap();
        let kids: Vec<String> = tokens.public_keys().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, vec![new.kid]);
        assert_eq!(tokens.verify(&token, NOW), Err(TokenError::UnknownKey));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn arbitrary_text_never_verifies_and_never_panics(token in ".{0,400}") {
                let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
                prop_assert!(tokens.verify(&token, NOW).is_err());
            }

            #[test]
            fn three_base64url_segments_never_verify(a in "[A-Za-z0-9_-]{0,120}", b in "[A-Za-z0-9_-]{0,200}", c in "[A-Za-z0-9_-]{0,100}") {
                let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
                let token = format!("{a}.{b}.{c}");
                prop_assert!(tokens.verify(&token, NOW).is_err());
            }

            #[test]
            fn any_single_character_change_to_a_real_token_is_refused(index in 0usize..2000, replacement in "[A-Za-z0-9_.-]") {
                let tokens = JwtTokens::eddsa(config(), vec![key()], NOW).unwrap();
                let token = tokens.issue(&claims(TokenKind::Access)).unwrap();
                let index = index % token.len();
                let mut changed = token.clone();
                changed.replace_range(index..=index, &replacement);
                prop_assume!(changed != token);
                prop_assert!(tokens.verify(&changed, NOW).is_err());
            }
        }
    }
}
