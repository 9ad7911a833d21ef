//! The testbed's services and their call graph, as data: what each route of each service
//! does (CPU quota time, service time, downstream calls in steps), each caller's pool size
//! per callee, and the links that go through the delaying proxy. The orchestrator writes it,
//! with the ports it picked, to a plan file every service process reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One downstream call of a route step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSpec {
    /// The callee service.
    pub to: String,
    /// The callee's route.
    pub path: String,
    /// Probability that the call is made (a cache miss, an optional lookup).
    pub share: f64,
    /// Whether the handler fails when this call fails after its retries; a call that is
    /// not critical degrades the answer instead (recommendations, ads).
    pub critical: bool,
}

/// What a route does besides its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Only CPU, service time and calls.
    Plain,
    /// Appends an item to the service's in-memory queue (the broker).
    Enqueue,
    /// Takes up to 10 items from the queue and answers how many.
    Dequeue,
}

/// One route of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// Path, also the server span's `http.route`.
    pub path: String,
    /// CPU time per request, ms, spent holding one of the service's cpu slots.
    pub cpu_ms: f64,
    /// Service time outside the CPU quota (I/O wait), median ms; log-normal around it.
    pub wait_ms: f64,
    /// Extra service action.
    pub action: Action,
    /// Steps run one after the other; the calls of one step run concurrently.
    pub steps: Vec<Vec<CallSpec>>,
}

/// A background consumer: polls a queue and handles each item it gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    /// The dequeue call.
    pub poll: CallSpec,
    /// Time between polls, ms.
    pub interval_ms: u64,
    /// CPU time per item, ms (on a cpu slot).
    pub cpu_ms: f64,
    /// Steps per item.
    pub per_item: Vec<Vec<CallSpec>>,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// `service.name`, and the cluster name in Epicenter.
    pub name: String,
    /// Processes running it (each with its own quota, pools and port).
    pub instances: u32,
    /// The CPU quota: how many handlers may do CPU work at once.
    pub cpu_slots: u32,
    /// Requests served at once at most (a database's connection limit); others wait.
    pub max_concurrency: Option<u32>,
    /// Routes.
    pub routes: Vec<Route>,
    /// Connection-pool size per callee (slots of concurrent calls); others get [`DEFAULT_POOL`].
    pub pools: BTreeMap<String, u32>,
    /// A background consumer, if any.
    pub worker: Option<Worker>,
}

impl ServiceSpec {
    /// The pool size towards `callee`.
    pub fn pool(&self, callee: &str) -> u32 {
        self.pools.get(callee).copied().unwrap_or(DEFAULT_POOL)
    }

    /// Every callee of this service, sorted and without repeats.
    pub fn callees(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .routes
            .iter()
            .flat_map(|r| r.steps.iter().flatten())
            .chain(
                self.worker
                    .iter()
                    .flat_map(|w| std::iter::once(&w.poll).chain(w.per_item.iter().flatten())),
            )
            .map(|c| c.to.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Pool size towards a callee unless a service says otherwise.
pub const DEFAULT_POOL: u32 = 8;

/// Share of a route's CPU time that burns the machine's CPU for real; the rest of it the
/// handler holds its cpu slot while sleeping (see the README: the CPU-quota model).
pub const SPIN_SHARE: f64 = 0.1;

/// Retries, backoff and timeout of one caller towards one callee.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// Backoff before the first retry, ms; doubled for each later one, with jitter.
    pub backoff_ms: f64,
    /// Timeout of one attempt (waiting for a pool slot included), ms.
    pub timeout_ms: f64,
}

impl RetryPolicy {
    /// The usual policy: two retries from 25 ms, 800 ms per attempt.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        retries: 2,
        backoff_ms: 25.0,
        timeout_ms: 800.0,
    };
}

fn call(to: &str, path: &str) -> CallSpec {
    CallSpec {
        to: to.into(),
        path: path.into(),
        share: 1.0,
        critical: true,
    }
}

fn maybe(to: &str, path: &str, share: f64) -> CallSpec {
    CallSpec {
        share,
        ..call(to, path)
    }
}

fn optional(to: &str, path: &str) -> CallSpec {
    CallSpec {
        critical: false,
        ..call(to, path)
    }
}

fn route(path: &str, cpu_ms: f64, wait_ms: f64, steps: Vec<Vec<CallSpec>>) -> Route {
    Route {
        path: path.into(),
        cpu_ms,
        wait_ms,
        action: Action::Plain,
        steps,
    }
}

fn service(name: &str, cpu_slots: u32, routes: Vec<Route>) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        instances: 1,
        cpu_slots,
        max_concurrency: None,
        routes,
        pools: BTreeMap::new(),
        worker: None,
    }
}

