//! A layered ("Sugiyama") layout that stays fast on large graphs: jobs in
//! layers by depth, the root on top and every arrow pointing down to a dep;
//! long edges routed through virtual points; crossings reduced by
//! barycenter sweeps; x positions by isotonic regression towards the
//! neighbours' mean, which keeps every layer in order and never overlaps.
//!
//! Complexity: O((V + D) log(V + D)) per sweep for V jobs and D virtual
//! points, with a fixed number of sweeps.

use std::collections::{HashMap, HashSet};

use crate::scene::{Label, NodeBox, Point, Scene, Segment};
use crate::source::Job;

const LAYER_GAP: f32 = 52.0;
const NODE_GAP: f32 = 22.0;
const VIRTUAL_GAP: f32 = 10.0;
const MARGIN: f32 = 12.0;
const ORDER_SWEEPS: usize = 16;
const ORDER_PATIENCE: usize = 3;
const PLACE_ROUNDS: usize = 8;
/// The fewest long edges at one end that run as a bundle.
const BUNDLE_MIN: usize = 3;

/// One node of the layered graph: a job or a virtual point of a long edge.
struct Slot {
    width: f32,
    layer: usize,
    /// Neighbours one layer up and one layer down.
    up: Vec<usize>,
    down: Vec<usize>,
    is_job: bool,
}

/// An edge as laid out: its chain of slots from the upper end to the lower.
struct Route {
    chain: Vec<usize>,
    /// True when the arrow points up (only for a cycle in a report read
    /// from outside; a plan has none).
    reversed: bool,
}

/// Lays out `jobs` drawn as `labels` (one each); with `wrap_width`, a
/// layer of jobs wider than that is spread over several rows.
pub(crate) fn layout(jobs: &[Job], labels: Vec<Label>, wrap_width: Option<f32>) -> Scene {
    let (upper_lower, reversed) = orient_edges(jobs);
    let mut layer = assign_layers(jobs.len(), &upper_lower);
    let mut wrapped_rows = Vec::new();
    if let Some(max_width) = wrap_width {
        let widths: Vec<f32> = labels.iter().map(|label| label.width).collect();
        (layer, wrapped_rows) = wrap(&layer, &widths, &upper_lower, max_width);
    }
    let layer_count = layer.iter().max().map_or(0, |&l| l + 1);
    let (slots, routes) = route_edges(&labels, &layer, &upper_lower, &reversed);

    let mut layers = initial_order(&slots, layer_count, jobs.len());
    reduce_crossings(&slots, &mut layers);
    for &l in &wrapped_rows {
        centre_passing_edges(&slots, &mut layers[l]);
    }
    let mut x = place(&slots, &layers);
    straighten(&slots, &layers, &routes, &mut x);

    let bands = Bands::new(&labels, &layer, layer_count);
    let width = slots
        .iter()
        .zip(&x)
        .map(|(slot, &x)| x + slot.width / 2.0)
        .fold(0.0f32, f32::max)
        + MARGIN;
    let nodes: Vec<NodeBox> = labels
        .into_iter()
        .enumerate()
        .map(|(i, label)| NodeBox {
            centre: Point {
                x: x[i],
                y: bands.centre(layer[i]),
            },
            label,
        })
        .collect();
    let ports = Ports::new(&routes, &x, &nodes);
    let placed = Placed {
        slots: &slots,
        x: &x,
        bands: &bands,
        nodes: &nodes,
    };
    let edges = placed.draw_edges(&routes, &ports);
    Scene {
        width,
        height: bands.height,
        nodes,
        edges,
        legend: Vec::new(),
    }
}

