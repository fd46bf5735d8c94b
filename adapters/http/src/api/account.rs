//! What a token holder may see.

use std::sync::Arc;

use authlog_application::access::Forbidden;
use authlog_domain::Role;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::Tag;
use crate::errors::{msg, MessageBody, StoreRefusal, Unauthenticated};
use crate::security::Access;
use crate::state::AppState;

/// Whom the token speaks for.
#[derive(Object)]
pub struct LoggedInAs {
    /// The username.
    pub logged_in_as: String,
}

/// The admin greeting.
#[derive(Object)]
pub struct Welcome {
    /// `Welcome, admin!`
    pub message: String,
}

/// The caller's account, as the event log has it now.
#[derive(Object)]
pub struct Me {
    pub user_id: Uuid,
    pub username: String,
    /// Current roles (a change since login shows here at once; in tokens, a grant from the next
    /// refresh, a revoke at once).
    pub roles: Vec<String>,
    pub created_at: OffsetDateTime,
}

#[derive(ApiResponse)]
pub enum ProtectedResponse {
    /// `{"logged_in_as": "<username>"}`
    #[oai(status = 200)]
    Ok(Json<LoggedInAs>),
}

#[derive(ApiResponse)]
pub enum MeResponse {
    /// The caller's account.
    #[oai(status = 200)]
    Ok(Json<Me>),
}

#[derive(ApiResponse)]
pub enum AdminResponse {
    /// `{"message": "Welcome, admin!"}`
    #[oai(status = 200)]
    Ok(Json<Welcome>),
}

/// Why the admin check was refused.
#[derive(ApiResponse)]
pub enum AdminRefusal {
    /// `Missing Authorization Header`, or an invalid, expired, revoked or refresh token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
    /// `{"msg": "Admin access required"}`: the token lacks the `admin` role.
    #[oai(status = 403)]
    Forbidden(Json<MessageBody>),
}

impl From<Forbidden> for AdminRefusal {
    fn from(e: Forbidden) -> Self {
        Self::Forbidden(msg(e.to_string()))
    }
}

pub struct AccountApi;

#[OpenApi(tag = "Tag::Account")]
impl AccountApi {
    /// Who am I (protected route)
    ///
    /// The Flask template's protected route: answers the username the access token speaks
    /// for. Checked entirely in memory: no database query.
    #[oai(path = "/protected", method = "get", operation_id = "protectedRoute")]
    async fn protected(&self, token: Access) -> Result<ProtectedResponse, Unauthenticated> {
        Ok(ProtectedResponse::Ok(Json(LoggedInAs {
            logged_in_as: token.0.claims.username.as_str().to_owned(),
        })))
    }

    /// My account
    ///
    /// The caller's id, username, current roles and registration time.
    #[oai(path = "/me", method = "get", operation_id = "me")]
    async fn me(
        &self,
        state: Data<&Arc<AppState>>,
        token: Access,
    ) -> Result<MeResponse, StoreRefusal> {
        let user = state.me.execute(&token.0.claims).await?;
        Ok(MeResponse::Ok(Json(Me {
            user_id: user.id.as_uuid(),
            username: user.username.as_str().to_owned(),
            roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            created_at: user.created_at,
        })))
    }

    /// Admin check
    ///
    /// Succeeds only for a token carrying the `admin` role (granted with
    /// `authlog user grant-role USERNAME admin`, effective from the next login).
    #[oai(path = "/admin", method = "get", operation_id = "admin")]
    async fn admin(&self, token: Access) -> Result<AdminResponse, AdminRefusal> {
        token.caller().require(&Role::admin())?;
        Ok(AdminResponse::Ok(Json(Welcome {
            message: "Welcome, admin!".into(),
        })))
    }
}