fn pools(s: ServiceSpec, p: &[(&str, u32)]) -> ServiceSpec {
    ServiceSpec {
        pools: p.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        ..s
    }
}

/// The front service the load generator calls.
pub const FRONT: &str = "gateway";

/// The front's routes and the share of load each gets.
pub const FRONT_MIX: [(&str, f64); 3] = [("/home", 0.6), ("/checkout", 0.2), ("/search", 0.2)];

/// The services of the testbed (15, two of them with two instances): an edge gateway; a
/// page handler fanning out to four services at once; a cache shared by six services; a
/// slow database behind small pools and its own connection limit; an order flow that
/// enqueues to a broker whose worker writes to the database.
///
/// ```text
/// loadgen -> gateway -> auth -> cache, db
///                    -> home => catalog, recommend, profile, ads   (concurrently)
///                    -> search -> cache, catalog
///                    -> checkout -> inventory -> db
///                                -> payments (x2)
///                                -> queue <- worker -> db, cache
/// catalog, profile -> cache (x2), db;  recommend -> cache
/// ```
pub fn services() -> Vec<ServiceSpec> {
    let gateway = service(
        "gateway",
        4,
        vec![
            route(
                "/home",
                0.5,
                0.5,
                vec![vec![call("auth", "/verify")], vec![call("home", "/page")]],
            ),
            route(
                "/checkout",
                0.5,
                0.5,
                vec![
                    vec![call("auth", "/verify")],
                    vec![call("checkout", "/order")],
                ],
            ),
            route("/search", 0.5, 0.5, vec![vec![call("search", "/query")]]),
        ],
    );
    let auth = pools(
        service(
            "auth",
            2,
            vec![route(
                "/verify",
                1.0,
                0.5,
                vec![
                    vec![call("cache", "/get")],
                    vec![maybe("db", "/query", 0.2)],
                ],
            )],
        ),
        &[("db", 2)],
    );
    let home = service(
        "home",
        2,
        vec![route(
            "/page",
            1.0,
            1.0,
            vec![vec![
                call("catalog", "/items"),
                optional("recommend", "/for-user"),
                call("profile", "/get"),
                optional("ads", "/pick"),
            ]],
        )],
    );
    let catalog = pools(
        service(
            "catalog",
            2,
            vec![route(
                "/items",
                2.0,
                1.0,
                vec![
                    vec![call("cache", "/get")],
                    vec![call("db", "/query")],
                    vec![call("db", "/query")],
                    vec![call("db", "/query")],
                ],
            )],
        ),
        &[("db", 3)],
    );
    let recommend = service(
        "recommend",
        1,
        vec![route(
            "/for-user",
            6.0,
            2.0,
            vec![vec![call("cache", "/get")]],
        )],
    );
    let profile = pools(
        service(
            "profile",
            2,
            vec![route(
                "/get",
                1.0,
                1.0,
                vec![
                    vec![call("cache", "/get")],
                    vec![call("db", "/query")],
                    vec![maybe("db", "/query", 0.5)],
                ],
            )],
        ),
        &[("db", 3)],
    );
    let ads = service("ads", 1, vec![route("/pick", 3.0, 2.0, vec![])]);
    let search = service(
        "search",
        2,
        vec![route(
            "/query",
            3.0,
            2.0,
            vec![vec![call("cache", "/get")], vec![call("catalog", "/items")]],
        )],
    );
    let checkout = service(
        "checkout",
        2,
        vec![route(
            "/order",
            1.5,
            1.0,
            vec![
                vec![call("inventory", "/reserve")],
                vec![call("payments", "/charge")],
                vec![call("queue", "/enqueue")],
            ],
        )],
    );
    let inventory = pools(
        service(
            "inventory",
            1,
            vec![route(
                "/reserve",
                1.0,
                0.5,
                vec![vec![call("db", "/query")], vec![call("db", "/write")]],
            )],
        ),
        &[("db", 2)],
    );
    let payments = ServiceSpec {
        instances: 2,
        // An external processor answers in about 8 ms.
        ..service("payments", 2, vec![route("/charge", 1.0, 8.0, vec![])])
    };
    let queue = service(
        "queue",
        1,
        vec![
            Route {
                action: Action::Enqueue,
                ..route("/enqueue", 0.3, 0.2, vec![])
            },
            Route {
                action: Action::Dequeue,
                ..route("/dequeue", 0.3, 0.2, vec![])
            },
        ],
    );
    let worker = ServiceSpec {
        worker: Some(Worker {
            poll: call("queue", "/dequeue"),
            interval_ms: 250,
            cpu_ms: 1.0,
            per_item: vec![vec![call("db", "/write")], vec![call("cache", "/set")]],
        }),
        ..pools(service("worker", 1, vec![]), &[("db", 2)])
    };
    let cache = ServiceSpec {
        instances: 2,
        ..service(
            "cache",
            2,
            vec![
                route("/get", 0.3, 0.2, vec![]),
                route("/set", 0.3, 0.2, vec![]),
            ],
        )
    };
    let db = ServiceSpec {
        max_concurrency: Some(4),
        ..service(
            "db",
            2,
            vec![
                route("/query", 1.0, 6.0, vec![]),
                route("/write", 1.5, 8.0, vec![]),
            ],
        )
    };
    vec![
        gateway, auth, home, catalog, recommend, profile, ads, search, checkout, inventory,
        payments, queue, worker, cache, db,
    ]
}