/// The slots (the jobs first, then the virtual points of long edges) and
/// each edge's route through them.
///
/// Long edges that share an end share their virtual points (Graphviz's
/// `concentrate`): each runs in the bundle of whichever end has more
/// long edges (at least BUNDLE_MIN), so a fan-out over wrapped rows is
/// one trunk, not fifty.
fn route_edges(
    labels: &[Label],
    layer: &[usize],
    upper_lower: &[(usize, usize)],
    reversed: &[bool],
) -> (Vec<Slot>, Vec<Route>) {
    let n = labels.len();
    let mut slots: Vec<Slot> = labels
        .iter()
        .zip(layer)
        .map(|(label, &layer)| Slot {
            width: label.width,
            layer,
            up: Vec::new(),
            down: Vec::new(),
            is_job: true,
        })
        .collect();
    let mut long_out = vec![0usize; n];
    let mut long_in = vec![0usize; n];
    for &(upper, lower) in upper_lower {
        if layer[lower] > layer[upper] + 1 {
            long_out[upper] += 1;
            long_in[lower] += 1;
        }
    }
    let mut bundles: HashMap<(usize, bool, usize), usize> = HashMap::new();
    let mut linked: HashSet<(usize, usize)> = HashSet::new();
    let mut routes = Vec::with_capacity(upper_lower.len());
    for (&(upper, lower), &reversed) in upper_lower.iter().zip(reversed) {
        let bundle = if long_out[upper] >= BUNDLE_MIN && long_out[upper] >= long_in[lower] {
            Some((upper, true))
        } else if long_in[lower] >= BUNDLE_MIN {
            Some((lower, false))
        } else {
            None
        };
        let mut chain = vec![upper];
        for l in layer[upper] + 1..layer[lower] {
            let mut new_slot = || {
                slots.push(Slot {
                    width: 0.0,
                    layer: l,
                    up: Vec::new(),
                    down: Vec::new(),
                    is_job: false,
                });
                slots.len() - 1
            };
            chain.push(match bundle {
                Some((end, from_top)) => {
                    *bundles.entry((end, from_top, l)).or_insert_with(new_slot)
                }
                None => new_slot(),
            });
        }
        chain.push(lower);
        for pair in chain.windows(2) {
            if linked.insert((pair[0], pair[1])) {
                slots[pair[0]].down.push(pair[1]);
                slots[pair[1]].up.push(pair[0]);
            }
        }
        routes.push(Route { chain, reversed });
    }
    (slots, routes)
}

/// Vertical bands: each layer as tall as its tallest job.
struct Bands {
    top: Vec<f32>,
    heights: Vec<f32>,
    /// The whole picture's, margins included.
    height: f32,
}

impl Bands {
    fn new(labels: &[Label], layer: &[usize], layer_count: usize) -> Bands {
        let mut heights = vec![0.0f32; layer_count];
        for (label, &l) in labels.iter().zip(layer) {
            heights[l] = heights[l].max(label.height);
        }
        let mut top = Vec::with_capacity(layer_count);
        let mut y = MARGIN;
        for &height in &heights {
            top.push(y);
            y += height + LAYER_GAP;
        }
        Bands {
            top,
            heights,
            height: y - LAYER_GAP + MARGIN,
        }
    }

    fn centre(&self, l: usize) -> f32 {
        self.top[l] + self.heights[l] / 2.0
    }

    fn bottom(&self, l: usize) -> f32 {
        self.top[l] + self.heights[l]
    }
}

/// Ports: a node's edges leave its bottom and enter its top spread out
/// in the order of where they go, so they do not cross at the node;
/// edges into the same first (or out of the same last) point of a
/// bundle share one port.
struct Ports {
    /// Each port's x.
    x: Vec<f32>,
    /// Per route, its start and end port.
    of_route: Vec<(usize, usize)>,
}

impl Ports {
    fn new(routes: &[Route], x: &[f32], nodes: &[NodeBox]) -> Ports {
        let n = nodes.len();
        let mut port_of: HashMap<(usize, usize), usize> = HashMap::new();
        let mut out_ports: Vec<Vec<(f32, usize)>> = vec![Vec::new(); n];
        let mut in_ports: Vec<Vec<(f32, usize)>> = vec![Vec::new(); n];
        let mut of_route = Vec::with_capacity(routes.len());
        for route in routes {
            let chain = &route.chain;
            let (first, second) = (chain[0], chain[1]);
            let (last, before) = (chain[chain.len() - 1], chain[chain.len() - 2]);
            let mut port = |node: usize, towards: usize, ports: &mut Vec<Vec<(f32, usize)>>| {
                let next = port_of.len();
                *port_of.entry((node, towards)).or_insert_with(|| {
                    ports[node].push((x[towards], next));
                    next
                })
            };
            let start = port(first, second, &mut out_ports);
            let end = port(last, before, &mut in_ports);
            of_route.push((start, end));
        }
        let mut port_x = vec![0.0f32; port_of.len()];
        for (node, ports) in out_ports.iter_mut().enumerate() {
            spread(&nodes[node], ports, &mut port_x);
        }
        for (node, ports) in in_ports.iter_mut().enumerate() {
            spread(&nodes[node], ports, &mut port_x);
        }
        Ports {
            x: port_x,
            of_route,
        }
    }
}

