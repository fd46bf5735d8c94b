//! A login as steps, in the manner of kanidm's `CredHandler`: each step proves one factor, the
//! account says which factors it asks for ([`crate::user::User::factors`]), and once every one
//! is proved the login may open a session, if the user may hold one
//! ([`crate::user::UserState::may_hold_session`]).
//!
//! Today every account asks for its password alone, which the first step proves. A second
//! factor (a TOTP code, a passkey) is one more [`Factor`] an account can ask for and one more
//! step, not a rewrite of login.

/// A factor a login step proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Factor {
    /// The account's password.
    Password,
}

impl Factor {
    /// Its name among the authentication methods of RFC 8176 (the `amr` claim).
    pub fn amr(self) -> &'static str {
        match self {
            Self::Password => "pwd",
        }
    }
}

/// What a login needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// This factor is still to be proved.
    Prove(Factor),
    /// Every factor the account asks for is proved: open the session.
    OpenSession,
}

/// What comes after the factors `proved`, for an account that asks for `asked` (in order).
pub fn next(asked: &[Factor], proved: &[Factor]) -> Next {
    asked
        .iter()
        .find(|factor| !proved.contains(factor))
        .map_or(Next::OpenSession, |factor| Next::Prove(*factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_factors_an_account_asks_for_when_some_are_proved_then_the_next_is_asked() {
        let asked = [Factor::Password];
        assert_eq!(next(&asked, &[]), Next::Prove(Factor::Password));
        assert_eq!(next(&asked, &[Factor::Password]), Next::OpenSession);
        assert_eq!(Factor::Password.amr(), "pwd");
    }
}
