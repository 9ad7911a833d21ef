//! Layered left-to-right layout: callers on the left, callees on the right.
//!
//! [`layout`] follows the Sugiyama scheme:
//!
//! 1. **cycles** are broken by reversing the back edges of a depth-first search that
//!    starts from the callers (sources), so most calls point right;
//! 2. **layers**: longest path from the callers ([`Layering::LongestPath`]), or for the
//!    full graph one band of layers per tier, left to right in the configured tier
//!    order, with longest-path layers inside each band ([`Layering::Tiers`]);
//! 3. edges spanning several layers get a dummy point per layer they pass;
//! 4. **crossing reduction**: alternating barycenter sweeps, keeping the order with the
//!    fewest crossings; with [`LayoutConfig::group_by_dc`] each layer keeps one block
//!    per data centre;
//! 5. **coordinates**: x from the layer; y as close as possible to a target (the
//!    previous position of the node, else the mean of its neighbours) while keeping the
//!    minimum spacing, solved exactly per layer by isotonic regression.
//!
//! Given the previous tick's [`Layout`], the initial order follows the previous
//! positions and surviving nodes are pulled to where they were, so a graph that changes
//! a little between ticks barely moves; the layers are shifted to match the old ones.
//!
//! ```
//! use graph_core::layout::{layout, LayoutConfig};
//! use graph_core::model::{ClusterCatalog, ClusterId, EdgeKey};
//!
//! let e = |a, b| EdgeKey { src: ClusterId(a), dst: ClusterId(b) };
//! let edges = [e(0, 1), e(1, 2), e(2, 0)]; // a cycle
//! let l = layout(&[], &edges, &ClusterCatalog::new(), None, &LayoutConfig::default());
//! let x = |c| l.node(ClusterId(c)).unwrap().x;
//! assert!(x(0) < x(1) && x(1) < x(2));
//! assert_eq!(l.edges.iter().filter(|r| r.reversed).count(), 1);
//! ```

use serde::{Deserialize, Serialize};

use crate::graph::dag;
use crate::model::{ClusterCatalog, ClusterId, EdgeKey};

/// How nodes are assigned to layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layering {
    /// Longest path from the callers: every call points right.
    LongestPath,
    /// One band of layers per tier, in [`LayoutConfig::tier_order`]; clusters with
    /// another or no tier form the last band.
    Tiers,
}

/// Options of [`layout`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayoutConfig {
    /// Layer assignment.
    pub layering: Layering,
    /// Tier names, left to right, for [`Layering::Tiers`].
    pub tier_order: Vec<String>,
    /// Keep the clusters of one data centre together within each layer.
    pub group_by_dc: bool,
    /// Horizontal distance between layers.
    pub layer_gap: f64,
    /// Vertical distance between neighbouring nodes of a layer.
    pub node_gap: f64,
    /// Vertical room of an edge passing through a layer.
    pub edge_gap: f64,
    /// Extra vertical room between data-centre blocks.
    pub group_gap: f64,
    /// Crossing-reduction sweeps (each is one pass down and one up), alternating
    /// barycenters and medians.
    pub sweeps: u32,
    /// With a previous layout, how strongly surviving nodes keep their previous place in
    /// the order during the sweeps (0: not at all; 1: as much as their neighbours count).
    pub stability: f64,
}

impl Default for LayoutConfig {
    fn default() -> Self {
        LayoutConfig {
            layering: Layering::LongestPath,
            tier_order: Vec::new(),
            group_by_dc: false,
            layer_gap: 240.0,
            node_gap: 48.0,
            edge_gap: 12.0,
            group_gap: 48.0,
            sweeps: 12,
            stability: 2.0,
        }
    }
}

impl LayoutConfig {
    /// Settings for the full graph: tiers left to right (front ends, APIs, services,
    /// proxies, caches, queues, storage), data centres in blocks.
    ///
    /// # Complexity
    ///
    /// O(1).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::layout::{LayoutConfig, Layering};
    /// let c = LayoutConfig::full_graph();
    /// assert_eq!(c.layering, Layering::Tiers);
    /// assert_eq!(c.tier_order.first().map(String::as_str), Some("frontend"));
    /// ```
    pub fn full_graph() -> Self {
        LayoutConfig {
            layering: Layering::Tiers,
            tier_order: [
                "frontend", "web", "api", "service", "logic", "proxy", "cache", "queue", "storage",
                "db",
            ]
            .map(String::from)
            .to_vec(),
            group_by_dc: true,
            ..LayoutConfig::default()
        }
    }
}

/// A point in layout coordinates: x grows to the right (callees), y downwards.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal.
    pub x: f64,
    /// Vertical.
    pub y: f64,
}

/// Where a cluster is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NodePlacement {
    /// The cluster.
    pub cluster: ClusterId,
    /// Its layer (may be negative after aligning with a previous layout).
    pub layer: i32,
    /// Its position within the layer, from the top, counting edge points.
    pub order: u32,
    /// Centre, horizontal.
    pub x: f64,
    /// Centre, vertical.
    pub y: f64,
}