/// Where everything went, for drawing the edges.
struct Placed<'a> {
    slots: &'a [Slot],
    x: &'a [f32],
    bands: &'a Bands,
    nodes: &'a [NodeBox],
}

impl Placed<'_> {
    fn top(&self, slot: usize) -> Point {
        Point {
            x: self.x[slot],
            y: self.bands.top[self.slots[slot].layer],
        }
    }

    fn bottom(&self, slot: usize) -> Point {
        Point {
            x: self.x[slot],
            y: self.bands.bottom(self.slots[slot].layer),
        }
    }

    /// Each link between two slots is drawn once: edges of a bundle share
    /// their trunk, so a fan-out over wrapped rows costs the picture its
    /// trunk once plus a branch per edge, not a whole path per edge.
    fn draw_edges(&self, routes: &[Route], ports: &Ports) -> Vec<Segment> {
        let nodes = self.nodes;
        let mut drawn: HashSet<(usize, usize)> = HashSet::new();
        let mut edges = Vec::with_capacity(routes.len());
        for (route, &(start, end)) in routes.iter().zip(&ports.of_route) {
            let chain = &route.chain;
            let last = chain.len() - 1;
            let start_point = Point {
                x: ports.x[start],
                y: nodes[chain[0]].centre.y + nodes[chain[0]].label.height / 2.0,
            };
            let end_point = Point {
                x: ports.x[end],
                y: nodes[chain[last]].centre.y - nodes[chain[last]].label.height / 2.0,
            };
            if route.reversed {
                // An arrow pointing up (a cycle in a report read from outside)
                // is drawn whole, its head at its upper end.
                let mut points = vec![start_point];
                for &slot in &chain[1..last] {
                    points.extend([self.top(slot), self.bottom(slot)]);
                }
                points.push(end_point);
                edges.push(Segment::through(points, true));
                continue;
            }
            // Runs of links not drawn yet, each one piece: from the upper job's
            // port or a point's bottom, through the points (top, bottom), to
            // the lower job's port (with the head) or a point's bottom.
            let new: Vec<bool> = chain
                .windows(2)
                .map(|link| drawn.insert((link[0], link[1])))
                .collect();
            let mut i = 0;
            while i < last {
                if !new[i] {
                    i += 1;
                    continue;
                }
                let mut j = i;
                while j < last && new[j] {
                    j += 1;
                }
                let mut points = vec![if i == 0 {
                    start_point
                } else {
                    self.bottom(chain[i])
                }];
                for &slot in &chain[i + 1..j] {
                    points.extend([self.top(slot), self.bottom(slot)]);
                }
                if j == last {
                    points.push(end_point);
                    edges.push(Segment::through(points, false));
                } else {
                    points.extend([self.top(chain[j]), self.bottom(chain[j])]);
                    edges.push(Segment::piece(&points));
                }
                i = j;
            }
        }
        edges
    }
}

/// Graphviz's `unflatten` idea: a layer whose jobs side by side would be
/// wider than `max_width` is spread over as many rows as it takes, the
/// layers below moving down to make room, so every dep stays below its
/// dependents. Jobs without deps take the upper rows and jobs with deps
/// the lowest, next to their deps; each row keeps the reference order.
/// Returns the new layers and the rows that came from wrapping.
fn wrap(
    layer: &[usize],
    widths: &[f32],
    edges: &[(usize, usize)],
    max_width: f32,
) -> (Vec<usize>, Vec<usize>) {
    let layer_count = layer.iter().max().map_or(0, |&l| l + 1);
    let mut has_lower = vec![false; layer.len()];
    for &(upper, _) in edges {
        has_lower[upper] = true;
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); layer_count];
    for (job, &l) in layer.iter().enumerate() {
        members[l].push(job);
    }
    let mut wrapped = vec![0; layer.len()];
    let mut rows_made = Vec::new();
    let mut extra = 0;
    for (l, jobs) in members.iter_mut().enumerate() {
        let total: f32 = jobs.iter().map(|&j| widths[j] + NODE_GAP).sum::<f32>() - NODE_GAP;
        let rows = ((total / max_width.max(1.0)).ceil() as usize).clamp(1, jobs.len().max(1));
        jobs.sort_by_key(|&j| (has_lower[j], j));
        let mut per_row = jobs.len().div_ceil(rows).max(1);
        // An even count a row, so that the edges passing down the middle
        // (`centre_passing_edges`) have as many jobs on either side: with
        // one more on a side, each row would hang half a box off the one
        // above, and a tall fan-out would drift sideways into a staircase.
        if rows > 1 && per_row > 2 && per_row % 2 == 1 {
            per_row -= 1;
        }
        for (i, &j) in jobs.iter().enumerate() {
            wrapped[j] = l + extra + i / per_row;
        }
        let rows = jobs.len().div_ceil(per_row).max(1);
        if rows > 1 {
            rows_made.extend(l + extra..l + extra + rows);
        }
        extra += rows - 1;
    }
    (wrapped, rows_made)
}

