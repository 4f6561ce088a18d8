//! The replica's change listener: a Postgres LISTEN on the events channel whose events
//! invalidate this replica's caches and go out to `Watch` streams.
//!
//! When the listener loses its connection, events may be missed: the replica then stops trusting
//! its mutable caches (reads go to Postgres) until the listener is back, clears them, and sends
//! `Resync` to every watcher.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::events::Event;
use crate::registry::Registry;
use crate::store::EVENTS_CHANNEL;

/// Runs the replica's LISTEN loop until `stop` fires.
pub async fn run_listener(
    pool: PgPool,
    registry: Arc<Registry>,
    events: broadcast::Sender<Event>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = tokio::select! {
            () = stop.cancelled() => return,
            connected = connect(&pool) => match connected {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(error = %error, "event listener cannot connect; caches bypassed");
                    registry.set_caches_trusted(false);
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        backoff = Duration::from_millis(100);
        // Whatever happened while we were not listening is unknown: start from scratch.
        registry.clear_caches();
        registry.set_caches_trusted(true);
        let _ = events.send(Event::Resync);
        tracing::info!(channel = EVENTS_CHANNEL, "event listener connected");

        loop {
            let received = tokio::select! {
                () = stop.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<Event>(notification.payload()) {
                        Ok(event) => {
                            registry.apply_event(&event);
                            let _ = events.send(event);
                        }
                        Err(error) => {
                            tracing::warn!(error = %error, payload = notification.payload(), "unreadable event")
                        }
                    }
                }
                Ok(None) | Err(_) => {
                    tracing::warn!(
                        "event listener lost its connection; caches bypassed until it is back"
                    );
                    registry.set_caches_trusted(false);
                    registry.clear_caches();
                    let _ = events.send(Event::Resync);
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(EVENTS_CHANNEL).await?;
    Ok(listener)
}