/// Links that reach their callee through the orchestrator's delaying proxy, as
/// `(caller, callee)`. Their delay is zero until a `proxy_delay` fault. Each callee has
/// other callers: with the callers' view of latency alone, a delay on the only link
/// into a service cannot be told from the service being slow (ACCURACY.md, blind spots).
pub const PROXIED_LINKS: [(&str, &str); 3] = [
    ("search", "catalog"),
    ("profile", "db"),
    ("inventory", "db"),
];

/// Where each service instance listens and where each proxied link goes: what every
/// service process reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The services.
    pub services: Vec<ServiceSpec>,
    /// Instance id -> `host:port`, per service, in instance order.
    pub instances: BTreeMap<String, Vec<(String, String)>>,
    /// `caller>callee` -> the proxy's `host:port`.
    pub proxies: BTreeMap<String, String>,
    /// Epicenter's base URL for the OTLP exporter.
    pub epicenter: String,
    /// The ingest token the exporters send.
    pub token: String,
    /// The batch exporter's schedule delay, ms.
    pub export_delay_ms: u64,
}

impl Plan {
    /// The spec of `service`.
    pub fn service(&self, service: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == service)
    }

    /// The addresses `caller` sends calls to `callee` to, in round-robin order.
    pub fn targets(&self, caller: &str, callee: &str) -> Vec<String> {
        if let Some(p) = self.proxies.get(&format!("{caller}>{callee}")) {
            return vec![p.clone()];
        }
        self.instances
            .get(callee)
            .map(|v| v.iter().map(|(_, a)| a.clone()).collect())
            .unwrap_or_default()
    }
}

/// Instance ids of `spec`: `name-1`, `name-2`, ...
pub fn instance_ids(spec: &ServiceSpec) -> Vec<String> {
    (1..=spec.instances)
        .map(|i| format!("{}-{i}", spec.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_is_closed_and_realistic() {
        let s = services();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert!(names.len() >= 12, "{names:?}");
        // Every callee exists, and no service calls itself.
        for spec in &s {
            for c in spec.callees() {
                assert!(
                    names.contains(&c.as_str()),
                    "{} calls unknown {c}",
                    spec.name
                );
                assert_ne!(c, spec.name);
            }
            for r in &spec.routes {
                for step in &r.steps {
                    for c in step {
                        let callee = s.iter().find(|x| x.name == c.to).unwrap();
                        assert!(
                            callee.routes.iter().any(|cr| cr.path == c.path),
                            "{} calls {}{} which has no such route",
                            spec.name,
                            c.to,
                            c.path
                        );
                    }
                }
            }
        }
        // A fan-out of at least three concurrent calls, a shared cache, two instances.
        assert!(
            s.iter()
                .flat_map(|x| &x.routes)
                .any(|r| r.steps.iter().any(|st| st.len() >= 3))
        );
        let cache_callers = s
            .iter()
            .filter(|x| x.callees().contains(&"cache".to_string()))
            .count();
        assert!(cache_callers >= 3);
        assert!(s.iter().any(|x| x.instances == 2));
        for (a, b) in PROXIED_LINKS {
            let caller = s.iter().find(|x| x.name == a).unwrap();
            assert!(caller.callees().contains(&b.to_string()));
            // A proxy forwards to one address: its callee has one instance.
            assert_eq!(s.iter().find(|x| x.name == b).unwrap().instances, 1);
            // And other callers, which see no delay.
            let callers = s
                .iter()
                .filter(|x| x.callees().contains(&b.to_string()))
                .count();
            assert!(callers >= 2, "{b} has {callers} callers");
        }
        assert!(FRONT_MIX.iter().map(|(_, w)| w).sum::<f64>() - 1.0 < 1e-9);
    }
}