/// Where wrapping at `max_width` puts each job among the rows its layer
/// became: (rows above it, rows below it). Graphviz, which cannot wrap by
/// itself, is told this as `minlen` on edges, as `unflatten` does.
pub(crate) fn wrap_rows(jobs: &[Job], widths: &[f32], max_width: f32) -> Vec<(usize, usize)> {
    let (upper_lower, _) = orient_edges(jobs);
    let layer = assign_layers(jobs.len(), &upper_lower);
    let (wrapped, _) = wrap(&layer, widths, &upper_lower, max_width);
    let mut first_row = vec![usize::MAX; layer.len()];
    let mut last_row = vec![0; layer.len()];
    for (&l, &w) in layer.iter().zip(&wrapped) {
        first_row[l] = first_row[l].min(w);
        last_row[l] = last_row[l].max(w);
    }
    layer
        .iter()
        .zip(&wrapped)
        .map(|(&l, &w)| (w - first_row[l], last_row[l] - w))
        .collect()
}

/// In a wrapped row, puts the points of edges passing through in the
/// middle, between the two halves of the row's jobs: the trunk of a fan-out
/// then drops straight down the middle of every row instead of drifting
/// sideways from row to row.
fn centre_passing_edges(slots: &[Slot], layer: &mut [usize]) {
    let (jobs, passing): (Vec<usize>, Vec<usize>) = layer.iter().partition(|&&s| slots[s].is_job);
    let half = jobs.len() / 2;
    let order = jobs[..half].iter().chain(&passing).chain(&jobs[half..]);
    for (place, &s) in layer.iter_mut().zip(order.collect::<Vec<_>>()) {
        *place = s;
    }
}

/// Every edge as (upper, lower): from a job to its dep, except that an
/// edge closing a cycle is turned round (and marked) so layers exist.
fn orient_edges(jobs: &[Job]) -> (Vec<(usize, usize)>, Vec<bool>) {
    let n = jobs.len();
    // Kahn's algorithm from the jobs nothing depends on; jobs left over
    // (on a cycle) follow in index order.
    let mut dependents = vec![0usize; n];
    for job in jobs {
        for &dep in &job.deps {
            dependents[dep] += 1;
        }
    }
    let mut rank = vec![usize::MAX; n];
    let mut queue: Vec<usize> = (0..n).rev().filter(|&i| dependents[i] == 0).collect();
    let mut next = 0;
    while let Some(i) = queue.pop() {
        rank[i] = next;
        next += 1;
        for &dep in jobs[i].deps.iter().rev() {
            dependents[dep] -= 1;
            if dependents[dep] == 0 {
                queue.push(dep);
            }
        }
    }
    for r in rank.iter_mut().filter(|r| **r == usize::MAX) {
        *r = next;
        next += 1;
    }
    let mut pairs = Vec::new();
    let mut reversed = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        for &dep in &job.deps {
            if dep == i {
                continue; // a job depending on itself: nothing to draw between layers
            }
            let back = rank[dep] < rank[i];
            pairs.push(if back { (dep, i) } else { (i, dep) });
            reversed.push(back);
        }
    }
    (pairs, reversed)
}

