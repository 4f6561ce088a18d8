//! Requests in flight per connection, which is what an idle connection lacks.
//!
//! A hyper-served server wraps each connection's service in [`WithActivity`], with the
//! connection's [`Activity`]. A tonic server (which inserts what its connections tell about
//! themselves into each request) serves [`Tracked`] connections and puts [`InFlightLayer`]
//! outermost: the layer takes the connection's [`TrackedInfo`] out of the request, puts back
//! the inner connection information (what the authentication layer reads), and counts the
//! request as in flight until its response body is done.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tonic::transport::server::Connected;

/// What a connection is doing: how many requests are in flight, and since when none is.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    /// Whether a request has ever started on the connection.
    started_any: AtomicBool,
    /// When the last request ended (or the connection opened), in milliseconds after `opened`.
    idle_since_ms: AtomicU64,
    opened: Instant,
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

impl Activity {
    pub fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            started_any: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(0),
            opened: Instant::now(),
        }
    }

    /// A request starts: it is in flight until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlightGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.started_any.store(true, Ordering::SeqCst);
        InFlightGuard {
            activity: Arc::clone(self),
        }
    }

    /// Whether a request has ever started on the connection (its first request's headers
    /// were read).
    pub fn started_any(&self) -> bool {
        self.started_any.load(Ordering::SeqCst)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Since when the connection has had no request in flight; `None` while one is.
    pub fn idle_since(&self) -> Option<Instant> {
        if self.in_flight() > 0 {
            return None;
        }
        let millis = self.idle_since_ms.load(Ordering::SeqCst);
        Some(self.opened + std::time::Duration::from_millis(millis))
    }
}

/// A request in flight on a connection; dropping it ends the request.
#[derive(Debug)]
pub struct InFlightGuard {
    activity: Arc<Activity>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let elapsed = self.activity.opened.elapsed().as_millis();
        self.activity
            .idle_since_ms
            .store(u64::try_from(elapsed).unwrap_or(u64::MAX), Ordering::SeqCst);
        self.activity.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection served by tonic that tells [`InFlightLayer`] its [`Activity`]: its connection
/// information is [`TrackedInfo`], the inner connection's plus the activity.
#[derive(Debug)]
pub struct Tracked<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO> Tracked<IO> {
    pub fn new(io: IO, activity: Arc<Activity>) -> Self {
        Self { io, activity }
    }
}

/// The connection information of a [`Tracked`] connection.
#[derive(Debug, Clone)]
pub struct TrackedInfo<T> {
    pub info: T,
    pub activity: Arc<Activity>,
}

impl<IO: Connected> Connected for Tracked<IO> {
    type ConnectInfo = TrackedInfo<IO::ConnectInfo>;

    fn connect_info(&self) -> Self::ConnectInfo {
        TrackedInfo {
            info: self.io.connect_info(),
            activity: Arc::clone(&self.activity),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The layer a tonic server puts outermost when it serves [`Tracked`] connections whose inner
/// connection information is `T`.
#[derive(Debug)]
pub struct InFlightLayer<T> {
    _info: PhantomData<fn() -> T>,
}

impl<T> InFlightLayer<T> {
    pub fn new() -> Self {
        Self { _info: PhantomData }
    }
}

impl<T> Default for InFlightLayer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for InFlightLayer<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<S, T> tower_layer::Layer<S> for InFlightLayer<T> {
    type Service = WithActivity<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        WithActivity {
            inner,
            activity: None,
            _info: PhantomData,
        }
    }
}

/// A service whose requests count as in flight on their connection's [`Activity`] until their
/// response body is done: the one given ([`WithActivity::new`]), or the one a [`Tracked`]
/// connection put into the request ([`InFlightLayer`]).
#[derive(Debug)]
pub struct WithActivity<S, T = ()> {
    inner: S,
    activity: Option<Arc<Activity>>,
    _info: PhantomData<fn() -> T>,
}

impl<S: Clone, T> Clone for WithActivity<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            activity: self.activity.clone(),
            _info: PhantomData,
        }
    }
}

