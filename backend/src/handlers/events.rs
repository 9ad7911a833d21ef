//! `GET /api/v1/events`: server-sent events, so browsers follow new ticks without
//! polling.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::analysis::ServerEvent;

/// A `tick` event with a [`graph_core::api::TickEvent`] body each time a tick is
/// analysed, a `mark` event with a [`graph_core::api::MarkEvent`] when a mark is made or
/// changed; a comment every 15 s keeps proxies from closing the stream. A listener
/// that falls behind gets a `lagged` event and then the newest ticks.
pub async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.analyzer.events.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(ServerEvent::Tick(e)) => json_event("tick", &e).id(e.tick.to_string()),
            Ok(ServerEvent::Mark(e)) => json_event("mark", &e),
            Ok(ServerEvent::Presence(list)) => json_event("presence", &list),
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// An event named `name` carrying `data` as JSON. These bodies always serialise; were one
/// not to, the page still hears that something happened (and fetches it), and the log
/// says why the body is missing.
fn json_event(name: &'static str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|e| {
            tracing::error!(event = name, error = %e, "an event body could not be written");
            Event::default().event(name)
        })
}