/// How an edge is drawn: a polyline from the caller to the callee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeRoute {
    /// The edge.
    pub edge: EdgeKey,
    /// From the caller's centre through one point per layer passed to the callee's.
    pub points: Vec<Point>,
    /// True when the edge points left (it closes a cycle, or goes against the tiers).
    pub reversed: bool,
}

/// A layout: positions of nodes and routes of edges.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Layout {
    /// Nodes, by cluster.
    pub nodes: Vec<NodePlacement>,
    /// Edges, by edge (self-loops have a single repeated point).
    pub edges: Vec<EdgeRoute>,
    /// Number of layers.
    pub layers: u32,
    /// Crossings between neighbouring layers, counting edge points.
    pub crossings: u64,
    /// Top-left corner of the bounding box of all points.
    pub min: Point,
    /// Bottom-right corner.
    pub max: Point,
}

impl Layout {
    /// The placement of `cluster`.
    ///
    /// # Complexity
    ///
    /// O(log V).
    ///
    /// # Example
    ///
    /// ```
    /// use graph_core::layout::{layout, LayoutConfig};
    /// use graph_core::model::{ClusterCatalog, ClusterId};
    /// let l = layout(&[ClusterId(4)], &[], &ClusterCatalog::new(), None, &LayoutConfig::default());
    /// assert_eq!(l.node(ClusterId(4)).unwrap().layer, 0);
    /// assert!(l.node(ClusterId(5)).is_none());
    /// ```
    pub fn node(&self, cluster: ClusterId) -> Option<&NodePlacement> {
        self.nodes
            .binary_search_by_key(&cluster, |n| n.cluster)
            .ok()
            .map(|i| &self.nodes[i])
    }
}