/// Layers, 0 on top. Each job starts as low as its deps allow (longest
/// path from the bottom), then is promoted while that shortens the edges.
fn assign_layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut up = vec![Vec::new(); n];
    let mut down = vec![Vec::new(); n];
    for &(u, l) in edges {
        down[u].push(l);
        up[l].push(u);
    }
    // Topological order, uppers first.
    let mut indegree: Vec<usize> = up.iter().map(Vec::len).collect();
    let mut order: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut head = 0;
    while head < order.len() {
        let i = order[head];
        head += 1;
        for &l in &down[i] {
            indegree[l] -= 1;
            if indegree[l] == 0 {
                order.push(l);
            }
        }
    }
    debug_assert_eq!(order.len(), n, "edges were oriented into a DAG");

    let mut height = vec![0usize; n];
    for &i in order.iter().rev() {
        height[i] = down[i].iter().map(|&l| height[l] + 1).max().unwrap_or(0);
    }
    let top = height.iter().copied().max().unwrap_or(0);
    let mut layer: Vec<i64> = height.iter().map(|&h| (top - h) as i64).collect();
    promote(&mut layer, &up, &down, false);
    promote(&mut layer, &up, &down, true);
    promote(&mut layer, &up, &down, false);
    let least = layer.iter().copied().min().unwrap_or(0);
    let layer: Vec<usize> = layer.iter().map(|&l| (l - least) as usize).collect();
    let top = layer.iter().copied().max().unwrap_or(0);
    // Close up layers left empty.
    let mut used = vec![false; top + 1];
    for &l in &layer {
        used[l] = true;
    }
    let mut renumber = vec![0; top + 1];
    let mut next = 0;
    for (l, &used) in used.iter().enumerate() {
        renumber[l] = next;
        next += usize::from(used);
    }
    layer.iter().map(|&l| renumber[l]).collect()
}

/// Promote layering (Nikolov, Tarassov and Branke, 2005): move a job one
/// layer up, pushing up the dependents in its way, and keep the move when
/// the edges get shorter in total (fewer virtual points); repeat until no
/// move helps, or for a bounded number of rounds.
///
/// With `ties`, a move that leaves the total unchanged is kept too, so long
/// as it moves no job that nothing depends on (which would only shift
/// everything): chains hanging low under a far dependent rise to it, as in
/// Graphviz's pictures.
fn promote(layer: &mut [i64], up: &[Vec<usize>], down: &[Vec<usize>], ties: bool) {
    const ROUNDS: usize = 8;
    let mut moved = Vec::new();
    let mut stack = Vec::new();
    // mark[w] == stamp: w is in `moved` for the current attempt.
    let mut mark = vec![0usize; layer.len()];
    let mut stamp = 0;
    for _ in 0..ROUNDS {
        let mut promotions = 0;
        for v in 0..layer.len() {
            if up[v].is_empty() {
                continue;
            }
            // Promote v and, transitively, every dependent just above a
            // promoted job; sum how much longer the edges get.
            moved.clear();
            stack.clear();
            stack.push(v);
            stamp += 1;
            let mut longer = 0i64;
            let mut moves_a_source = false;
            while let Some(w) = stack.pop() {
                if mark[w] == stamp {
                    continue;
                }
                mark[w] = stamp;
                moved.push(w);
                longer += down[w].len() as i64 - up[w].len() as i64;
                moves_a_source |= up[w].is_empty();
                stack.extend(up[w].iter().filter(|&&u| layer[u] == layer[w] - 1));
            }
            if longer < 0 || (ties && longer == 0 && !moves_a_source) {
                for &w in &moved {
                    layer[w] -= 1;
                }
                promotions += 1;
            }
        }
        if promotions == 0 {
            break;
        }
    }
}

/// Each layer's slots in depth-first discovery order from the top, deps
/// in declaration order: the order a reader expects before any sweep.
fn initial_order(slots: &[Slot], layer_count: usize, jobs: usize) -> Vec<Vec<usize>> {
    let mut seen = vec![false; slots.len()];
    let mut layers = vec![Vec::new(); layer_count];
    // Roots by decreasing id: the reference order numbers the root last.
    let roots = (0..jobs).rev().filter(|&i| slots[i].up.is_empty());
    let mut stack = Vec::new();
    for root in roots {
        stack.push(root);
        while let Some(s) = stack.pop() {
            if seen[s] {
                continue;
            }
            seen[s] = true;
            layers[slots[s].layer].push(s);
            stack.extend(slots[s].down.iter().rev().filter(|&&d| !seen[d]));
        }
    }
    debug_assert!(seen.iter().all(|&s| s), "every slot hangs below a root");
    layers
}

