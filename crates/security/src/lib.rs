//! The perimeter of the tributary services, one implementation for both of them and for both
//! protocols (gRPC and HTTP):
//!
//! - [`tls`]: rustls server configurations from PEM files, reloaded when the files change
//!   ([`reload`]), with client certificates verified against a CA bundle when asked;
//! - [`conn`]: accepting connections (the TLS handshake, bounded in time) and what a connection
//!   tells about its peer, carried into every request;
//! - [`authenticate`] and [`layer`]: who a request comes from (basic credentials against a users
//!   file of argon2id/bcrypt hashes, bearer JWTs against a JWKS, client certificates), decided by
//!   one tower layer around a whole server or router, so that no route or method can skip it;
//!   the caller's [`Principal`] goes into the request's extensions, for the authorization and
//!   audit that build on it;
//! - [`client`]: the other side, for a service calling another one (TLS that never falls back to
//!   cleartext, client certificates, call credentials), for tests and benchmarks;
//! - [`secret`]: secrets read from files or the environment, never printed;
//! - [`config`]: the command-line settings both services flatten in, secure by default.

pub mod authenticate;
pub mod authz;
pub mod client;
pub mod config;
pub mod conn;
pub mod jwt;
pub mod layer;
pub mod limits;
pub mod principal;
pub mod reload;
pub mod secret;
pub mod tls;
pub mod users;

pub use config::{SecurityArgs, ServerSecurity};
pub use principal::{AuthMethod, Principal};
pub use secret::Secret;