/// Lays out `nodes` and `edges` (endpoints missing from `nodes` are added; repeated
/// edges are drawn once). `catalog` gives tiers and data centres; clusters it does not
/// know have neither. With `previous`, surviving nodes stay close to where they were.
///
/// # Complexity
///
/// O(S·(V' log V' + E' log V')) for S sweeps, V' nodes plus edge points and E' edge
/// segments; V' ≤ V + E·L for L layers.
///
/// # Example
///
/// ```
/// use graph_core::layout::{layout, LayoutConfig};
/// use graph_core::model::{ClusterCatalog, ClusterId, EdgeKey};
///
/// let e = |a, b| EdgeKey { src: ClusterId(a), dst: ClusterId(b) };
/// // 0 and 1 call 3 and 2 crosswise: the layout uncrosses them.
/// let edges = [e(0, 3), e(1, 2)];
/// let first = layout(&[], &edges, &ClusterCatalog::new(), None, &LayoutConfig::default());
/// assert_eq!(first.crossings, 0);
///
/// // One more caller: the others stay where they were.
/// let more = [e(0, 3), e(1, 2), e(5, 2)];
/// let next = layout(&[], &more, &ClusterCatalog::new(), Some(&first), &LayoutConfig::default());
/// for c in [0, 1, 2, 3] {
///     let (a, b) = (first.node(ClusterId(c)).unwrap(), next.node(ClusterId(c)).unwrap());
///     assert!((a.x - b.x).abs() < 1e-9 && (a.y - b.y).abs() <= 48.0);
/// }
/// ```
pub fn layout(
    nodes: &[ClusterId],
    edges: &[EdgeKey],
    catalog: &ClusterCatalog,
    previous: Option<&Layout>,
    config: &LayoutConfig,
) -> Layout {
    let mut ids: Vec<ClusterId> = nodes
        .iter()
        .copied()
        .chain(edges.iter().flat_map(|e| [e.src, e.dst]))
        .collect();
    ids.sort();
    ids.dedup();
    let mut keys: Vec<EdgeKey> = edges.to_vec();
    keys.sort();
    keys.dedup();
    let n = ids.len();
    if n == 0 {
        return Layout::default();
    }
    let index = |c: ClusterId| ids.binary_search(&c).unwrap_or(0) as u32;
    let pairs: Vec<(u32, u32)> = keys.iter().map(|e| (index(e.src), index(e.dst))).collect();
    let prev: Vec<Option<NodePlacement>> = ids
        .iter()
        .map(|&c| previous.and_then(|p| p.node(c)).copied())
        .collect();

    // Depth-first search order: previous placement first, then by id.
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by(|&a, &b| {
        let k = |v: u32| prev[v as usize].map(|p| (p.layer, p.order));
        match (k(a), k(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.cmp(&b),
        }
    });

    let cluster_attr = |c: ClusterId| ((c.0 as usize) < catalog.len()).then(|| catalog.get(c));
    let (layer, reversed) = match config.layering {
        Layering::LongestPath => {
            let back = dag::back_edges(n, &pairs, &order);
            let mut layer = dag::longest_path_layers(n, &pairs, &back);
            dag::pull_right(n, &pairs, &back, &mut layer);
            (layer, back)
        }
        Layering::Tiers => {
            let tier: Vec<usize> = ids
                .iter()
                .map(|&c| {
                    cluster_attr(c)
                        .and_then(|cl| cl.tier.as_deref())
                        .and_then(|t| config.tier_order.iter().position(|o| o == t))
                        .unwrap_or(config.tier_order.len())
                })
                .collect();
            tier_layers(n, &pairs, &order, &tier)
        }
    };

    // Data-centre groups: none first, then by name.
    let group: Vec<u32> = if config.group_by_dc {
        let mut dcs: Vec<&str> = ids
            .iter()
            .filter_map(|&c| cluster_attr(c).and_then(|cl| cl.dc.as_deref()))
            .collect();
        dcs.sort();
        dcs.dedup();
        ids.iter()
            .map(|&c| {
                cluster_attr(c)
                    .and_then(|cl| cl.dc.as_deref())
                    .and_then(|d| dcs.binary_search(&d).ok())
                    .map_or(0, |i| i as u32 + 1)
            })
            .collect()
    } else {
        vec![0; n]
    };

    // Align the layers with the previous layout.
    let mut shifts: Vec<i64> = (0..n)
        .filter_map(|v| prev[v].map(|p| i64::from(p.layer) - i64::from(layer[v])))
        .collect();
    shifts.sort_unstable();
    let shift = shifts.get(shifts.len() / 2).copied().unwrap_or(0);

    let mut g = Layered::build(n, &pairs, &reversed, &layer, &group);
    // Previous y of nodes and of the points of surviving edges.
    let mut prev_y: Vec<Option<f64>> = prev.iter().map(|p| p.map(|p| p.y)).collect();
    prev_y.resize(g.layer.len(), None);
    if let Some(p) = previous {
        let tolerance = 1e-6 * config.layer_gap.abs().max(1.0);
        for (e, key) in keys.iter().enumerate() {
            let Ok(i) = p.edges.binary_search_by_key(key, |r| r.edge) else {
                continue;
            };
            let chain = &g.chain[e];
            for &d in chain.iter().skip(1).take(chain.len().saturating_sub(2)) {
                let x = (i64::from(g.layer[d as usize]) + shift) as f64 * config.layer_gap;
                prev_y[d as usize] = p.edges[i]
                    .points
                    .iter()
                    .find(|pt| (pt.x - x).abs() < tolerance)
                    .map(|pt| pt.y);
            }
        }
    }
    g.initial_order(&prev_y, &ids);
    if config.stability > 0.0 {
        g.anchor = (0..g.layer.len())
            .map(|v| match prev_y[v] {
                Some(_) => f64::from(g.pos[v]),
                None => f64::NAN,
            })
            .collect();
        g.stability = config.stability;
    }
    let crossings = g.reduce_crossings(config.sweeps);
    let y = g.coordinates(&prev_y, config);

    let x_of = |l: u32| (i64::from(l) + shift) as f64 * config.layer_gap;
    let point = |v: usize| Point {
        x: x_of(g.layer[v]),
        y: y[v],
    };

    let placements: Vec<NodePlacement> = (0..n)
        .map(|v| NodePlacement {
            cluster: ids[v],
            layer: (i64::from(layer[v]) + shift) as i32,
            order: g.pos[v],
            x: x_of(layer[v]),
            y: y[v],
        })
        .collect();
    let routes: Vec<EdgeRoute> = keys
        .iter()
        .enumerate()
        .map(|(e, &key)| {
            let (a, b) = pairs[e];
            if a == b {
                return EdgeRoute {
                    edge: key,
                    points: vec![point(a as usize); 2],
                    reversed: false,
                };
            }
            let mut points: Vec<Point> = g.chain[e].iter().map(|&v| point(v as usize)).collect();
            if reversed[e] {
                points.reverse();
            }
            EdgeRoute {
                edge: key,
                points,
                reversed: reversed[e],
            }
        })
        .collect();

    let mut min = Point {
        x: f64::INFINITY,
        y: f64::INFINITY,
    };
    let mut max = Point {
        x: f64::NEG_INFINITY,
        y: f64::NEG_INFINITY,
    };
    for v in 0..g.layer.len() {
        let p = point(v);
        min.x = min.x.min(p.x);
        min.y = min.y.min(p.y);
        max.x = max.x.max(p.x);
        max.y = max.y.max(p.y);
    }
    Layout {
        nodes: placements,
        edges: routes,
        layers: g.layers.len() as u32,
        crossings,
        min,
        max,
    }
}

/// Tier bands: edges between tiers point from the earlier tier to the later one; edges
/// within a tier are layered by longest path inside the band.
fn tier_layers(
    n: usize,
    pairs: &[(u32, u32)],
    order: &[u32],
    tier: &[usize],
) -> (Vec<u32>, Vec<bool>) {
    let intra: Vec<usize> = (0..pairs.len())
        .filter(|&e| tier[pairs[e].0 as usize] == tier[pairs[e].1 as usize])
        .collect();
    let intra_pairs: Vec<(u32, u32)> = intra.iter().map(|&e| pairs[e]).collect();
    let back = dag::back_edges(n, &intra_pairs, order);
    let depth = dag::longest_path_layers(n, &intra_pairs, &back);
    let bands = tier.iter().copied().max().unwrap_or(0) + 1;
    let mut width = vec![0u32; bands];
    let mut used = vec![false; bands];
    for v in 0..n {
        width[tier[v]] = width[tier[v]].max(depth[v] + 1);
        used[tier[v]] = true;
    }
    let mut offset = vec![0u32; bands];
    let mut acc = 0;
    for t in 0..bands {
        offset[t] = acc;
        if used[t] {
            acc += width[t];
        }
    }
    let layer: Vec<u32> = (0..n).map(|v| offset[tier[v]] + depth[v]).collect();
    let mut reversed: Vec<bool> = pairs
        .iter()
        .map(|&(a, b)| tier[a as usize] > tier[b as usize])
        .collect();
    for (k, &e) in intra.iter().enumerate() {
        reversed[e] = back[k];
    }
    (layer, reversed)
}

/// The layered graph with edge points, in dense form.
struct Layered {
    /// Layer of every node (real nodes first, then edge points).
    layer: Vec<u32>,
    /// Data-centre block of every node.
    group: Vec<u32>,
    /// Ordering block of every node: data centre, then connected component. Nodes of
    /// different blocks never interleave within a layer.
    block: Vec<u64>,
    /// Real nodes.
    real: usize,
    /// Nodes of each layer, in the current order.
    layers: Vec<Vec<u32>>,
    /// Position of every node within its layer.
    pos: Vec<u32>,
    /// Predecessors and successors in CSR form.
    pred_start: Vec<usize>,
    pred: Vec<u32>,
    succ_start: Vec<usize>,
    succ: Vec<u32>,
    /// The nodes every edge passes, from its left end to its right end.
    chain: Vec<Vec<u32>>,
    /// Initial position of the nodes that were in the previous layout (NaN otherwise).
    anchor: Vec<f64>,
    /// Weight of the anchor against the barycenter.
    stability: f64,
}

impl Layered {
    fn build(
        n: usize,
        pairs: &[(u32, u32)],
        reversed: &[bool],
        layer: &[u32],
        group: &[u32],
    ) -> Self {
        let mut layer_of: Vec<u32> = layer.to_vec();
        let mut group_of: Vec<u32> = group.to_vec();
        let mut segments: Vec<(u32, u32)> = Vec::new();
        let mut chain = Vec::with_capacity(pairs.len());
        for (e, &(a, b)) in pairs.iter().enumerate() {
            if a == b {
                chain.push(vec![a]);
                continue;
            }
            let (s, t) = if reversed[e] { (b, a) } else { (a, b) };
            let (ls, lt) = (layer[s as usize], layer[t as usize]);
            let mut c = vec![s];
            let mut last = s;
            for l in ls + 1..lt {
                let d = layer_of.len() as u32;
                layer_of.push(l);
                let near_source = l - ls <= lt - l;
                group_of.push(if near_source {
                    group[s as usize]
                } else {
                    group[t as usize]
                });
                segments.push((last, d));
                c.push(d);
                last = d;
            }
            segments.push((last, t));
            c.push(t);
            chain.push(c);
        }
        let total = layer_of.len();
        let csr = |key: fn(&(u32, u32)) -> (u32, u32)| {
            let mut start = vec![0usize; total + 1];
            for s in &segments {
                start[key(s).0 as usize + 1] += 1;
            }
            for i in 0..total {
                start[i + 1] += start[i];
            }
            let mut fill = start.clone();
            let mut out = vec![0u32; segments.len()];
            for s in &segments {
                let (from, to) = key(s);
                out[fill[from as usize]] = to;
                fill[from as usize] += 1;
            }
            (start, out)
        };
        let (succ_start, succ) = csr(|&(a, b)| (a, b));
        let (pred_start, pred) = csr(|&(a, b)| (b, a));
        let depth = layer_of.iter().copied().max().map_or(0, |m| m as usize + 1);
        let mut layers = vec![Vec::new(); depth];
        for (v, &l) in layer_of.iter().enumerate() {
            layers[l as usize].push(v as u32);
        }
        Layered {
            layer: layer_of,
            block: group_of.iter().map(|&g| u64::from(g) << 32).collect(),
            group: group_of,
            real: n,
            pos: vec![0; total],
            layers,
            pred_start,
            pred,
            succ_start,
            succ,
            chain,
            anchor: Vec::new(),
            stability: 0.0,
        }
    }

    fn preds(&self, v: u32) -> &[u32] {
        &self.pred[self.pred_start[v as usize]..self.pred_start[v as usize + 1]]
    }

    fn succs(&self, v: u32) -> &[u32] {
        &self.succ[self.succ_start[v as usize]..self.succ_start[v as usize + 1]]
    }

    fn set_positions(&mut self, l: usize) {
        for (i, &v) in self.layers[l].iter().enumerate() {
            self.pos[v as usize] = i as u32;
        }
    }

    /// Orders each layer by previous y where known, else by the mean key of the
    /// predecessors, else after the others by id.
    fn initial_order(&mut self, prev: &[Option<f64>], ids: &[ClusterId]) {
        let mut key = vec![f64::NAN; self.layer.len()];
        let keyed_mean = |key: &[f64], nb: &[u32]| {
            mean(nb.iter().map(|&u| key[u as usize]).filter(|k| !k.is_nan()))
        };
        // Previous positions, carried right to new nodes, then left to new callers.
        for l in 0..self.layers.len() {
            for &v in &self.layers[l] {
                if let Some(k) = prev[v as usize].or_else(|| keyed_mean(&key, self.preds(v))) {
                    key[v as usize] = k;
                }
            }
        }
        for l in (0..self.layers.len()).rev() {
            for &v in &self.layers[l] {
                if key[v as usize].is_nan()
                    && let Some(k) = keyed_mean(&key, self.succs(v))
                {
                    key[v as usize] = k;
                }
            }
        }
        // The rest by their callers, else after the others by id.
        for l in 0..self.layers.len() {
            let mut next = f64::NEG_INFINITY;
            for &v in &self.layers[l] {
                if key[v as usize].is_nan()
                    && let Some(k) = keyed_mean(&key, self.preds(v))
                {
                    key[v as usize] = k;
                }
                if !key[v as usize].is_nan() {
                    next = next.max(key[v as usize]);
                }
            }
            let mut fresh: Vec<u32> = self.layers[l]
                .iter()
                .copied()
                .filter(|&v| key[v as usize].is_nan())
                .collect();
            fresh.sort_by_key(|&v| {
                if (v as usize) < self.real {
                    (0, ids[v as usize])
                } else {
                    (1, ClusterId(v))
                }
            });
            let base = if next.is_finite() { next + 1.0 } else { 0.0 };
            for (i, &v) in fresh.iter().enumerate() {
                key[v as usize] = base + i as f64;
            }
        }
        // With a previous layout, its order already keeps the parts apart, and
        // re-stacking them would move everything when two parts join.
        if prev.iter().all(Option::is_none) {
            self.assign_components(ids);
        }
        for l in 0..self.layers.len() {
            let block = &self.block;
            self.layers[l].sort_by(|&a, &b| {
                block[a as usize]
                    .cmp(&block[b as usize])
                    .then(key[a as usize].total_cmp(&key[b as usize]))
                    .then(a.cmp(&b))
            });
            self.set_positions(l);
        }
    }

    /// Splits the blocks by connected component, so that unrelated parts of the graph
    /// are stacked instead of interleaved, larger parts first.
    fn assign_components(&mut self, ids: &[ClusterId]) {
        let total = self.layer.len();
        let mut parent: Vec<u32> = (0..total as u32).collect();
        fn find(parent: &mut [u32], mut v: u32) -> u32 {
            while parent[v as usize] != v {
                parent[v as usize] = parent[parent[v as usize] as usize];
                v = parent[v as usize];
            }
            v
        }
        for u in 0..total as u32 {
            for i in self.succ_start[u as usize]..self.succ_start[u as usize + 1] {
                let (a, b) = (find(&mut parent, u), find(&mut parent, self.succ[i]));
                if a != b {
                    parent[a.max(b) as usize] = a.min(b);
                }
            }
        }
        // per root: (size, smallest cluster)
        let mut stats: std::collections::BTreeMap<u32, (u32, ClusterId)> =
            std::collections::BTreeMap::new();
        for v in 0..total as u32 {
            let r = find(&mut parent, v);
            let e = stats.entry(r).or_insert((0, ClusterId(u32::MAX)));
            e.0 += 1;
            if (v as usize) < self.real {
                e.1 = e.1.min(ids[v as usize]);
            }
        }
        let mut roots: Vec<(u32, (u32, ClusterId))> = stats.into_iter().collect();
        roots.sort_by(|a, b| {
            b.1.0
                .cmp(&a.1.0)
                .then(a.1.1.cmp(&b.1.1))
                .then(a.0.cmp(&b.0))
        });
        let mut rank = vec![0u32; total];
        for (i, (r, _)) in roots.iter().enumerate() {
            rank[*r as usize] = i as u32;
        }
        for v in 0..total as u32 {
            let r = find(&mut parent, v);
            self.block[v as usize] =
                (u64::from(self.group[v as usize]) << 32) | u64::from(rank[r as usize]);
        }
    }

    /// Swaps neighbours of a layer while that lowers the crossings with both adjacent
    /// layers (the "transpose" step), at most `passes` times over the graph.
    fn transpose(&mut self, passes: u32) {
        for _ in 0..passes {
            let mut improved = false;
            for l in 0..self.layers.len() {
                for i in 0..self.layers[l].len().saturating_sub(1) {
                    let (u, v) = (self.layers[l][i], self.layers[l][i + 1]);
                    if self.block[u as usize] != self.block[v as usize] {
                        continue;
                    }
                    let (keep, swap) = self.pair_crossings(u, v);
                    if swap < keep {
                        self.layers[l].swap(i, i + 1);
                        self.pos[u as usize] = i as u32 + 1;
                        self.pos[v as usize] = i as u32;
                        improved = true;
                    }
                }
            }
            if !improved {
                break;
            }
        }
    }

    /// Crossings among the edges of `u` and `v` with `u` above `v`, and with `v` above `u`.
    fn pair_crossings(&self, u: u32, v: u32) -> (u64, u64) {
        let (mut keep, mut swap) = (0, 0);
        for (a, b) in [
            (self.preds(u), self.preds(v)),
            (self.succs(u), self.succs(v)),
        ] {
            for &x in a {
                let px = self.pos[x as usize];
                for &y in b {
                    let py = self.pos[y as usize];
                    keep += u64::from(px > py);
                    swap += u64::from(px < py);
                }
            }
        }
        (keep, swap)
    }

    /// Barycenter sweeps; leaves the best order found in place and returns its
    /// crossing count.
    fn reduce_crossings(&mut self, sweeps: u32) -> u64 {
        let mut best = self.crossings();
        let mut best_layers = self.layers.clone();
        let mut stale = 0;
        let depth = self.layers.len();
        for sweep in 0..sweeps {
            if best == 0 || depth < 2 {
                break;
            }
            for down in [true, false] {
                let range: Vec<usize> = if down {
                    (1..depth).collect()
                } else {
                    (0..depth - 1).rev().collect()
                };
                for l in range {
                    self.sort_layer(l, down, sweep % 2 == 1);
                }
                self.transpose(4);
                let c = self.crossings();
                if c < best {
                    best = c;
                    best_layers.clone_from(&self.layers);
                    stale = 0;
                } else {
                    stale += 1;
                }
            }
            if stale >= 4 {
                break;
            }
        }
        self.layers = best_layers;
        for l in 0..depth {
            self.set_positions(l);
        }
        best
    }

    fn sort_layer(&mut self, l: usize, down: bool, use_median: bool) {
        let mut scratch: Vec<f64> = Vec::new();
        let mut keyed: Vec<(u64, f64, u32)> = self.layers[l]
            .iter()
            .map(|&v| {
                let nb = if down { self.preds(v) } else { self.succs(v) };
                let centre = if use_median {
                    scratch.clear();
                    scratch.extend(nb.iter().map(|&u| f64::from(self.pos[u as usize])));
                    median(&mut scratch)
                } else {
                    mean(nb.iter().map(|&u| f64::from(self.pos[u as usize])))
                };
                let mut bary = centre.unwrap_or(f64::from(self.pos[v as usize]));
                if let Some(&a) = self.anchor.get(v as usize).filter(|a| !a.is_nan()) {
                    bary = (bary + self.stability * a) / (1.0 + self.stability);
                }
                (self.block[v as usize], bary, v)
            })
            .collect();
        let pos = &self.pos;
        keyed.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(pos[a.2 as usize].cmp(&pos[b.2 as usize]))
        });
        self.layers[l] = keyed.into_iter().map(|k| k.2).collect();
        self.set_positions(l);
    }

    /// Crossings between all neighbouring layers, by counting inversions.
    fn crossings(&self) -> u64 {
        let mut total = 0u64;
        let mut seg: Vec<(u32, u32)> = Vec::new();
        for l in 0..self.layers.len().saturating_sub(1) {
            seg.clear();
            for &u in &self.layers[l] {
                for &v in self.succs(u) {
                    seg.push((self.pos[u as usize], self.pos[v as usize]));
                }
            }
            seg.sort_unstable();
            let mut tree = Fenwick::new(self.layers[l + 1].len());
            for (i, &(_, b)) in seg.iter().enumerate() {
                // earlier segments ending strictly below b cross this one
                total += (i as u64) - tree.prefix(b as usize + 1);
                tree.add(b as usize);
            }
        }
        total
    }

    /// y of every node: as close as possible to its target with the minimum spacing
    /// between neighbours, layer by layer (forward, backward, forward).
    fn coordinates(&self, prev: &[Option<f64>], config: &LayoutConfig) -> Vec<f64> {
        let total = self.layer.len();
        let mut y = vec![f64::NAN; total];
        let has_prev = prev.iter().any(Option::is_some);
        let size = |v: u32| {
            if (v as usize) < self.real {
                config.node_gap
            } else {
                config.edge_gap
            }
        };
        for pass in 0..3 {
            let layers: Vec<usize> = if pass == 1 {
                (0..self.layers.len()).rev().collect()
            } else {
                (0..self.layers.len()).collect()
            };
            for l in layers {
                let nodes = &self.layers[l];
                if nodes.is_empty() {
                    continue;
                }
                let mut offset = Vec::with_capacity(nodes.len());
                let mut acc = 0.0;
                for (i, &v) in nodes.iter().enumerate() {
                    if i > 0 {
                        let u = nodes[i - 1];
                        acc += (size(u) + size(v)) / 2.0;
                        if self.group[u as usize] != self.group[v as usize] {
                            acc += config.group_gap;
                        }
                    }
                    offset.push(acc);
                }
                let targets: Vec<(f64, f64)> = nodes
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        if let Some(p) = prev[v as usize] {
                            let weight = if (v as usize) < self.real { 4.0 } else { 1.0 };
                            return (p, weight);
                        }
                        let nb: Box<dyn Iterator<Item = &u32>> = match pass {
                            0 => Box::new(self.preds(v).iter()),
                            1 => Box::new(self.succs(v).iter().chain(self.preds(v))),
                            _ => Box::new(self.preds(v).iter().chain(self.succs(v))),
                        };
                        match mean(nb.map(|&u| y[u as usize]).filter(|t| !t.is_nan())) {
                            Some(t) => (t, 1.0),
                            None if !y[v as usize].is_nan() => (y[v as usize], 0.5),
                            None => (offset[i], 1e-3),
                        }
                    })
                    .collect();
                let placed = isotonic(&targets, &offset);
                for (&v, p) in nodes.iter().zip(placed) {
                    y[v as usize] = p;
                }
            }
        }
        if !has_prev {
            let top = y.iter().copied().fold(f64::INFINITY, f64::min);
            if top.is_finite() {
                for v in &mut y {
                    *v -= top;
                }
            }
        }
        y
    }
}

