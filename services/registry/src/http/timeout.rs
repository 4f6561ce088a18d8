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
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let answer = self.inner.call(request);
        let Some(timeout) = self.timeout else {
            return Box::pin(answer);
        };
        Box::pin(async move {
            match tokio::time::timeout(timeout, answer).await {
                Ok(answered) => answered,
                Err(_) => Ok(timed_out(timeout)),
            }
        })
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
