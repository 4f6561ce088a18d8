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
    /// Authentication is off (`--auth none`): every caller is the anonymous principal.
    Anonymous,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Basic => "basic",
            AuthMethod::Bearer => "bearer",
            AuthMethod::Mtls => "mtls",
            AuthMethod::Anonymous => "anonymous",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name, the JWT's principal claim, or the certificate's mapped name.
    pub name: Arc<str>,
    pub method: AuthMethod,
    /// Groups the identity provider put in the JWT (its groups claim); empty otherwise.
    pub groups: Arc<[String]>,
}

impl Principal {
    pub fn new(name: impl Into<Arc<str>>, method: AuthMethod) -> Self {
        Self {
            name: name.into(),
            method,
            groups: Arc::new([]),
        }
    }

    /// The principal of every request when authentication is off.
    pub fn anonymous() -> Self {
        Self::new("anonymous", AuthMethod::Anonymous)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.method)
    }
}
