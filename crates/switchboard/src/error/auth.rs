//! What failed while signing in to a server (OAuth): the step, the authorization server's
//! own `error` / `error_description`, and whether a person has to log in.
//!
//! Built by the `auth` layer, carried by [`Error::SignIn`](crate::Error::SignIn) and by the
//! transport's typed errors. Nothing in it is ever a token, code, secret or assertion: the
//! authorization server's texts are kept length-capped with control characters stripped,
//! and `detail` is our own wording (a status, "connection refused"), never a body.

use serde::{Deserialize, Serialize};

use super::Error;

/// The longest `error` kept (RFC 6749 codes are short ASCII words).
const MAX_ERROR: usize = 64;
/// The longest `error_description` kept.
const MAX_DESCRIPTION: usize = 300;

/// Which step of signing in failed.
///
/// Serialises as its [`as_str`](AuthStep::as_str) name (`"token"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStep {
    /// Finding the protected resource's or the authorization server's metadata.
    Metadata,
    /// Registering the client with the authorization server.
    Registration,
    /// The person's authorization (browser) step.
    Authorization,
    /// The token endpoint: exchanging a grant or refreshing.
    Token,
    /// Reading or writing the token store.
    Store,
}

impl AuthStep {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthStep::Metadata => "metadata",
            AuthStep::Registration => "registration",
            AuthStep::Authorization => "authorization",
            AuthStep::Token => "token",
            AuthStep::Store => "store",
        }
    }
}

impl std::fmt::Display for AuthStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed sign-in step. Display: `sign-in failed at token: invalid_client (Invalid
/// client credentials)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthFailure {
    pub step: AuthStep,
    /// The authorization server's `error` code (RFC 6749 section 5.2), when it sent one.
    #[serde(default)]
    pub error: Option<String>,
    /// The authorization server's `error_description`, when it sent one.
    #[serde(default)]
    pub error_description: Option<String>,
    /// Our own words for what happened when the server sent no `error` (an HTTP status, a
    /// connection failure, a missing metadata field).
    #[serde(default)]
    pub detail: Option<String>,
    /// Only a person can fix it by signing in (`switchboard auth login`); retrying as is
    /// will not help.
    #[serde(default)]
    pub needs_login: bool,
}

impl AuthFailure {
    /// A failure at `step` described in our own words.
    pub fn new(step: AuthStep, detail: impl Into<String>) -> Self {
        AuthFailure {
            step,
            error: None,
            error_description: None,
            detail: Some(detail.into()),
            needs_login: false,
        }
    }

    /// A failure at `step` with the authorization server's `error` and `error_description`
    /// (capped, control characters dropped) and our `detail` (e.g. `HTTP 401`).
    pub fn from_server(
        step: AuthStep,
        error: Option<&str>,
        description: Option<&str>,
        detail: impl Into<String>,
    ) -> Self {
        AuthFailure {
            step,
            error: error.map(|e| clean(e, MAX_ERROR)).filter(|e| !e.is_empty()),
            error_description: description
                .map(|d| clean(d, MAX_DESCRIPTION))
                .filter(|d| !d.is_empty()),
            detail: Some(detail.into()),
            needs_login: false,
        }
    }

    /// The same failure, saying whether a person has to sign in.
    pub fn needing_login(mut self, needs_login: bool) -> Self {
        self.needs_login = needs_login;
        self
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sign-in failed at {}", self.step)?;
        match (&self.error, &self.error_description, &self.detail) {
            (Some(error), Some(description), _) => write!(f, ": {error} ({description})")?,
            (Some(error), None, _) => write!(f, ": {error}")?,
            (None, Some(description), _) => write!(f, ": {description}")?,
            (None, None, Some(detail)) => write!(f, ": {detail}")?,
            (None, None, None) => {}
        }
        if self.needs_login {
            f.write_str("; sign in again")?;
        }
        Ok(())
    }
}

impl Error {
    /// What failed while signing in, for [`Error::SignIn`] (and a connection backing off
    /// after one); for a server's 401 with no sign-in attempted, a failure at
    /// `authorization` that needs a login.
    pub fn auth_failure(&self) -> Option<AuthFailure> {
        match self {
            Error::SignIn { failure, .. } => Some(failure.clone()),
            Error::Auth { status: 401, .. } => Some(
                AuthFailure::new(AuthStep::Authorization, "the server asks for a sign-in")
                    .needing_login(true),
            ),
            Error::Registration { source, .. } | Error::MayHaveRun { source } => {
                source.auth_failure()
            }
            // Waiting to reconnect after a failed sign-in: that failure.
            Error::BackingOff { last, .. } => last.as_ref()?.auth.clone(),
            _ => None,
        }
    }
}

/// At most `max` characters of `text`, without control characters.
fn clean(text: &str, max: usize) -> String {
    let kept: String = text.chars().filter(|c| !c.is_control()).collect();
    if kept.chars().count() <= max {
        kept
    } else {
        let mut cut: String = kept.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_texts_are_capped_and_cleaned() {
        let long = "x".repeat(1000);
        let failure = AuthFailure::from_server(
            AuthStep::Token,
            Some("invalid_client\n\u{1b}[31m"),
            Some(&long),
            "HTTP 401",
        );
        assert_eq!(failure.error.as_deref(), Some("invalid_client[31m"));
        assert_eq!(
            failure.error_description.as_ref().unwrap().chars().count(),
            300
        );
        assert!(
            failure
                .to_string()
                .starts_with("sign-in failed at token: invalid_client")
        );
    }

    #[test]
    fn display_falls_back_to_our_detail() {
        let failure = AuthFailure::new(AuthStep::Metadata, "HTTP 404 from the metadata URL")
            .needing_login(true);
        assert_eq!(
            failure.to_string(),
            "sign-in failed at metadata: HTTP 404 from the metadata URL; sign in again"
        );
    }
}
