//! Per-principal limits, so that one tenant cannot starve the others: a request rate (a token
//! bucket per principal) and a number of streams open at once (Watch, Consume, ProduceStream),
//! from the principal's roles in the policy, or the service's defaults.
//!
//! One tower layer after authentication enforces both, for a whole server or router. Past the
//! rate: HTTP 429 with `Retry-After` and `{"error_code": 42901}`, gRPC `RESOURCE_EXHAUSTED`
//! naming the limit. Past the streams: the same codes, naming the stream limit. A stream's slot
//! is held until its response ends (or the client goes away).

use std::collections::HashSet;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::authz::{Authorizer, Limits};
use crate::layer::{AuthBody, Protocol, Refusal, refusal};
use crate::principal::Principal;

/// Confluent's error code for a request over a rate limit.
pub const RATE_LIMITED_CODE: u32 = 42901;

/// The gRPC methods (`/package.Service/Method`) of the services in `descriptor_sets` (encoded
/// `FileDescriptorSet`s) that stream in either direction.
pub fn streaming_methods(descriptor_sets: &[&[u8]]) -> HashSet<String> {
    use prost::Message;
    let mut streaming = HashSet::new();
    for encoded in descriptor_sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(*encoded) else {
            continue;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let name = service.name.unwrap_or_default();
                for method in service.method {
                    if method.client_streaming() || method.server_streaming() {
                        streaming.insert(format!(
                            "/{package}.{name}/{}",
                            method.name.unwrap_or_default()
                        ));
                    }
                }
            }
        }
    }
    streaming
}

/// One principal's buckets.
struct PrincipalState {
    limits: Limits,
    rate: Option<DefaultDirectRateLimiter>,
    streams: Option<Arc<Semaphore>>,
}

impl PrincipalState {
    fn new(limits: Limits) -> Self {
        let rate = limits
            .requests_per_second
            .and_then(NonZeroU32::new)
            .map(|rate| {
                let burst = limits.burst.and_then(NonZeroU32::new).unwrap_or(rate);
                RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
            });
        let streams = limits
            .concurrent_streams
            .map(|streams| Arc::new(Semaphore::new(streams as usize)));
        Self {
            limits,
            rate,
            streams,
        }
    }
}

/// The limits of every principal, kept while they are in use.
pub struct PrincipalLimits {
    authorizer: Arc<Authorizer>,
    states: moka::sync::Cache<String, Arc<PrincipalState>>,
    /// gRPC methods that stream (`/package.Service/Method`).
    streaming: HashSet<String>,
}

impl std::fmt::Debug for PrincipalLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrincipalLimits")
            .field("streaming", &self.streaming)
            .finish_non_exhaustive()
    }
}

impl PrincipalLimits {
    /// Limits from `authorizer`'s policy (and defaults); `streaming` are the gRPC paths that
    /// count as streams.
    pub fn new(authorizer: Arc<Authorizer>, streaming: HashSet<String>) -> Self {
        Self {
            authorizer,
            states: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
            streaming,
        }
    }

    /// The principal's buckets; `None` when it has no limit at all (the common case costs no
    /// lookup).
    fn state(&self, principal: &Principal) -> Option<Arc<PrincipalState>> {
        let limits = self.authorizer.limits(principal);
        if limits.requests_per_second.is_none() && limits.concurrent_streams.is_none() {
            return None;
        }
        let key = principal.key();
        if let Some(state) = self.states.get(&key)
            && state.limits == limits
        {
            return Some(state);
        }
        // New, or the policy changed its limits: fresh buckets.
        let state = Arc::new(PrincipalState::new(limits));
        self.states.insert(key, Arc::clone(&state));
        Some(state)
    }

    /// Admits a request of `principal` to `path`: `Ok` with the stream slot it holds (if it is a
    /// stream under a limit), or the refusal.
    fn admit(
        &self,
        principal: &Principal,
        path: &str,
    ) -> Result<Option<OwnedSemaphorePermit>, Refusal> {
        let Some(state) = self.state(principal) else {
            return Ok(None);
        };
        if let Some(rate) = &state.rate
            && let Err(not_until) = rate.check()
        {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return Err(Refusal::rate_limited(
                format!(
                    "principal '{}' is over its rate of {} requests per second",
                    principal.name,
                    state.limits.requests_per_second.unwrap_or_default()
                ),
                wait,
            ));
        }
        match &state.streams {
            Some(streams) if self.streaming.contains(path) => {
                match Arc::clone(streams).try_acquire_owned() {
                    Ok(permit) => Ok(Some(permit)),
                    Err(_) => Err(Refusal::rate_limited(
                        format!(
                            "principal '{}' has {} streams open, its limit",
                            principal.name,
                            state.limits.concurrent_streams.unwrap_or_default()
                        ),
                        Duration::from_secs(1),
                    )),
                }
            }
            _ => Ok(None),
        }
    }
}

/// Enforces [`PrincipalLimits`] on every request of the service it wraps (after
/// authentication).
#[derive(Debug, Clone)]
pub struct LimitLayer {
    limits: Arc<PrincipalLimits>,
    protocol: Protocol,
}

impl LimitLayer {
    pub fn new(limits: Arc<PrincipalLimits>, protocol: Protocol) -> Self {
        Self { limits, protocol }
    }
}

impl<S> tower_layer::Layer<S> for LimitLayer {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limited {
            inner,
            limits: Arc::clone(&self.limits),
            protocol: self.protocol,
        }
    }
}

/// The service of [`LimitLayer`].
#[derive(Debug, Clone)]
pub struct Limited<S> {
    inner: S,
    limits: Arc<PrincipalLimits>,
    protocol: Protocol,
}

impl<S, B, RB> tower_service::Service<Request<B>> for Limited<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
    RB: Body<Data = Bytes>,
{
    type Response = Response<AuthBody<Held<RB>>>;
    type Error = S::Error;
    type Future = LimitedFuture<S::Future, RB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let admitted = match request.extensions().get::<Principal>() {
            // Authentication is the layer before; what it let through without a principal of
            // its own (open services such as health, or everything with `--auth none`) is not
            // limited here.
            None => Ok(None),
            Some(principal) if principal.method == crate::principal::AuthMethod::Anonymous => {
                Ok(None)
            }
            Some(principal) => self.limits.admit(principal, request.uri().path()),
        };
        match admitted {
            Ok(permit) => LimitedFuture::Inner {
                future: self.inner.call(request),
                permit,
            },
            Err(refused) => LimitedFuture::Refused {
                response: Some(refusal(None, self.protocol, &refused)),
            },
        }
    }
}

pin_project! {
    /// The future of [`Limited`].
    #[project = LimitedProjection]
    pub enum LimitedFuture<F, RB> {
        Inner { #[pin] future: F, permit: Option<OwnedSemaphorePermit> },
        Refused { response: Option<Response<AuthBody<Held<RB>>>> },
    }
}

impl<F, RB, E> Future for LimitedFuture<F, RB>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<AuthBody<Held<RB>>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            LimitedProjection::Inner { future, permit } => {
                let response = std::task::ready!(future.poll(cx))?;
                let permit = permit.take();
                Poll::Ready(Ok(response.map(|body| AuthBody::Inner {
                    body: Held { body, permit },
                })))
            }
            LimitedProjection::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
        }
    }
}

pin_project! {
    /// A response body holding a stream's slot until it ends or is dropped.
    pub struct Held<B> {
        #[pin]
        body: B,
        permit: Option<OwnedSemaphorePermit>,
    }
}

impl<B: Body<Data = Bytes>> Body for Held<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            this.permit.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
