//! `Connection: close` on answers given before the request's body was read to its end.
//!
//! A handler may answer without reading the body: 413 over the size limit, 415, 406, an unknown
//! route. hyper then closes the HTTP/1.1 connection after the answer (the unread rest of the
//! body would otherwise be taken for the next request), but without saying so. A client that
//! pools connections sends its next request on the closing connection and gets a broken
//! connection instead of an answer. [`CloseUnreadLayer`] says `Connection: close` on such
//! answers, so the client opens a new connection for its next request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes};
use axum::http::header::CONNECTION;
use axum::http::{HeaderValue, Request, Version};
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// Wraps a service so that its answers to requests whose bodies it did not read to their end
/// say `Connection: close`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloseUnreadLayer;

impl<S> tower_layer::Layer<S> for CloseUnreadLayer {
    type Service = CloseUnread<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CloseUnread { inner }
    }
}

/// The service of [`CloseUnreadLayer`].
#[derive(Debug, Clone)]
pub struct CloseUnread<S> {
    inner: S,
}

impl<S, ResBody> tower_service::Service<Request<Body>> for CloseUnread<S>
where
    S: tower_service::Service<Request<Body>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = CloseUnreadFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // Not tracked: requests without a body (most: the reads), and HTTP/2, whose streams end
        // on their own (and where a `Connection` header is not allowed).
        if request.version() >= Version::HTTP_2 || http_body::Body::is_end_stream(request.body()) {
            return CloseUnreadFuture {
                future: self.inner.call(request),
                read: None,
            };
        }
        let (parts, body) = request.into_parts();
        let read = Arc::new(AtomicBool::new(false));
        let body = Body::new(TrackedBody {
            inner: body,
            read: Arc::clone(&read),
        });
        CloseUnreadFuture {
            future: self.inner.call(Request::from_parts(parts, body)),
            read: Some(read),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`CloseUnread`].
    pub struct CloseUnreadFuture<F> {
        #[pin]
        future: F,
        // Whether the request body was read to its end (`None`: not tracked).
        read: Option<Arc<AtomicBool>>,
    }
}

impl<F, ResBody, E> Future for CloseUnreadFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.future.poll(cx))?;
        if this
            .read
            .as_ref()
            .is_some_and(|read| !read.load(Ordering::Acquire))
        {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(response))
    }
}

/// A request body that notes when it has been read to its end.
struct TrackedBody {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        polled
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
    use axum::Router;
    use axum::routing::post;
    use tower_service::Service;

    use super::*;

    fn app() -> Router {
        Router::new()
            .route(
                "/read",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .route("/ignore", post(|| async { "not read" }))
            .layer(CloseUnreadLayer)
    }

    async fn connection_header_over(
        version: Version,
        path: &str,
        body: &'static str,
    ) -> Option<HeaderValue> {
        let request = Request::post(path)
            .version(version)
            .body(Body::from(body))
            .expect("a request");
        let response = app().call(request).await.expect("infallible");
        response.headers().get(CONNECTION).cloned()
    }

    async fn connection_header(path: &str, body: &'static str) -> Option<HeaderValue> {
        connection_header_over(Version::HTTP_11, path, body).await
    }

    #[tokio::test]
    async fn answers_to_unread_bodies_close_the_connection() {
        assert_eq!(
            connection_header("/ignore", "a body").await,
            Some(HeaderValue::from_static("close"))
        );
        assert_eq!(
            connection_header("/unknown", "a body").await,
            Some(HeaderValue::from_static("close"))
        );
    }

    #[tokio::test]
    async fn http2_answers_never_say_it() {
        assert_eq!(
            connection_header_over(Version::HTTP_2, "/ignore", "a body").await,
            None
        );
    }

    #[tokio::test]
    async fn answers_to_read_or_empty_bodies_keep_it() {
        assert_eq!(connection_header("/read", "a body").await, None);
        assert_eq!(connection_header("/ignore", "").await, None);
    }
}
