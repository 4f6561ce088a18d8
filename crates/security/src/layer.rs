//! The authentication layer: one tower layer for a whole gRPC server or HTTP router, so that no
//! route or method can be added without it. It puts the caller's [`Principal`](crate::Principal) into the request's
//! extensions, or answers the refusal itself:
//!
//! - gRPC: `UNAUTHENTICATED` (or `UNAVAILABLE` when the credentials cannot be checked now), with
//!   a `google.rpc.ErrorInfo` whose `metadata.error_code` is Confluent's 40101 (50003);
//! - HTTP: 401 with `WWW-Authenticate` challenges and a Confluent-shaped body
//!   `{"error_code": 40101, "message": ...}` (503 with `Retry-After` and 50003).
//!
//! A request whose credentials were verified before costs a hash of its `Authorization` header
//! and a cache lookup, with no allocation beyond the principal's reference counts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::authenticate::{Authenticator, Decision};
pub use crate::authenticate::{Refusal, RefusalKind};
use crate::conn::ConnectionInfo;

/// Confluent's error code for a request without valid credentials.
pub const UNAUTHORIZED_CODE: u32 = 40101;
/// Confluent's error code for a retriable failure.
pub const RETRIABLE_CODE: u32 = 50003;

/// How refusals are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC statuses.
    Grpc,
    /// HTTP statuses with a Confluent-shaped JSON body of this content type.
    Http { content_type: &'static str },
}

/// Authenticates every request of the service it wraps.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
    protocol: Protocol,
}

impl AuthLayer {
    pub fn new(authenticator: Arc<Authenticator>, protocol: Protocol) -> Self {
        Self {
            authenticator,
            protocol,
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            authenticator: Arc::clone(&self.authenticator),
            protocol: self.protocol,
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
    protocol: Protocol,
}

type Verifying<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, RB> tower_service::Service<Request<B>> for Authenticated<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<AuthBody<RB>>;
    type Error = S::Error;
    type Future = AuthFuture<S::Future, Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let decision = self.authenticator.check(
            request.headers(),
            request.extensions().get::<ConnectionInfo>(),
            request.uri().path(),
        );
        match decision {
            Decision::Allow(principal) => {
                request.extensions_mut().insert(principal);
                AuthFuture::Inner {
                    future: self.inner.call(request),
                }
            }
            Decision::Deny(refused) => AuthFuture::Refused {
                response: Some(refusal(
                    Some(self.authenticator.challenges()),
                    self.protocol,
                    &refused,
                )),
            },
            Decision::Verify(pending) => {
                // The ready service goes with the request; a clone takes its place.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let (authenticator, protocol) = (Arc::clone(&self.authenticator), self.protocol);
                AuthFuture::Verifying {
                    future: Box::pin(async move {
                        match authenticator.verify(pending).await {
                            Ok(principal) => {
                                request.extensions_mut().insert(principal);
                                let response = inner.call(request).await?;
                                Ok(response.map(|body| AuthBody::Inner { body }))
                            }
                            Err(refused) => Ok(refusal(
                                Some(authenticator.challenges()),
                                protocol,
                                &refused,
                            )),
                        }
                    }),
                }
            }
        }
    }
}

/// The refusal response for `protocol`: HTTP 401 (with `challenges` as `WWW-Authenticate`),
/// 503 or 429, or the gRPC status that goes with it, each with Confluent's error code.
pub fn refusal<RB>(
    challenges: Option<&[HeaderValue]>,
    protocol: Protocol,
    refused: &Refusal,
) -> Response<AuthBody<RB>> {
    let (code, error_code, reason) = match refused.kind {
        RefusalKind::Unauthenticated => (
            tonic::Code::Unauthenticated,
            UNAUTHORIZED_CODE,
            "UNAUTHENTICATED",
        ),
        RefusalKind::Unavailable => (tonic::Code::Unavailable, RETRIABLE_CODE, "UNAVAILABLE"),
        RefusalKind::RateLimited { .. } => (
            tonic::Code::ResourceExhausted,
            crate::limits::RATE_LIMITED_CODE,
            "RATE_LIMITED",
        ),
    };
    match protocol {
        Protocol::Grpc => {
            use tonic_types::{ErrorDetails, StatusExt};
            let mut details = ErrorDetails::with_error_info(
                reason,
                "tributary",
                [("error_code".to_owned(), error_code.to_string())],
            );
            if let RefusalKind::RateLimited { retry_after } = refused.kind {
                details.set_retry_info(Some(retry_after));
            }
            tonic::Status::with_error_details(code, refused.message.clone(), details)
                .into_http::<AuthBody<RB>>()
        }
        Protocol::Http { content_type } => {
            let body = serde_json::to_vec(&serde_json::json!({
                "error_code": error_code,
                "message": refused.message,
            }))
            .unwrap_or_default();
            let mut response = Response::new(AuthBody::Refusal {
                body: Some(Bytes::from(body)),
            });
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            match refused.kind {
                RefusalKind::Unauthenticated => {
                    *response.status_mut() = StatusCode::UNAUTHORIZED;
                    for challenge in challenges.unwrap_or_default() {
                        response
                            .headers_mut()
                            .append(WWW_AUTHENTICATE, challenge.clone());
                    }
                }
                RefusalKind::Unavailable => {
                    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    response
                        .headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
                }
                RefusalKind::RateLimited { retry_after } => {
                    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                    response
                        .headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
                }
            }
            response
        }
    }
}

pin_project! {
    /// The future of [`Authenticated`].
    #[project = AuthFutureProjection]
    pub enum AuthFuture<F, R, E> {
        /// Admitted at once: the inner service's future.
        Inner { #[pin] future: F },
        /// Refused at once.
        Refused { response: Option<R> },
        /// Credentials being verified, then the inner service.
        Verifying { future: Verifying<R, E> },
    }
}

impl<F, RB, E> Future for AuthFuture<F, Response<AuthBody<RB>>, E>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<AuthBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AuthFutureProjection::Inner { future } => future
                .poll(cx)
                .map(|result| result.map(|response| response.map(|body| AuthBody::Inner { body }))),
            AuthFutureProjection::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            AuthFutureProjection::Verifying { future } => future.as_mut().poll(cx),
        }
    }
}

pin_project! {
    /// A response body: the inner service's, or a refusal's.
    #[project = AuthBodyProjection]
    pub enum AuthBody<B> {
        Inner { #[pin] body: B },
        Refusal { body: Option<Bytes> },
    }
}

impl<B> Default for AuthBody<B> {
    fn default() -> Self {
        AuthBody::Refusal { body: None }
    }
}

impl<B: Body<Data = Bytes>> Body for AuthBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project() {
            AuthBodyProjection::Inner { body } => body.poll_frame(cx),
            AuthBodyProjection::Refusal { body } => {
                Poll::Ready(body.take().map(|bytes| Ok(Frame::data(bytes))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AuthBody::Inner { body } => body.is_end_stream(),
            AuthBody::Refusal { body } => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AuthBody::Inner { body } => body.size_hint(),
            AuthBody::Refusal { body } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |bytes| bytes.len() as u64))
            }
        }
    }
}