/// The ys closest (weighted least squares) to `targets` `(target, weight)` keeping
/// `y[i+1] − y[i] ≥ offset[i+1] − offset[i]`: pool-adjacent-violators on
/// `z = y − offset`. O(n).
fn isotonic(targets: &[(f64, f64)], offset: &[f64]) -> Vec<f64> {
    // blocks of (weighted sum, weight, count)
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(targets.len());
    for (i, &(t, w)) in targets.iter().enumerate() {
        let z = t - offset[i];
        blocks.push((z * w, w, 1));
        while blocks.len() > 1 {
            let (s2, w2, c2) = blocks[blocks.len() - 1];
            let (s1, w1, c1) = blocks[blocks.len() - 2];
            if s1 / w1 <= s2 / w2 {
                break;
            }
            blocks.pop();
            let last = blocks.len() - 1;
            blocks[last] = (s1 + s2, w1 + w2, c1 + c2);
        }
    }
    let mut out = Vec::with_capacity(targets.len());
    for (s, w, c) in blocks {
        for _ in 0..c {
            let i = out.len();
            out.push(s / w + offset[i]);
        }
    }
    out
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let m = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[m]
    } else {
        (values[m - 1] + values[m]) / 2.0
    })
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut s, mut n) = (0.0, 0u32);
    for v in values {
        s += v;
        n += 1;
    }
    (n > 0).then(|| s / f64::from(n))
}

