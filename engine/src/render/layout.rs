//! A small layered (Sugiyama-style) layout of a DAG, left to right:
//!
//! 1. **layers** by longest path from the sources (a node sits one column right of its furthest
//!    dependency), so every edge points right;
//! 2. edges that span several layers get a **dummy node** in each layer they cross, so they bend
//!    around the nodes instead of through them;
//! 3. the **order** inside each layer is improved by barycentre sweeps (a node moves to the mean
//!    position of its neighbours in the layer before, then after), keeping the order with the
//!    fewest edge crossings seen;
//! 4. **coordinates**: columns as wide as their widest node; inside a column each node is pulled
//!    towards the mean height of its neighbours without overlapping the others.
//!
//! Edges come out as polylines (straight segments through their dummy nodes). Deterministic: the
//! same graph always gives the same picture. Sized for pipelines (tens of nodes): the crossing
//! count is quadratic in the edges between two layers.

use thiserror::Error;

/// Space between two columns (room for the edges).
pub const LAYER_GAP: f64 = 70.0;
/// Space between two nodes of a column.
pub const NODE_GAP: f64 = 16.0;
/// Margin around the drawing.
pub const MARGIN: f64 = 12.0;
/// Barycentre sweeps (down and up count as one each).
const SWEEPS: usize = 24;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("edge {0} → {1} names a node that does not exist ({2} nodes)")]
    UnknownNode(usize, usize, usize),
    #[error("the graph has a cycle through node {0}; only a DAG can be laid out in layers")]
    Cycle(usize),
}

/// A node's box: top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn centre_y(&self) -> f64 {
        self.y + self.h / 2.0
    }
}

/// Where everything goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// One box per input node.
    pub nodes: Vec<Rect>,
    /// One polyline per input edge, from the right side of its source to the left side of its
    /// target, through its dummy nodes.
    pub edges: Vec<Vec<(f64, f64)>>,
    /// The layer (column) of each input node.
    pub layers: Vec<usize>,
    pub width: f64,
    pub height: f64,
    /// Edge crossings between adjacent layers in the final order.
    pub crossings: usize,
}