/// Barycenter sweeps down and up, keeping the order with fewest crossings.
fn reduce_crossings(slots: &[Slot], layers: &mut [Vec<usize>]) {
    let mut pos = vec![0usize; slots.len()];
    let index = |layers: &[Vec<usize>], pos: &mut [usize]| {
        for layer in layers {
            for (i, &s) in layer.iter().enumerate() {
                pos[s] = i;
            }
        }
    };
    index(layers, &mut pos);
    let mut best = layers.to_vec();
    let mut best_crossings = crossings(slots, layers, &pos);
    let mut stale = 0;
    for sweep in 0..ORDER_SWEEPS {
        if best_crossings == 0 || stale >= ORDER_PATIENCE {
            break;
        }
        let downward = sweep % 2 == 0;
        let order: Vec<usize> = if downward {
            (1..layers.len()).collect()
        } else {
            (0..layers.len().saturating_sub(1)).rev().collect()
        };
        for l in order {
            let mut movable: Vec<(f32, usize, usize)> = layers[l]
                .iter()
                .filter_map(|&s| {
                    let neighbours = if downward {
                        &slots[s].up
                    } else {
                        &slots[s].down
                    };
                    (!neighbours.is_empty()).then(|| {
                        let sum: usize = neighbours.iter().map(|&t| pos[t]).sum();
                        (sum as f32 / neighbours.len() as f32, pos[s], s)
                    })
                })
                .collect();
            movable.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut movable = movable.into_iter().map(|(_, _, s)| s);
            for i in 0..layers[l].len() {
                let s = layers[l][i];
                let neighbours = if downward {
                    &slots[s].up
                } else {
                    &slots[s].down
                };
                if !neighbours.is_empty() {
                    layers[l][i] = movable.next().expect("one movable slot per movable place");
                }
            }
            for (i, &s) in layers[l].iter().enumerate() {
                pos[s] = i;
            }
        }
        let now = crossings(slots, layers, &pos);
        if now < best_crossings {
            best_crossings = now;
            best.clone_from_slice(layers);
            stale = 0;
        } else {
            stale += 1;
        }
    }
    layers.clone_from_slice(&best);
}

/// Edge crossings between all pairs of adjacent layers, each pair counted
/// as inversions with a Fenwick tree: O(E log V).
fn crossings(slots: &[Slot], layers: &[Vec<usize>], pos: &[usize]) -> u64 {
    let mut total = 0u64;
    let mut ends = Vec::new();
    for pair in layers.windows(2) {
        ends.clear();
        for &s in &pair[0] {
            let mut below: Vec<usize> = slots[s].down.iter().map(|&d| pos[d]).collect();
            below.sort_unstable();
            ends.extend(below);
        }
        let mut tree = vec![0u32; pair[1].len() + 1];
        for (seen, &end) in ends.iter().enumerate() {
            // Count earlier ends strictly to the right of this one.
            let mut i = end + 1;
            let mut not_right = 0u64;
            while i > 0 {
                not_right += u64::from(tree[i]);
                i &= i - 1;
            }
            total += seen as u64 - not_right;
            let mut i = end + 1;
            while i < tree.len() {
                tree[i] += 1;
                i += i & i.wrapping_neg();
            }
        }
    }
    total
}

