//! The dependency graph of a pipeline: edges, cycle detection, topological order, and the
//! graph queries the executor and the API ask (dependencies, dependants, downstream of).

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

    /// Direct dependencies of `node`.
    pub fn dependencies(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.edges.iter().filter(move |e| e.1 == node).map(|e| e.0)
    }

    /// `roots` and every node downstream of them (their dependants, transitively), in
    /// topological order: what must run again after `roots` changed.
    pub fn downstream_of(&self, roots: &[usize]) -> Vec<usize> {
        let mut chosen = vec![false; self.order.len()];
        for &r in roots {
            if let Some(c) = chosen.get_mut(r) {
                *c = true;
            }
        }
        // Dependencies come first in `order`, so one pass reaches every descendant.
        for &node in &self.order {
            if !chosen[node] && self.dependencies(node).any(|d| chosen[d]) {
                chosen[node] = true;
            }
        }
        self.order.iter().copied().filter(|&i| chosen[i]).collect()
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
        assert_eq!(dag.dependencies(0).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn downstream_of_is_transitive_and_in_topological_order() {
        // 3 <- 1 <- 0, 2 <- 1, 4 independent, 5 <- {2, 4}
        let dag = Dag::new(&[vec![], vec![0, 3], vec![1], vec![], vec![], vec![2, 4]]).unwrap();
        assert_eq!(dag.downstream_of(&[3]), vec![3, 1, 2, 5]);
        assert_eq!(dag.downstream_of(&[4]), vec![4, 5]);
        assert_eq!(dag.downstream_of(&[2, 0]), vec![0, 1, 2, 5]);
        assert_eq!(dag.downstream_of(&[5]), vec![5]);
        assert_eq!(dag.downstream_of(&[]), Vec::<usize>::new());
    }

    #[test]
    fn finds_cycles() {
        let err = Dag::new(&[vec![2], vec![0], vec![1]]).unwrap_err();
        assert_eq!(err.0.first(), err.0.last());
        assert_eq!(err.0.len(), 4);
        assert_eq!(Dag::new(&[vec![0]]).unwrap_err(), Cycle(vec![0, 0]));
    }
}