/// Lay out `sizes.len()` nodes of the given (width, height) joined by `edges` (`(from, to)`).
pub fn layout(sizes: &[(f64, f64)], edges: &[(usize, usize)]) -> Result<Layout, LayoutError> {
    let n = sizes.len();
    if let Some(&(a, b)) = edges.iter().find(|&&(a, b)| a >= n || b >= n) {
        return Err(LayoutError::UnknownNode(a, b, n));
    }
    let layer_of = longest_path_layers(n, edges)?;

    // Graph with dummies: real nodes keep their index; dummies follow. `chain[e]` lists the
    // nodes edge e passes through, ends included.
    let mut layer = layer_of.clone();
    let mut size: Vec<(f64, f64)> = sizes.to_vec();
    let mut links: Vec<(usize, usize)> = Vec::new();
    let mut chains: Vec<Vec<usize>> = Vec::with_capacity(edges.len());
    for &(a, b) in edges {
        let mut chain = vec![a];
        let mut prev = a;
        for l in layer_of[a] + 1..layer_of[b] {
            let d = layer.len();
            layer.push(l);
            size.push((0.0, 0.0));
            links.push((prev, d));
            chain.push(d);
            prev = d;
        }
        links.push((prev, b));
        chain.push(b);
        chains.push(chain);
    }
    let total = layer.len();
    let depth = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); total];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); total];
    for &(a, b) in &links {
        down[a].push(b);
        up[b].push(a);
    }

    // Initial order: input order, dummies after the real nodes.
    let mut order: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for v in 0..total {
        order[layer[v]].push(v);
    }
    let mut best = order.clone();
    let mut best_crossings = count_all_crossings(&order, &down);
    for sweep in 0..SWEEPS {
        if best_crossings == 0 {
            break;
        }
        if sweep % 2 == 0 {
            for l in 1..depth {
                reorder(&mut order, l, l - 1, &up);
            }
        } else {
            for l in (0..depth.saturating_sub(1)).rev() {
                reorder(&mut order, l, l + 1, &down);
            }
        }
        let c = count_all_crossings(&order, &down);
        if c < best_crossings {
            best_crossings = c;
            best = order.clone();
        }
    }
    let order = best;

    // x: each column as wide as its widest node.
    let mut col_x = Vec::with_capacity(depth);
    let mut col_w = Vec::with_capacity(depth);
    let mut x = MARGIN;
    for col in &order {
        let w = col.iter().map(|&v| size[v].0).fold(0.0, f64::max);
        col_x.push(x);
        col_w.push(w);
        x += w + LAYER_GAP;
    }
    let width = if depth == 0 {
        2.0 * MARGIN
    } else {
        x - LAYER_GAP + MARGIN
    };

    // y: stack every column, then pull nodes towards their neighbours.
    let mut y = vec![0.0; total];
    for col in &order {
        let mut top = 0.0;
        for &v in col {
            y[v] = top;
            top += size[v].1 + NODE_GAP;
        }
    }
    for pass in 0..8 {
        let (range, nbrs): (Vec<usize>, &Vec<Vec<usize>>) = if pass % 2 == 0 {
            ((1..depth).collect(), &up)
        } else {
            ((0..depth.saturating_sub(1)).rev().collect(), &down)
        };
        for l in range {
            place_column(&order[l], &mut y, &size, nbrs);
        }
    }
    let min_y = (0..total).map(|v| y[v]).fold(f64::INFINITY, f64::min);
    let shift = if min_y.is_finite() {
        MARGIN - min_y
    } else {
        0.0
    };
    for v in y.iter_mut() {
        *v += shift;
    }
    let height = (0..total).map(|v| y[v] + size[v].1).fold(0.0, f64::max) + MARGIN;

    // Centre each node in its column.
    let rect = |v: usize| Rect {
        x: col_x[layer[v]] + (col_w[layer[v]] - size[v].0) / 2.0,
        y: y[v],
        w: size[v].0,
        h: size[v].1,
    };
    let nodes: Vec<Rect> = (0..n).map(rect).collect();
    let edges = chains
        .iter()
        .map(|chain| {
            let mut points = Vec::with_capacity(chain.len() + 2);
            let first = rect(chain[0]);
            points.push((first.x + first.w, first.centre_y()));
            for &d in &chain[1..chain.len() - 1] {
                // A dummy crosses its whole column at its height.
                let r = rect(d);
                points.push((col_x[layer[d]], r.y));
                points.push((col_x[layer[d]] + col_w[layer[d]], r.y));
            }
            let last = rect(chain[chain.len() - 1]);
            points.push((last.x, last.centre_y()));
            points
        })
        .collect();
    Ok(Layout {
        nodes,
        edges,
        layers: layer_of,
        width,
        height: if n == 0 { 2.0 * MARGIN } else { height },
        crossings: best_crossings,
    })
}

/// Layer of each node: 0 for nodes without dependencies, else one more than the highest layer
/// among its dependencies (Kahn's order, so a cycle is found rather than looped on).
fn longest_path_layers(n: usize, edges: &[(usize, usize)]) -> Result<Vec<usize>, LayoutError> {
    let mut indegree = vec![0usize; n];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        indegree[b] += 1;
        out[a].push(b);
    }
    let mut layer = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).rev().collect();
    let mut seen = 0;
    while let Some(v) = ready.pop() {
        seen += 1;
        for &w in &out[v] {
            layer[w] = layer[w].max(layer[v] + 1);
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push(w);
            }
        }
    }
    if seen < n {
        let stuck = (0..n).find(|&v| indegree[v] > 0).unwrap_or(0);
        return Err(LayoutError::Cycle(stuck));
    }
    Ok(layer)
}

/// Sort layer `l` by the barycentre of each node's neighbours in layer `fixed`; a node without
/// neighbours there keeps its position.
fn reorder(order: &mut [Vec<usize>], l: usize, fixed: usize, nbrs: &[Vec<usize>]) {
    let pos: std::collections::HashMap<usize, usize> = order[fixed]
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i))
        .collect();
    let mut keyed: Vec<(f64, usize, usize)> = order[l]
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ps: Vec<usize> = nbrs[v].iter().filter_map(|w| pos.get(w).copied()).collect();
            let key = if ps.is_empty() {
                i as f64
            } else {
                ps.iter().sum::<usize>() as f64 / ps.len() as f64
            };
            (key, i, v)
        })
        .collect();
    // Ties keep the current order (stable, and `i` breaks them explicitly).
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    order[l] = keyed.into_iter().map(|(_, _, v)| v).collect();
}

/// Crossings of the edges between every pair of adjacent layers.
fn count_all_crossings(order: &[Vec<usize>], down: &[Vec<usize>]) -> usize {
    (0..order.len().saturating_sub(1))
        .map(|l| crossings_between(&order[l], &order[l + 1], down))
        .sum()
}