/// x of each slot's centre. Layers start packed; then rounds of sweeps
/// move every slot towards the mean x of its neighbours in the layer just
/// swept, solved for the whole layer at once as a weighted isotonic
/// regression (pool adjacent violators), so the order holds and the
/// minimum gaps are kept exactly.
fn place(slots: &[Slot], layers: &[Vec<usize>]) -> Vec<f32> {
    let gap = |a: usize, b: usize| {
        let space = if slots[a].is_job && slots[b].is_job {
            NODE_GAP
        } else {
            VIRTUAL_GAP
        };
        (slots[a].width + slots[b].width) / 2.0 + space
    };
    let mut x = vec![0.0f32; slots.len()];
    let widest = layers
        .iter()
        .map(|layer| layer_width(slots, layer, &gap))
        .fold(0.0f32, f32::max);
    for layer in layers {
        let mut at = (widest - layer_width(slots, layer, &gap)) / 2.0;
        if let Some(&first) = layer.first() {
            at += slots[first].width / 2.0;
        }
        for (i, &s) in layer.iter().enumerate() {
            if i > 0 {
                at += gap(layer[i - 1], s);
            }
            x[s] = at;
        }
    }

    #[derive(Clone, Copy)]
    enum Towards {
        Up,
        Down,
        Both,
    }
    let mut passes = Vec::new();
    for _ in 0..PLACE_ROUNDS {
        passes.extend((1..layers.len()).map(|l| (l, Towards::Up)));
        passes.extend(
            (0..layers.len().saturating_sub(1))
                .rev()
                .map(|l| (l, Towards::Down)),
        );
    }
    passes.extend((0..layers.len()).map(|l| (l, Towards::Both)));

    let mut targets = Vec::new();
    let mut blocks: Vec<(f32, f32, usize)> = Vec::new();
    for (l, towards) in passes {
        let layer = &layers[l];
        targets.clear();
        let mut offset = 0.0f32;
        for (i, &s) in layer.iter().enumerate() {
            if i > 0 {
                offset += gap(layer[i - 1], s);
            }
            let slot = &slots[s];
            let neighbours: Box<dyn Iterator<Item = &usize>> = match towards {
                Towards::Up => Box::new(slot.up.iter()),
                Towards::Down => Box::new(slot.down.iter()),
                Towards::Both => Box::new(slot.up.iter().chain(&slot.down)),
            };
            let (sum, count) =
                neighbours.fold((0.0f32, 0usize), |(sum, count), &t| (sum + x[t], count + 1));
            let (want, weight) = if count == 0 {
                (x[s], 0.25)
            } else if slot.is_job {
                (sum / count as f32, 1.0)
            } else {
                (sum / count as f32, 4.0)
            };
            targets.push((want - offset, weight, offset));
        }
        // Pool adjacent violators: blocks of (weighted sum, weight, length).
        blocks.clear();
        for &(target, weight, _) in &targets {
            blocks.push((target * weight, weight, 1));
            while blocks.len() > 1 {
                let (s1, w1, n1) = blocks[blocks.len() - 1];
                let (s0, w0, n0) = blocks[blocks.len() - 2];
                if s0 / w0 <= s1 / w1 {
                    break;
                }
                blocks.pop();
                *blocks.last_mut().expect("two blocks") = (s0 + s1, w0 + w1, n0 + n1);
            }
        }
        let mut i = 0;
        for &(sum, weight, len) in &blocks {
            for _ in 0..len {
                x[layer[i]] = sum / weight + targets[i].2;
                i += 1;
            }
        }
    }

    let left = slots
        .iter()
        .zip(&x)
        .map(|(slot, &x)| x - slot.width / 2.0)
        .fold(f32::INFINITY, f32::min);
    if left.is_finite() {
        for x in &mut x {
            *x += MARGIN - left;
        }
    }
    x
}

/// Lines up the virtual points of each long edge that ended within a few
/// pixels of each other, where the gaps to their neighbours allow: an edge
/// then drops straight instead of wobbling.
fn straighten(slots: &[Slot], layers: &[Vec<usize>], routes: &[Route], x: &mut [f32]) {
    const SNAP: f32 = 16.0;
    let mut pos = vec![0usize; slots.len()];
    for layer in layers {
        for (i, &s) in layer.iter().enumerate() {
            pos[s] = i;
        }
    }
    // Where slot `s` may go without crowding its neighbours in the layer.
    let room = |s: usize, x: &[f32]| {
        let layer = &layers[slots[s].layer];
        let i = pos[s];
        let lo = if i > 0 {
            let left = layer[i - 1];
            x[left] + (slots[left].width + slots[s].width) / 2.0 + VIRTUAL_GAP
        } else {
            f32::NEG_INFINITY
        };
        let hi = if i + 1 < layer.len() {
            let right = layer[i + 1];
            x[right] - (slots[right].width + slots[s].width) / 2.0 - VIRTUAL_GAP
        } else {
            f32::INFINITY
        };
        (lo, hi)
    };
    let mut run: Vec<usize> = Vec::new();
    for route in routes {
        let chain = &route.chain;
        if chain.len() < 3 {
            continue;
        }
        // The jobs at the ends do not move: a run holding one snaps to it.
        let bounds = |k: usize, x: &[f32]| {
            if k == 0 || k + 1 == chain.len() {
                (x[chain[k]], x[chain[k]])
            } else {
                room(chain[k], x)
            }
        };
        let (mut lo, mut hi) = bounds(0, x);
        let mut sum = x[chain[0]];
        run.clear();
        run.push(chain[0]);
        for (k, &s) in chain.iter().enumerate().skip(1) {
            let (s_lo, s_hi) = bounds(k, x);
            let joins =
                (x[s] - sum / run.len() as f32).abs() < SNAP && s_lo.max(lo) <= s_hi.min(hi);
            if joins {
                run.push(s);
                sum += x[s];
                lo = lo.max(s_lo);
                hi = hi.min(s_hi);
            } else {
                settle(&run, sum, lo, hi, x);
                run.clear();
                run.push(s);
                (lo, hi, sum) = (s_lo, s_hi, x[s]);
            }
        }
        settle(&run, sum, lo, hi, x);
    }
}

