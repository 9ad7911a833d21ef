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
            Ok(ServerEvent::Tick(e)) => Event::default()
                .event("tick")
                .id(e.tick.to_string())
                .json_data(e)
                .unwrap_or_else(|_| Event::default().event("tick")),
            Ok(ServerEvent::Mark(e)) => Event::default()
                .event("mark")
                .json_data(e)
                .unwrap_or_else(|_| Event::default().event("mark")),
            Ok(ServerEvent::Presence(list)) => Event::default()
                .event("presence")
                .json_data(list)
                .unwrap_or_else(|_| Event::default().event("presence")),
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
