//! Performance marks the browser benchmark reads (`performance.getEntriesByName`).

use std::cell::Cell;

thread_local! {
    static MARKED: Cell<bool> = const { Cell::new(false) };
}

/// Records `name` once per page load: the first time the graph is interactive.
pub fn mark_once(name: &str) {
    if MARKED.with(|m| m.replace(true)) {
        return;
    }
    if let Some(p) = web_sys::window().and_then(|w| w.performance())
        && let Err(e) = p.mark(name)
    {
        web_sys::console::warn_1(&e);
    }
}