/// Puts every slot of a run at their mean x, kept within [lo, hi] (a
/// single x when the run holds a job).
fn settle(run: &[usize], sum: f32, lo: f32, hi: f32, x: &mut [f32]) {
    if run.len() < 2 {
        return;
    }
    let at = (sum / run.len() as f32).clamp(lo, hi);
    for &s in run {
        x[s] = at;
    }
}

fn layer_width(slots: &[Slot], layer: &[usize], gap: &impl Fn(usize, usize) -> f32) -> f32 {
    let inner: f32 = layer.windows(2).map(|w| gap(w[0], w[1])).sum();
    match (layer.first(), layer.last()) {
        (Some(&first), Some(&last)) => inner + (slots[first].width + slots[last].width) / 2.0,
        _ => 0.0,
    }
}

/// Gives each of a node's edges on one side its own x, spread across the
/// middle of the side in the order of the other ends.
fn spread(node: &NodeBox, ports: &mut [(f32, usize)], xs: &mut [f32]) {
    ports.sort_by(|a, b| a.0.total_cmp(&b.0));
    let k = ports.len();
    let room = (node.label.width - 2.0 * crate::scene::CORNER_RADIUS - 8.0).max(0.0);
    let width = room.min((k.saturating_sub(1)) as f32 * 12.0);
    for (i, &(_, route)) in ports.iter().enumerate() {
        let at = if k == 1 {
            0.0
        } else {
            -width / 2.0 + width * i as f32 / (k - 1) as f32
        };
        xs[route] = node.centre.x + at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_are_counted() {
        // Two slots on top, two below, edges crossed: a->d, b->c.
        let slot = |layer, up: Vec<usize>, down: Vec<usize>| Slot {
            width: 10.0,
            layer,
            up,
            down,
            is_job: true,
        };
        let slots = vec![
            slot(0, vec![], vec![3]),
            slot(0, vec![], vec![2]),
            slot(1, vec![1], vec![]),
            slot(1, vec![0], vec![]),
        ];
        let layers = vec![vec![0, 1], vec![2, 3]];
        let pos = vec![0, 1, 0, 1];
        assert_eq!(crossings(&slots, &layers, &pos), 1);
        let mut layers = layers;
        reduce_crossings(&slots, &mut layers);
        let pos = vec![0, 1, 1, 0];
        assert_eq!(layers[1], [3, 2]);
        assert_eq!(crossings(&slots, &layers, &pos), 0);
    }

    #[test]
    fn wide_layers_wrap_and_deps_stay_below() {
        // 0 -> 1..=6, 6 -> 7: six boxes of 100 px in a 250 px picture.
        let mut edges: Vec<(usize, usize)> = (1..=6).map(|d| (0, d)).collect();
        edges.push((6, 7));
        let layer = assign_layers(8, &edges);
        assert_eq!(layer, [0, 1, 1, 1, 1, 1, 1, 2]);
        let (wrapped, rows) = wrap(&layer, &[100.0; 8], &edges, 250.0);
        assert_eq!(wrapped, [0, 1, 1, 2, 2, 3, 3, 4]);
        assert_eq!(rows, [1, 2, 3]);
        for &(upper, lower) in &edges {
            assert!(wrapped[upper] < wrapped[lower]);
        }
        assert_eq!(wrap(&layer, &[100.0; 8], &edges, 10_000.0), (layer, vec![]));
    }

    #[test]
    fn layers_put_deps_below_and_pull_leaves_up() {
        // 0 -> 1 -> 2 -> 3 and 0 -> 4: the leaf 4 sits just below 0.
        let edges = [(0, 1), (1, 2), (2, 3), (0, 4)];
        let layer = assign_layers(5, &edges);
        assert_eq!(layer, [0, 1, 2, 3, 1]);
    }
}