impl<S> WithActivity<S> {
    /// `inner`, its requests counted on `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            activity: Some(activity),
            _info: PhantomData,
        }
    }
}

impl<S, T, B, ResBody> tower_service::Service<http::Request<B>> for WithActivity<S, T>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>,
    T: Clone + Send + Sync + 'static,
{
    type Response = http::Response<GuardedBody<ResBody>>;
    type Error = S::Error;
    type Future = InFlightFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let activity = match &self.activity {
            Some(activity) => Some(Arc::clone(activity)),
            None => request
                .extensions_mut()
                .remove::<TrackedInfo<T>>()
                .map(|tracked| {
                    request.extensions_mut().insert(tracked.info);
                    tracked.activity
                }),
        };
        InFlightFuture {
            inner: self.inner.call(request),
            guard: activity.map(|activity| activity.begin()),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`WithActivity`]: the request is in flight while it runs, and
    /// then while its body is sent.
    pub struct InFlightFuture<F> {
        #[pin]
        inner: F,
        guard: Option<InFlightGuard>,
    }
}

impl<F, ResBody, E> Future for InFlightFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<GuardedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let guard = this.guard.take();
        Poll::Ready(Ok(response.map(|inner| GuardedBody { inner, guard })))
    }
}

pin_project_lite::pin_project! {
    /// A response body whose request is in flight until the body is done or dropped.
    pub struct GuardedBody<B> {
        #[pin]
        inner: B,
        guard: Option<InFlightGuard>,
    }
}

impl<B: Body> Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if frame.is_none() {
            this.guard.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_is_in_flight_until_its_body_is_done() {
        let activity = Arc::new(Activity::new());
        let service = tower_service_fn(|_request: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::from("body")))
        });
        let mut service = WithActivity::new(service, Arc::clone(&activity));
        let future = tower_service::Service::call(&mut service, http::Request::new(()));
        assert_eq!(activity.in_flight(), 1);
        assert!(activity.idle_since().is_none());
        let response = future.await.expect("answered");
        assert_eq!(activity.in_flight(), 1, "the body is not sent yet");
        drop(response);
        assert_eq!(activity.in_flight(), 0);
        assert!(activity.idle_since().is_some());
    }

    #[tokio::test]
    async fn the_layer_takes_the_activity_a_tracked_connection_put_into_the_request() {
        let activity = Arc::new(Activity::new());
        let service = tower_service_fn(|request: http::Request<()>| async move {
            let info = request.extensions().get::<&'static str>().copied();
            Ok::<_, std::convert::Infallible>(http::Response::new(
                info.unwrap_or_default().to_owned(),
            ))
        });
        let mut service = tower_layer::Layer::layer(&InFlightLayer::<&'static str>::new(), service);
        let mut request = http::Request::new(());
        request.extensions_mut().insert(TrackedInfo {
            info: "inner",
            activity: Arc::clone(&activity),
        });
        let future = tower_service::Service::call(&mut service, request);
        assert_eq!(activity.in_flight(), 1);
        let response = future.await.expect("answered");
        assert_eq!(response.body().inner, "inner");
        drop(response);
        assert_eq!(activity.in_flight(), 0);
    }

    /// A tower service from a closure (tower's `service_fn`, without the dependency).
    fn tower_service_fn<F>(f: F) -> ServiceFn<F> {
        ServiceFn(f)
    }

    #[derive(Clone)]
    struct ServiceFn<F>(F);

    impl<F, Fut, R, Res, E> tower_service::Service<R> for ServiceFn<F>
    where
        F: FnMut(R) -> Fut,
        Fut: Future<Output = Result<Res, E>>,
    {
        type Response = Res;
        type Error = E;
        type Future = Fut;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), E>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: R) -> Fut {
            (self.0)(request)
        }
    }
}