/// Two edges (a→b, c→d) between adjacent layers cross when a is above c and b below d.
pub(crate) fn crossings_between(top: &[usize], next: &[usize], down: &[Vec<usize>]) -> usize {
    let pos: std::collections::HashMap<usize, usize> =
        next.iter().enumerate().map(|(i, &v)| (v, i)).collect();
    let mut segs: Vec<(usize, usize)> = Vec::new();
    for (i, &v) in top.iter().enumerate() {
        for w in &down[v] {
            if let Some(&j) = pos.get(w) {
                segs.push((i, j));
            }
        }
    }
    let mut c = 0;
    for (k, &(a, b)) in segs.iter().enumerate() {
        for &(x, y) in &segs[k + 1..] {
            if (a < x && b > y) || (a > x && b < y) {
                c += 1;
            }
        }
    }
    c
}

/// Place one column: each node wants the mean centre of its neighbours (in the column just
/// placed); nodes keep their order and never overlap. Two greedy placements, one pushing
/// conflicts down (top first) and one pushing them up (bottom first), are averaged: the mean of
/// two placements that keep order and gaps keeps them too, and it does not drift either way.
fn place_column(col: &[usize], y: &mut [f64], size: &[(f64, f64)], nbrs: &[Vec<usize>]) {
    if col.is_empty() {
        return;
    }
    let wanted: Vec<f64> = col
        .iter()
        .map(|&v| {
            if nbrs[v].is_empty() {
                y[v]
            } else {
                let c: f64 = nbrs[v].iter().map(|&w| y[w] + size[w].1 / 2.0).sum::<f64>()
                    / nbrs[v].len() as f64;
                c - size[v].1 / 2.0
            }
        })
        .collect();
    let mut down = Vec::with_capacity(col.len());
    let mut floor = f64::NEG_INFINITY;
    for (i, &v) in col.iter().enumerate() {
        let top = wanted[i].max(floor);
        down.push(top);
        floor = top + size[v].1 + NODE_GAP;
    }
    let mut up = vec![0.0; col.len()];
    let mut ceiling = f64::INFINITY;
    for (i, &v) in col.iter().enumerate().rev() {
        let top = wanted[i].min(ceiling - size[v].1 - NODE_GAP);
        up[i] = top;
        ceiling = top;
    }
    for (i, &v) in col.iter().enumerate() {
        y[v] = (down[i] + up[i]) / 2.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes(n: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| (100.0 + (i % 3) as f64 * 20.0, 40.0))
            .collect()
    }

    fn overlaps(a: &Rect, b: &Rect) -> bool {
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
    }

    /// The demo pipeline's shape: nine sources, builds fanning in and out.
    fn pipeline_like() -> (usize, Vec<(usize, usize)>) {
        let edges = vec![
            (0, 9),
            (2, 10),
            (0, 11),
            (9, 11),
            (10, 11),
            (1, 12),
            (11, 12),
            (10, 12),
            (4, 13),
            (5, 13),
            (6, 13),
            (7, 13),
            (8, 13),
            (13, 14),
            (12, 14),
            (11, 14),
            (3, 15),
            (2, 15),
            (12, 15),
            (11, 15),
            (15, 16),
            (11, 17),
            (12, 17),
            (10, 17),
            (16, 17),
            (14, 17),
            (17, 18),
            (12, 18),
            (11, 18),
            (18, 19),
            (17, 20),
            (12, 20),
            (13, 21),
            (14, 21),
            (13, 22),
            (14, 22),
        ];
        (23, edges)
    }

    #[test]
    fn every_edge_points_to_a_later_layer() {
        let (n, edges) = pipeline_like();
        let l = layout(&boxes(n), &edges).unwrap();
        for &(a, b) in &edges {
            assert!(l.layers[a] < l.layers[b], "edge {a}->{b}: {:?}", l.layers);
            assert!(
                l.nodes[a].x + l.nodes[a].w < l.nodes[b].x,
                "edge {a}->{b} not rightwards"
            );
        }
        // Longest path: a node sits right after its furthest dependency.
        for b in 0..n {
            let deps: Vec<usize> = edges
                .iter()
                .filter(|e| e.1 == b)
                .map(|e| l.layers[e.0])
                .collect();
            let want = deps.iter().max().map_or(0, |m| m + 1);
            assert_eq!(l.layers[b], want, "node {b}");
        }
    }

    #[test]
    fn nodes_never_overlap_and_fit_the_drawing() {
        let (n, edges) = pipeline_like();
        let l = layout(&boxes(n), &edges).unwrap();
        for i in 0..n {
            let r = &l.nodes[i];
            assert!(r.x >= 0.0 && r.y >= 0.0, "{r:?}");
            assert!(
                r.x + r.w <= l.width && r.y + r.h <= l.height,
                "{r:?} outside"
            );
            for j in i + 1..n {
                assert!(!overlaps(r, &l.nodes[j]), "{i} and {j} overlap");
            }
        }
    }

    #[test]
    fn barycentre_ordering_removes_avoidable_crossings() {
        // a→d, b→c with the input order (a, b | c, d) crosses once; swapping removes it.
        let l = layout(&boxes(4), &[(0, 3), (1, 2)]).unwrap();
        assert_eq!(l.crossings, 0);
        assert!(
            l.nodes[3].centre_y() < l.nodes[2].centre_y(),
            "d should be above c"
        );
        // K(2,2) cannot be drawn without one crossing.
        let l = layout(&boxes(4), &[(0, 2), (0, 3), (1, 2), (1, 3)]).unwrap();
        assert_eq!(l.crossings, 1);
    }

    #[test]
    fn ordering_beats_the_input_order_on_a_pipeline() {
        let (n, edges) = pipeline_like();
        let l = layout(&boxes(n), &edges).unwrap();
        // The input order of the same layers, with dummies, has more crossings.
        let naive = {
            let layers = longest_path_layers(n, &edges).unwrap();
            let depth = layers.iter().max().unwrap() + 1;
            let mut order: Vec<Vec<usize>> = vec![Vec::new(); depth];
            let mut down: Vec<Vec<usize>> = vec![Vec::new(); n];
            let mut total = n;
            for v in 0..n {
                order[layers[v]].push(v);
            }
            for &(a, b) in &edges {
                let mut prev = a;
                for layer in order.iter_mut().take(layers[b]).skip(layers[a] + 1) {
                    down.push(Vec::new());
                    layer.push(total);
                    down[prev].push(total);
                    prev = total;
                    total += 1;
                }
                down[prev].push(b);
            }
            count_all_crossings(&order, &down)
        };
        assert!(
            l.crossings < naive,
            "{} crossings, input order {naive}",
            l.crossings
        );
    }

    #[test]
    fn long_edges_bend_through_dummy_nodes() {
        // 0→1→2 and 0→2: the long edge passes layer 1 as a dummy (two extra points).
        let l = layout(&boxes(3), &[(0, 1), (1, 2), (0, 2)]).unwrap();
        assert_eq!(l.edges[0].len(), 2);
        assert_eq!(l.edges[2].len(), 4);
        // The dummy's path does not cross node 1's box.
        let mid = l.edges[2][1].1;
        let r = l.nodes[1];
        assert!(
            mid < r.y || mid > r.y + r.h,
            "long edge runs through node 1"
        );
    }

    #[test]
    fn edges_leave_their_source_and_reach_their_target() {
        let (n, edges) = pipeline_like();
        let l = layout(&boxes(n), &edges).unwrap();
        for (e, &(a, b)) in edges.iter().enumerate() {
            let p = &l.edges[e];
            let (sa, sb) = (l.nodes[a], l.nodes[b]);
            assert_eq!(p[0], (sa.x + sa.w, sa.centre_y()));
            assert_eq!(p[p.len() - 1], (sb.x, sb.centre_y()));
            assert!(p.windows(2).all(|w| w[0].0 <= w[1].0), "edge {e} goes left");
        }
    }

    #[test]
    fn deterministic_and_handles_edge_cases() {
        let (n, edges) = pipeline_like();
        assert_eq!(
            layout(&boxes(n), &edges).unwrap(),
            layout(&boxes(n), &edges).unwrap()
        );
        let empty = layout(&[], &[]).unwrap();
        assert!(empty.nodes.is_empty() && empty.width > 0.0);
        let single = layout(&boxes(1), &[]).unwrap();
        assert_eq!(single.nodes[0].x, MARGIN);
        assert_eq!(
            layout(&boxes(2), &[(0, 1), (1, 0)]),
            Err(LayoutError::Cycle(0))
        );
        assert_eq!(
            layout(&boxes(2), &[(0, 5)]),
            Err(LayoutError::UnknownNode(0, 5, 2))
        );
    }
}
