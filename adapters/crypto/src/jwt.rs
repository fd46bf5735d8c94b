//! Access and refresh tokens as JWTs (RFC 7519), following RFC 8725's advice: the algorithm
//! is fixed by configuration and never taken from the token, the key is looked up by `kid`
//! among authlog's own keys only, and `iss`, `aud`, `nbf`, `exp` and `type` are all checked.

use std::collections::HashMap;

use authlog_application::ports::{
    Claims, KeyError, SigningKey, TokenError, TokenKind, TokenService,
};
use authlog_domain::{Role, SessionId, TokenId, UserId, Username};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::keys::EDDSA;

/// Longest `kid` looked up; anything longer is refused before it touches a map.
const MAX_KID_LEN: usize = 128;

/// Who issues tokens, for whom, and how much clock skew between instances is tolerated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: i64,
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
}

/// Signs with the newest key; verifies with any key it was given.
pub struct JwtTokens {
    config: JwtConfig,
    algorithm: Algorithm,
    signing_kid: String,
    signing_key: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl JwtTokens {
    /// `keys` oldest first; the last one signs.
    ///
    /// # Errors
    /// [`KeyError`] when there is no key, or a key is not an Ed25519 key.
    pub fn new(config: JwtConfig, keys: &[SigningKey]) -> Result<Self, KeyError> {
        let Some(newest) = keys.last() else {
            return Err(KeyError("no signing key".into()));
        };
        let mut verifying = HashMap::with_capacity(keys.len());
        for key in keys {
            if key.algorithm != EDDSA {
                return Err(KeyError(format!(
                    "key {} is {}, expected EdDSA",
                    key.kid, key.algorithm
                )));
            }
            verifying.insert(key.kid.clone(), DecodingKey::from_ed_der(&key.public_key));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        // Time is checked against the caller's clock (see `verify`), not jsonwebtoken's own.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        Ok(Self {
            config,
            algorithm: Algorithm::EdDSA,
            signing_kid: newest.kid.clone(),
            signing_key: EncodingKey::from_ed_der(&newest.private_der),
            verifying,
            validation,
        })
    }

    fn decode(&self, token: &str) -> Result<JwtClaims, TokenError> {
        let header = RawHeader::read(token)?;
        // Compared as text: `none` and other names jsonwebtoken has no variant for must be
        // refused as a wrong algorithm too, not slip through as a parse error.
        if header.alg != EDDSA {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        if kid.len() > MAX_KID_LEN {
            return Err(TokenError::UnknownKey);
        }
        let key = self.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        jsonwebtoken::decode::<JwtClaims>(token, key, &self.validation)
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
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, &jwt, &self.signing_key)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Claims, TokenError> {
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
        Ok(Claims {
            user_id: jwt.sub.parse::<UserId>().map_err(|_| malformed("sub"))?,
            username: Username::parse(&jwt.username).map_err(|_| malformed("username"))?,
            roles,
            session_id: jwt.sid.parse::<SessionId>().map_err(|_| malformed("sid"))?,
            token_id: jwt.jti.parse::<TokenId>().map_err(|_| malformed("jti"))?,
            kind,
            fresh: jwt.fresh,
            issued_at: timestamp(jwt.iat, "iat")?,
            expires_at: timestamp(jwt.exp, "exp")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Ed25519KeyGenerator;
    use authlog_application::ports::KeyGenerator;
    use time::macros::datetime;
    use time::Duration;
    use uuid::Uuid;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn config() -> JwtConfig {
        JwtConfig {
            issuer: "authlog".into(),
            audience: "authlog-clients".into(),
            leeway_seconds: 0,
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
        let tokens = JwtTokens::new(config(), &[key()]).unwrap();
        let claims = claims(TokenKind::Access);
        let token = tokens.issue(&claims).unwrap();
        assert_eq!(tokens.verify(&token, NOW), Ok(claims));
    }

    #[test]
    fn the_header_names_eddsa_and_the_kid_and_the_payload_has_every_claim() {
        let key = key();
        let tokens = JwtTokens::new(config(), std::slice::from_ref(&key)).unwrap();
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
    fn an_expired_token_is_refused_and_leeway_is_honoured() {
        let tokens = JwtTokens::new(config(), &[key()]).unwrap();
        let token = tokens.issue(&claims(TokenKind::Access)).unwrap();
        let after = NOW + Duration::minutes(15) + Duration::seconds(1);
        assert_eq!(tokens.verify(&token, after), Err(TokenError::Expired));

        let lenient = JwtTokens::new(
            JwtConfig {
                leeway_seconds: 5,
                ..config()
            },
            &[key()],
        )
        .unwrap();
        let token = lenient.issue(&claims(TokenKind::Access)).unwrap();
        assert!(lenient.verify(&token, after).is_ok());
    }

    #[test]
    fn a_token_used_before_nbf_is_refused() {
        let tokens = JwtTokens::new(config(), &[key()]).unwrap();
        let token = tokens.issue(&claims(TokenKind::Access)).unwrap();
        assert_eq!(
            tokens.verify(&token, NOW - Duration::seconds(10)),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let tokens = JwtTokens::new(config(), &[key()]).unwrap();
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
        let forger = JwtTokens::new(config(), &[theirs]).unwrap();
        let verifier = JwtTokens::new(config(), &[ours]).unwrap();
        let token = forger.issue(&claims(TokenKind::Access)).unwrap();
        assert_eq!(verifier.verify(&token, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn alg_none_and_hs256_are_refused_before_any_key_is_used() {
        let tokens = JwtTokens::new(config(), &[key()]).unwrap();
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
        let tokens = JwtTokens::new(config(), &[key()]).unwrap();
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
        let ours = JwtTokens::new(config(), std::slice::from_ref(&key)).unwrap();
        let other_iss = JwtTokens::new(
            JwtConfig {
                issuer: "evil".into(),
                ..config()
            },
            std::slice::from_ref(&key),
        )
        .unwrap();
        let other_aud = JwtTokens::new(
            JwtConfig {
                audience: "evil".into(),
                ..config()
            },
            std::slice::from_ref(&key),
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
        let tokens = JwtTokens::new(config(), &[key()]).unwrap();
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
        let new = key();
        let before = JwtTokens::new(config(), std::slice::from_ref(&old)).unwrap();
        let token = before.issue(&claims(TokenKind::Access)).unwrap();
        let after = JwtTokens::new(config(), &[old, new.clone()]).unwrap();
        assert!(after.verify(&token, NOW).is_ok());
        let fresh = after.issue(&claims(TokenKind::Access)).unwrap();
        assert_eq!(part(&fresh, 0)["kid"], new.kid.as_str());
    }
}
