//! The public keys, so that any service can verify authlog's tokens without a shared secret,
//! and anyone holding a checkpoint can check its signature.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::Tag;
use crate::state::AppState;

/// An Ed25519 public key as a JWK (RFC 7517, RFC 8037).
#[derive(Object)]
pub struct Jwk {
    /// `OKP`
    pub kty: String,
    /// `Ed25519`
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key id tokens name in their header (the RFC 7638 thumbprint).
    pub kid: String,
    /// `EdDSA`
    pub alg: String,
    /// `sig`
    #[oai(rename = "use")]
    pub use_: String,
}

/// A JWK Set.
#[derive(Object)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// Every key that may still verify a live token (empty when tokens use a shared HS256
    /// secret).
    #[oai(status = 200)]
    Ok(Json<Jwks>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub enum CheckpointKeysResponse {
    /// The checkpoint key's public half, alone: it changes only with the master key.
    #[oai(status = 200)]
    Ok(Json<Jwks>, #[oai(header = "Cache-Control")] String),
}

pub struct KeysApi;

#[OpenApi(tag = "Tag::Keys")]
impl KeysApi {
    /// Public signing keys (JWKS)
    ///
    /// The JWK Set of the keys that may still verify a live token: the current signing key
    /// and those rotated out less than a token lifetime ago.
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, state: Data<&Arc<AppState>>) -> JwksResponse {
        let keys = state
            .tokens
            .public_keys()
            .into_iter()
            .map(|key| Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: URL_SAFE_NO_PAD.encode(&key.public_key),
                kid: key.kid,
                alg: key.algorithm,
                use_: "sig".into(),
            })
            .collect();
        // Verifiers may cache briefly; after a rotation they refetch on an unknown `kid`.
        JwksResponse::Ok(Json(Jwks { keys }), "public, max-age=60".into())
    }

    /// Checkpoint keys (JWKS)
    ///
    /// The public half of the Ed25519 key that signs checkpoints (`GET /audit/checkpoint`).
    /// Keep a copy beside the checkpoints you keep: a key served later by a database someone
    /// altered proves nothing.
    #[oai(
        path = "/.well-known/authlog-checkpoint-keys.json",
        method = "get",
        operation_id = "checkpointKeys"
    )]
    async fn checkpoint_keys(&self, state: Data<&Arc<AppState>>) -> CheckpointKeysResponse {
        let (kid, public_key) = state.checkpoints.public_key();
        let key = Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(public_key),
            kid,
            alg: "EdDSA".into(),
            use_: "sig".into(),
        };
        CheckpointKeysResponse::Ok(Json(Jwks { keys: vec![key] }), "public, max-age=60".into())
    }
}
