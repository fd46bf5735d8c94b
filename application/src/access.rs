//! Who is asking for a use case, and what their roles allow. The rules live here, in the
//! application, so that the HTTP API and the command line cannot disagree about them.

use std::sync::Arc;

use authlog_domain::Role;

use crate::ports::Claims;

/// Who asks for a use case that is not open to everyone.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A user, as their verified access token says (roles as of the token's issue).
    User(Arc<Claims>),
    /// The command line. Whoever can run it can read and write the database itself, so it
    /// holds every role.
    Operator,
}

/// The caller lacks the role a use case requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} access required", capitalised(.role.as_str()))]
pub struct Forbidden {
    pub role: Role,
}

impl Caller {
    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &Role) -> bool {
        match self {
            Self::User(claims) => claims.has_role(role),
            Self::Operator => true,
        }
    }

    /// # Errors
    /// [`Forbidden`] (`Admin access required` for `admin`) when the caller lacks `role`.
    pub fn require(&self, role: &Role) -> Result<(), Forbidden> {
        self.require_any(std::slice::from_ref(role))
    }

    /// # Errors
    /// [`Forbidden`], naming the first of `roles`, when the caller holds none of them.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), Forbidden> {
        match roles.iter().any(|role| self.has_role(role)) {
            true => Ok(()),
            false => Err(Forbidden {
                role: roles.first().cloned().unwrap_or_else(Role::admin),
            }),
        }
    }
}

/// `admin` → `Admin`, as the contract's `Admin access required` spells it.
fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::claims_of;

    #[test]
    fn a_user_without_the_role_is_refused_with_the_contract_message() {
        let caller = Caller::User(Arc::new(claims_of(&[])));
        let refused = caller.require(&Role::admin()).unwrap_err();
        assert_eq!(refused.to_string(), "Admin access required");
    }

    #[test]
    fn a_user_with_the_role_and_the_operator_pass() {
        let admin = Caller::User(Arc::new(claims_of(&[Role::admin()])));
        assert_eq!(admin.require(&Role::admin()), Ok(()));
        assert_eq!(Caller::Operator.require(&Role::admin()), Ok(()));
    }
}
