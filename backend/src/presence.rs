//! Who is looking at which edge: signed-in browsers report their selection every
//! [`HEARTBEAT_S`] seconds (and when it changes); an entry not renewed within
//! [`EXPIRES_S`] is gone. Kept in memory only: it describes the present.

use std::collections::BTreeMap;
use std::sync::Mutex;

use graph_core::api::PresenceView;

/// How often browsers report, seconds.
pub const HEARTBEAT_S: i64 = 20;
/// An entry not renewed for this long is dropped, seconds.
pub const EXPIRES_S: i64 = 60;

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    display_name: String,
    edge: Option<String>,
    seen: i64,
}

/// The people looking, by account name.
#[derive(Debug, Default)]
pub struct Presence {
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl Presence {
    /// Records that `name` looks at `edge` (`caller>callee`, or nothing) at `now`;
    /// true when what others see changed.
    pub fn set(&self, name: &str, display_name: &str, edge: Option<String>, now: i64) -> bool {
        let mut e = self.entries.lock().expect("presence lock");
        let changed = e.get(name).is_none_or(|old| {
            old.edge != edge || old.display_name != display_name || old.seen + EXPIRES_S <= now
        });
        e.insert(
            name.to_string(),
            Entry {
                display_name: display_name.to_string(),
                edge,
                seen: now,
            },
        );
        changed
    }

    /// Drops entries not renewed in time; true when any went.
    pub fn sweep(&self, now: i64) -> bool {
        let mut e = self.entries.lock().expect("presence lock");
        let before = e.len();
        e.retain(|_, v| v.seen + EXPIRES_S > now);
        e.len() != before
    }

    /// Everyone present at `now`, by name.
    pub fn list(&self, now: i64) -> Vec<PresenceView> {
        self.entries
            .lock()
            .expect("presence lock")
            .iter()
            .filter(|(_, v)| v.seen + EXPIRES_S > now)
            .map(|(k, v)| PresenceView {
                name: k.clone(),
                display_name: v.display_name.clone(),
                edge: v.edge.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_change_on_a_new_edge_and_expire_without_heartbeats() {
        let p = Presence::default();
        assert!(p.set("bob", "Bob", Some("a>b".into()), 0));
        assert!(
            !p.set("bob", "Bob", Some("a>b".into()), 20),
            "a heartbeat changes nothing"
        );
        assert!(p.set("bob", "Bob", None, 30));
        assert!(p.set("ann", "Ann", Some("c>d".into()), 40));
        assert_eq!(
            p.list(41)
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            ["ann", "bob"]
        );
        assert!(p.sweep(95), "bob's last report was at 30");
        assert_eq!(p.list(95).len(), 1);
        assert!(!p.sweep(95));
    }
}
