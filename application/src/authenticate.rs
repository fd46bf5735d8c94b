//! Authenticating a token: the hot path of every protected request. No store access: the
//! signature and claims are checked in memory, and revocation against the in-memory view.

use std::sync::Arc;

use crate::ports::{Claims, Clock, RevocationView, TokenError, TokenKind, TokenService};

/// Why a token is not accepted. The messages are Flask-JWT-Extended's, which clients match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{}", wrong_kind_message(*.expected))]
    WrongKind { expected: TokenKind },
    #[error("Token has been revoked")]
    Revoked,
}

fn wrong_kind_message(expected: TokenKind) -> &'static str {
    match expected {
        TokenKind::Access => "Only non-refresh tokens are allowed",
        TokenKind::Refresh => "Only refresh tokens are allowed",
    }
}

pub struct Authenticate {
    tokens: Arc<dyn TokenService>,
    revocations: Arc<dyn RevocationView>,
    clock: Arc<dyn Clock>,
}

impl Authenticate {
    pub fn new(
        tokens: Arc<dyn TokenService>,
        revocations: Arc<dyn RevocationView>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            tokens,
            revocations,
            clock,
        }
    }

    /// Verifies `token`, checks it is of the `expected` kind and that its session is live.
    ///
    /// # Errors
    /// [`AuthError`] for the first check that fails, in that order.
    pub fn execute(&self, token: &str, expected: TokenKind) -> Result<Arc<Claims>, AuthError> {
        let claims = self.tokens.verify(token, self.clock.now())?;
        if claims.kind != expected {
            return Err(AuthError::WrongKind { expected });
        }
        if self.revocations.is_revoked(claims.session_id) {
            return Err(AuthError::Revoked);
        }
        // A role revoked since the token was issued is not the token's any more: every check
        // of a role (through `Caller`) sees the roles in effect.
        if let Some(roles) = self.revocations.roles_in_effect(&claims) {
            return Ok(Arc::new(Claims {
                roles,
                ..(*claims).clone()
            }));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockRevocationView, MockTokenService};
    use crate::testing::{clock, NOW};
    use authlog_domain::{SessionId, TokenId, UserId, Username};
    use uuid::Uuid;

    fn claims(kind: TokenKind) -> Claims {
        Claims {
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            username: Username::parse("alice").unwrap(),
            roles: vec![],
            session_id: SessionId::from_uuid(Uuid::from_u128(2)),
            token_id: TokenId::from_uuid(Uuid::from_u128(3)),
            kind,
            fresh: true,
            issued_at: NOW,
            expires_at: NOW + time::Duration::minutes(15),
            csrf: None,
        }
    }

    fn verifying(result: Result<Claims, TokenError>) -> Arc<MockTokenService> {
        let mut tokens = MockTokenService::new();
        tokens
            .expect_verify()
            .withf(|token, now| token == "t" && *now == NOW)
            .return_once(move |_, _| result.map(Arc::new));
        Arc::new(tokens)
    }

    fn revoked(answer: bool) -> Arc<MockRevocationView> {
        let mut view = MockRevocationView::new();
        view.expect_is_revoked().return_const(answer);
        view.expect_roles_in_effect().return_const(None);
        Arc::new(view)
    }

    #[test]
    fn a_valid_access_token_of_a_live_session_authenticates() {
        let auth = Authenticate::new(
            verifying(Ok(claims(TokenKind::Access))),
            revoked(false),
            clock(),
        );
        assert_eq!(
            auth.execute("t", TokenKind::Access),
            Ok(Arc::new(claims(TokenKind::Access)))
        );
    }

    #[test]
    fn a_role_revoked_since_the_token_was_issued_is_taken_from_its_claims() {
        let mut token = claims(TokenKind::Access);
        token.roles = vec![authlog_domain::Role::admin()];
        let mut tokens = MockTokenService::new();
        tokens
            .expect_verify()
            .return_once(move |_, _| Ok(Arc::new(token)));
        let mut view = MockRevocationView::new();
        view.expect_is_revoked().return_const(false);
        view.expect_roles_in_effect()
            .withf(|c| c.roles == vec![authlog_domain::Role::admin()])
            .return_const(Some(vec![]));
        let auth = Authenticate::new(Arc::new(tokens), Arc::new(view), clock());
        let authenticated = auth.execute("t", TokenKind::Access).unwrap();
        assert_eq!(authenticated.roles, vec![]);
        assert_eq!(
            authenticated.session_id,
            claims(TokenKind::Access).session_id
        );
    }

    #[test]
    fn a_token_of_a_revoked_session_is_refused() {
        let auth = Authenticate::new(
            verifying(Ok(claims(TokenKind::Access))),
            revoked(true),
            clock(),
        );
        let error = auth.execute("t", TokenKind::Access).unwrap_err();
        assert_eq!(error, AuthError::Revoked);
        assert_eq!(error.to_string(), "Token has been revoked");
    }

    #[test]
    fn a_refresh_token_is_refused_where_an_access_token_is_expected() {
        let auth = Authenticate::new(
            verifying(Ok(claims(TokenKind::Refresh))),
            revoked(false),
            clock(),
        );
        let error = auth.execute("t", TokenKind::Access).unwrap_err();
        assert_eq!(error.to_string(), "Only non-refresh tokens are allowed");
    }

    #[test]
    fn an_access_token_is_refused_where_a_refresh_token_is_expected() {
        let auth = Authenticate::new(
            verifying(Ok(claims(TokenKind::Access))),
            revoked(false),
            clock(),
        );
        let error = auth.execute("t", TokenKind::Refresh).unwrap_err();
        assert_eq!(error.to_string(), "Only refresh tokens are allowed");
    }

    #[test]
    fn verification_failures_pass_through_with_their_message() {
        let mut view = MockRevocationView::new();
        view.expect_is_revoked().never();
        let auth = Authenticate::new(verifying(Err(TokenError::Expired)), Arc::new(view), clock());
        let error = auth.execute("t", TokenKind::Access).unwrap_err();
        assert_eq!(error.to_string(), "Token has expired");
    }
}
