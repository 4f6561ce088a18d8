//! The request timeout of an HTTP API: a request (reading its body included) that takes longer
//! is answered with the API's own timeout answer ([`TimedOut`]), and whatever it was doing is
//! dropped, so a client that trickles its body, or a request stuck behind an unreachable
//! dependency, holds its connection for that long at most.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::Response;

/// How an API answers a request that ran out of time: the Confluent-shaped status and error
/// code (the message names the limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    pub status: u16,
    pub error_code: u32,
    pub content_type: &'static str,
}

/// A service whose requests get at most `timeout` (none when `None`).
#[derive(Debug, Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    timeout: Option<Duration>,
    answer: TimedOut,
}

impl<S> RequestTimeout<S> {
    pub fn new(inner: S, timeout: Option<Duration>, answer: TimedOut) -> Self {
        Self {
            inner,
            timeout,
            answer,
        }
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
            timed_out: self.answer,
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
        timed_out: TimedOut,
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
            return Poll::Ready(Ok(timed_out(*this.timed_out, *this.timeout)));
        }
        Poll::Pending
    }
}

/// The answer to a request that ran out of time.
fn timed_out(answer: TimedOut, timeout: Duration) -> Response {
    let mut response = crate::error_response(
        answer.status,
        answer.error_code,
        answer.content_type,
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
