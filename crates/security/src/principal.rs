//! Who is calling: the [`Principal`] every authenticated request carries in its extensions, the
//! same whichever protocol (gRPC or HTTP) and method (basic, bearer JWT, client certificate)
//! authenticated it.

use std::fmt;
use std::sync::Arc;

/// How a principal was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// HTTP basic credentials checked against the users file.
    Basic,
    /// A bearer JWT verified against the JWKS.
    Bearer,
    /// A client certificate verified in the TLS handshake.
    Mtls,
    /// Authentication is off (`--auth none`), or an open service (health, reflection): the
    /// anonymous principal.
    Anonymous,
    /// No principal: the request did not pass authentication. Granted nothing.
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Basic => "basic",
            AuthMethod::Bearer => "bearer",
            AuthMethod::Mtls => "mtls",
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::None => "none",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user name, the JWT's principal claim, or the certificate's mapped name.
    pub name: Arc<str>,
    pub method: AuthMethod,
    /// Groups the identity provider put in the JWT (its groups claim); empty otherwise.
    pub groups: Arc<[String]>,
    /// What the authorizer granted this principal, remembered with it: a credential verified
    /// once is one `Principal` cloned into every request it makes, so the policy is consulted
    /// once per policy version, not once per request.
    pub(crate) grants: Arc<arc_swap::ArcSwapOption<crate::authz::Remembered>>,
}

/// Two principals are the same whatever they remember.
impl PartialEq for Principal {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.method == other.method && self.groups == other.groups
    }
}

impl Eq for Principal {}

impl Principal {
    pub fn new(name: impl Into<Arc<str>>, method: AuthMethod) -> Self {
        Self::with_groups(name, method, Arc::new([]))
    }

    /// A principal with groups (a JWT's groups claim).
    pub fn with_groups(
        name: impl Into<Arc<str>>,
        method: AuthMethod,
        groups: Arc<[String]>,
    ) -> Self {
        Self {
            name: name.into(),
            method,
            groups,
            grants: Arc::default(),
        }
    }

    /// The principal of every request when authentication is off.
    pub fn anonymous() -> Self {
        Self::new("anonymous", AuthMethod::Anonymous)
    }

    /// No principal at all (a request that did not pass authentication): granted nothing.
    pub fn unauthenticated() -> Self {
        Self::new("", AuthMethod::None)
    }

    /// A key naming this principal with everything its grants depend on (name, method, groups).
    pub fn key(&self) -> String {
        let mut key = format!("{}\u{0}{}", self.method.as_str(), self.name);
        for group in self.groups.iter() {
            key.push('\u{0}');
            key.push_str(group);
        }
        key
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.method)
    }
}