/// Counts of values below a bound.
struct Fenwick(Vec<u64>);

impl Fenwick {
    fn new(n: usize) -> Self {
        Fenwick(vec![0; n + 1])
    }
    fn add(&mut self, i: usize) {
        let mut i = i + 1;
        while i < self.0.len() {
            self.0[i] += 1;
            i += i & i.wrapping_neg();
        }
    }
    /// Number of added values `< end`.
    fn prefix(&self, end: usize) -> u64 {
        let mut i = end.min(self.0.len() - 1);
        let mut s = 0;
        while i > 0 {
            s += self.0[i];
            i -= i & i.wrapping_neg();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cluster;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn key(a: u32, b: u32) -> EdgeKey {
        EdgeKey {
            src: ClusterId(a),
            dst: ClusterId(b),
        }
    }

    fn check_no_overlap(l: &Layout, gap: f64) -> std::result::Result<(), String> {
        let mut by_layer: HashMap<i32, Vec<f64>> = HashMap::new();
        for n in &l.nodes {
            by_layer.entry(n.layer).or_default().push(n.y);
        }
        for (layer, mut ys) in by_layer {
            ys.sort_by(f64::total_cmp);
            for w in ys.windows(2) {
                if w[1] - w[0] < gap - 1e-6 {
                    return Err(format!(
                        "layer {layer}: nodes at {} and {} overlap",
                        w[0], w[1]
                    ));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn a_chain_is_a_straight_line_left_to_right() {
        let l = layout(
            &[],
            &[key(0, 1), key(1, 2), key(2, 3)],
            &ClusterCatalog::new(),
            None,
            &LayoutConfig::default(),
        );
        let ys: Vec<f64> = l.nodes.iter().map(|n| n.y).collect();
        assert!(ys.iter().all(|&y| (y - ys[0]).abs() < 1e-9), "{ys:?}");
        let layers: Vec<i32> = l.nodes.iter().map(|n| n.layer).collect();
        assert_eq!(layers, [0, 1, 2, 3]);
        assert_eq!(l.crossings, 0);
    }

    #[test]
    fn long_edges_get_one_point_per_layer_and_start_at_the_caller() {
        let l = layout(
            &[],
            &[key(0, 1), key(1, 2), key(0, 2), key(2, 0)],
            &ClusterCatalog::new(),
            None,
            &LayoutConfig::default(),
        );
        let r = l.edges.iter().find(|r| r.edge == key(0, 2)).unwrap();
        assert_eq!(r.points.len(), 3);
        let back = l.edges.iter().find(|r| r.edge == key(2, 0)).unwrap();
        assert!(back.reversed);
        let p2 = l.node(ClusterId(2)).unwrap();
        assert_eq!((back.points[0].x, back.points[0].y), (p2.x, p2.y));
    }

    #[test]
    fn barycenter_sweeps_remove_avoidable_crossings() {
        // two independent fans whose initial (id) order crosses
        let edges = [
            key(0, 5),
            key(0, 6),
            key(1, 3),
            key(1, 4),
            key(2, 3),
            key(2, 7),
        ];
        let l = layout(
            &[],
            &edges,
            &ClusterCatalog::new(),
            None,
            &LayoutConfig::default(),
        );
        assert_eq!(l.crossings, 0);
    }

    #[test]
    fn tiers_go_left_to_right_and_data_centres_stay_together() {
        let mut cat = ClusterCatalog::new();
        let mut add = |name: &str, tier: &str, dc: Option<&str>| {
            cat.insert(Cluster {
                name: name.into(),
                service: name.into(),
                dc: dc.map(String::from),
                tier: Some(tier.into()),
            })
        };
        let db = add("db", "storage", None);
        let w1 = add("web-dc1", "frontend", Some("dc1"));
        let w2 = add("web-dc2", "frontend", Some("dc2"));
        let a1 = add("api-dc1", "api", Some("dc1"));
        let a2 = add("api-dc2", "api", Some("dc2"));
        let w3 = add("web2-dc1", "frontend", Some("dc1"));
        let e = |s, d| EdgeKey { src: s, dst: d };
        let edges = [
            e(w1, a1),
            e(w2, a2),
            e(w3, a1),
            e(a1, db),
            e(a2, db),
            e(db, a1),
        ];
        let l = layout(&[], &edges, &cat, None, &LayoutConfig::full_graph());
        let x = |c| l.node(c).unwrap().x;
        assert!(x(w1) < x(a1) && x(a1) < x(db));
        assert_eq!(x(w1), x(w2));
        let y = |c| l.node(c).unwrap().y;
        // dc1's two web clusters are adjacent, dc2's is not between them
        let (lo, hi) = (y(w1).min(y(w3)), y(w1).max(y(w3)));
        assert!(!(lo..=hi).contains(&y(w2)));
        assert!(
            l.edges
                .iter()
                .find(|r| r.edge == e(db, a1))
                .unwrap()
                .reversed
        );
    }

    fn arb_edges() -> impl Strategy<Value = Vec<EdgeKey>> {
        proptest::collection::vec((0u32..30, 0u32..30), 0..90)
            .prop_map(|v| v.into_iter().map(|(a, b)| key(a, b)).collect())
    }

    proptest! {
        #[test]
        fn nodes_of_a_layer_never_overlap_and_routes_join_their_ends(edges in arb_edges()) {
            let c = LayoutConfig::default();
            let l = layout(&[], &edges, &ClusterCatalog::new(), None, &c);
            prop_assert!(check_no_overlap(&l, c.node_gap).is_ok(), "{:?}", check_no_overlap(&l, c.node_gap));
            for r in &l.edges {
                let (s, d) = (l.node(r.edge.src).unwrap(), l.node(r.edge.dst).unwrap());
                let (first, last) = (r.points[0], *r.points.last().unwrap());
                prop_assert_eq!((first.x, first.y), (s.x, s.y));
                prop_assert_eq!((last.x, last.y), (d.x, d.y));
                if r.edge.src != r.edge.dst {
                    prop_assert_eq!(r.reversed, s.layer > d.layer);
                    prop_assert!(s.layer != d.layer);
                }
                prop_assert!(r.points.iter().all(|p| p.x.is_finite() && p.y.is_finite()));
            }
        }

        #[test]
        fn small_changes_barely_move_surviving_nodes(edges in arb_edges(), extra in (0u32..40, 0u32..40)) {
            let c = LayoutConfig::default();
            let before = layout(&[], &edges, &ClusterCatalog::new(), None, &c);
            let mut more = edges.clone();
            more.push(key(extra.0, extra.1));
            let after = layout(&[], &more, &ClusterCatalog::new(), Some(&before), &c);
            prop_assert!(check_no_overlap(&after, c.node_gap).is_ok());
            // Nodes that keep their layer mostly stay within two slots of where they were
            // (a new caller in front of a chain moves the chain one layer right).
            let kept: Vec<_> = before
                .nodes
                .iter()
                .filter(|b| after.node(b.cluster).unwrap().layer == b.layer)
                .collect();
            let moved = kept
                .iter()
                .filter(|b| (after.node(b.cluster).unwrap().y - b.y).abs() > 2.0 * c.node_gap + 1e-6)
                .count();
            prop_assert!(
                moved * 4 <= kept.len().max(4),
                "{} of {} moved; {} nodes changed layer",
                moved,
                kept.len(),
                before.nodes.len() - kept.len()
            );
        }
    }
}
