//! The dependency graph of a pipeline: edges, cycle detection, topological order.

/// Nodes are indices into `Pipeline::nodes`; an edge `(a, b)` means b depends on a.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    pub edges: Vec<(usize, usize)>,
    /// A topological order (dependencies first), stable with respect to file order.
    pub order: Vec<usize>,
}

/// A dependency cycle, as the node indices along it (first == last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<usize>);

impl Dag {
    /// Build from each node's dependency indices. Fails with one cycle if there is any.
    pub fn new(deps: &[Vec<usize>]) -> Result<Dag, Cycle> {
        let n = deps.len();
        if let Some(cycle) = find_cycle(deps) {
            return Err(cycle);
        }
        let edges: Vec<(usize, usize)> = deps
            .iter()
            .enumerate()
            .flat_map(|(node, ds)| ds.iter().map(move |&d| (d, node)))
            .collect();
        // Kahn's algorithm, always taking the lowest ready index: file order among equals.
        let mut indegree: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            let Some(next) = (0..n).find(|&i| !done[i] && indegree[i] == 0) else {
                break; // unreachable: no cycle
            };
            done[next] = true;
            order.push(next);
            for &(from, to) in &edges {
                if from == next {
                    indegree[to] -= 1;
                }
            }
        }
        Ok(Dag { edges, order })
    }

    /// Direct dependants of `node`.
    pub fn dependants(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.edges.iter().filter(move |e| e.0 == node).map(|e| e.1)
    }
}

fn find_cycle(deps: &[Vec<usize>]) -> Option<Cycle> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    fn visit(
        v: usize,
        deps: &[Vec<usize>],
        mark: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Cycle> {
        mark[v] = Mark::OnStack;
        stack.push(v);
        for &d in &deps[v] {
            match mark[d] {
                Mark::OnStack => {
                    let start = stack.iter().position(|&x| x == d).unwrap_or(0);
                    let mut path = stack[start..].to_vec();
                    path.push(d);
                    return Some(Cycle(path));
                }
                Mark::New => {
                    if let Some(c) = visit(d, deps, mark, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        mark[v] = Mark::Done;
        None
    }
    let mut mark = vec![Mark::New; deps.len()];
    let mut stack = Vec::new();
    (0..deps.len()).find_map(|v| {
        if mark[v] == Mark::New {
            visit(v, deps, &mut mark, &mut stack)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_dependencies_first_and_keeps_file_order() {
        // 0 <- 2, 1 <- 2, 2 <- 3
        let dag = Dag::new(&[vec![], vec![], vec![0, 1], vec![2]]).unwrap();
        assert_eq!(dag.order, vec![0, 1, 2, 3]);
        let dag = Dag::new(&[vec![1], vec![], vec![]]).unwrap();
        assert_eq!(dag.order, vec![1, 0, 2]);
        assert_eq!(dag.dependants(1).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn finds_cycles() {
        let err = Dag::new(&[vec![2], vec![0], vec![1]]).unwrap_err();
        assert_eq!(err.0.first(), err.0.last());
        assert_eq!(err.0.len(), 4);
        assert_eq!(Dag::new(&[vec![0]]).unwrap_err(), Cycle(vec![0, 0]));
    }
}
