//! The request timeout of the HTTP API: a request (reading its body included) that takes
//! longer is answered with Confluent's 50002 (operation timed out), and whatever it was doing is
//! dropped, so a client that trickles its body, or a request stuck behind an unreachable
//! database, holds its connection for that long at most.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::Response;

use crate::http::error::error_response;

/// A service whose requests get at most `timeout` (none when `None`).
#[derive(Debug, Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    timeout: Option<Duration>,
}

impl<S> RequestTimeout<S> {
    pub fn new(inner: S, timeout: Option<Duration>) -> Self {
        Self { inner, timeout }
    }
}

impl<S, R> tower_service::Service<R> for RequestTimeout<S>
where
    S: tower_service::Service<R, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        Answer {
            answer: self.inner.call(request),
            deadline: self.timeout.map(tokio::time::sleep),
            timeout: self.timeout.unwrap_or_default(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer, or the timeout's.
    pub struct Answer<F> {
        #[pin]
        answer: F,
        #[pin]
        deadline: Option<tokio::time::Sleep>,
        timeout: Duration,
    }
}

impl<F> Future for Answer<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answered) = this.answer.poll(cx) {
            return Poll::Ready(answered);
        }
        let expired = this
            .deadline
            .as_pin_mut()
            .is_some_and(|deadline| deadline.poll(cx).is_ready());
        if expired {
            return Poll::Ready(Ok(timed_out(*this.timeout)));
        }
        Poll::Pending
    }
}

/// Confluent's answer to an operation that timed out: 500 with `error_code` 50002.
fn timed_out(timeout: Duration) -> Response {
    let mut response = error_response(
        500,
        50002,
        &format!(
            "the request did not complete within {} ms (--request-timeout-ms)",
            timeout.as_millis()
        ),
    );
    // Whatever was left of the request is not read: the connection closes after the answer.
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}
