//! Wide fan-outs drawn as one box: when a job has more than a threshold
//! of deps of one kind, they become a single `50 × RenderPage` job whose
//! edges are the union of theirs. Pictures only: DOT keeps every job.

use std::collections::{HashMap, HashSet};

use petgraph::algo::tarjan_scc;
use petgraph::graph::DiGraph;

use crate::names;
use crate::source::{Job, Members};

/// The jobs with every fan-out of more than `over` deps of one kind
/// (see [`names::kind`]) collapsed into one box, placed where its first
/// member was. A job joins at most one box; a box that would close a
/// cycle in the picture (a member reaching another through outside jobs)
/// is not made. O((V + E) log V) plus one pass per round of undone boxes.
///
/// Also returns, for each job given, the position of the box it is drawn
/// in (its own, or its fan-out's), so a page can tell which jobs a box
/// stands for.
pub(crate) fn collapse(jobs: Vec<Job>, over: usize) -> (Vec<Job>, Vec<usize>) {
    let n = jobs.len();
    let (mut box_of, mut boxes) = fan_outs(&jobs, over);
    // Undo the boxes that close a cycle, until none does: one pass over
    // the graph each time, and in practice there is none or one.
    loop {
        let on_cycles = boxes_on_cycles(&jobs, &box_of, boxes.len());
        if on_cycles.is_empty() {
            break;
        }
        for b in on_cycles {
            for m in std::mem::take(&mut boxes[b]) {
                box_of[m] = None;
            }
        }
    }
    // Renumber the boxes left.
    let mut renumber = vec![usize::MAX; boxes.len()];
    let mut kept = Vec::new();
    for (b, members) in boxes.into_iter().enumerate() {
        if !members.is_empty() {
            renumber[b] = kept.len();
            kept.push(members);
        }
    }
    for b in box_of.iter_mut().flatten() {
        *b = renumber[*b];
    }
    let boxes = kept;
    if boxes.is_empty() {
        let positions = (0..n).collect();
        return (jobs, positions);
    }

    // New positions: each ungrouped job, and each box at its first member.
    let mut new_index = vec![usize::MAX; n];
    let mut box_index = vec![usize::MAX; boxes.len()];
    let mut next = 0;
    for j in 0..n {
        match box_of[j] {
            None => {
                new_index[j] = next;
                next += 1;
            }
            Some(b) => {
                if box_index[b] == usize::MAX {
                    box_index[b] = next;
                    next += 1;
                }
                new_index[j] = box_index[b];
            }
        }
    }
    let mut out: Vec<Option<Job>> = (0..next).map(|_| None).collect();
    // Deps in their new places, each once, in the order first met.
    let remap = |deps: &mut dyn Iterator<Item = usize>, own: usize| {
        let mut seen = HashSet::new();
        deps.map(|dep| new_index[dep])
            .filter(|&to| to != own && seen.insert(to))
            .collect::<Vec<usize>>()
    };
    for (b, members) in boxes.iter().enumerate() {
        let own = box_index[b];
        let first = &jobs[members[0]];
        let kind = names::kind(&first.name).expect("boxed jobs have a kind");
        let mut all_deps = members.iter().flat_map(|&m| jobs[m].deps.iter().copied());
        let deps = remap(&mut all_deps, own);
        out[own] = Some(Job {
            deps,
            dummy: false,
            members: Some(Members {
                names: members.iter().map(|&m| jobs[m].name.clone()).collect(),
                statuses: members.iter().map(|&m| jobs[m].status).collect(),
            }),
            ..Job::single(format!("{} × {kind}", members.len()), None)
        });
    }
    for (j, job) in jobs.into_iter().enumerate() {
        if box_of[j].is_none() {
            let own = new_index[j];
            let deps = remap(&mut job.deps.iter().copied(), own);
            out[own] = Some(Job { deps, ..job });
        }
    }
    let out = out
        .into_iter()
        .map(|job| job.expect("every new position is filled"))
        .collect();
    (out, new_index)
}

/// Every fan-out of more than `over` deps of one kind, as a box of its
/// members in the reference order, each job in one box at most; and per
/// job, the index of its box.
fn fan_outs(jobs: &[Job], over: usize) -> (Vec<Option<usize>>, Vec<Vec<usize>>) {
    let mut box_of: Vec<Option<usize>> = vec![None; jobs.len()];
    let mut boxes: Vec<Vec<usize>> = Vec::new();
    for job in jobs {
        let mut by_kind: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut kinds_in_order: Vec<&str> = Vec::new();
        for &dep in &job.deps {
            if box_of[dep].is_some() {
                continue;
            }
            if let Some(kind) = names::kind(&jobs[dep].name) {
                let members = by_kind.entry(kind).or_default();
                if members.is_empty() {
                    kinds_in_order.push(kind);
                }
                members.push(dep);
            }
        }
        for kind in kinds_in_order {
            let mut members = by_kind.remove(kind).expect("listed kinds have members");
            // The reference order, each job once (a report may repeat a dep).
            members.sort_unstable();
            members.dedup();
            if members.len() > over {
                for &m in &members {
                    box_of[m] = Some(boxes.len());
                }
                boxes.push(members);
            }
        }
    }
    (box_of, boxes)
}

/// The boxes that lie on a cycle of the picture with jobs merged as
/// `box_of` says: a member reaching another through outside jobs.
fn boxes_on_cycles(jobs: &[Job], box_of: &[Option<usize>], boxes: usize) -> Vec<usize> {
    let n = jobs.len();
    let node = |j: usize| box_of[j].map_or(j, |b| n + b);
    let mut graph = DiGraph::<(), ()>::with_capacity(n + boxes, n);
    let nodes: Vec<_> = (0..n + boxes).map(|_| graph.add_node(())).collect();
    for (j, job) in jobs.iter().enumerate() {
        for &dep in &job.deps {
            let (a, b) = (node(j), node(dep));
            if a != b {
                graph.add_edge(nodes[a], nodes[b], ());
            }
        }
    }
    tarjan_scc(&graph)
        .into_iter()
        .filter(|component| component.len() > 1)
        .flatten()
        .filter_map(|index| index.index().checked_sub(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, deps: Vec<usize>) -> Job {
        Job {
            deps,
            ..Job::single(name.to_owned(), None)
        }
    }

    #[test]
    fn a_wide_fan_out_becomes_one_box() {
        let mut jobs = vec![job("Site", (1..=5).collect())];
        for i in 1..=4 {
            jobs.push(job(&format!("Page {i}"), vec![6]));
        }
        jobs.push(job("Assets", vec![]));
        jobs.push(job("Data", vec![]));
        let (out, positions) = collapse(jobs, 3);
        assert_eq!(positions, [0, 1, 1, 1, 1, 2, 3]);
        let names: Vec<&str> = out.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["Site", "4 × Page", "Assets", "Data"]);
        assert_eq!(out[0].deps, [1, 2]);
        assert_eq!(out[1].deps, [3]);
        assert_eq!(out[1].members.as_ref().unwrap().names.len(), 4);
    }

    #[test]
    fn small_fan_outs_and_cycles_stay_apart() {
        let jobs = vec![
            job("Site", vec![1, 2]),
            job("Page 1", vec![]),
            job("Page 2", vec![]),
        ];
        assert_eq!(collapse(jobs.clone(), 2).0.len(), 3);
        // Page 1 -> Sitemap -> Page 2: one box would depend on itself
        // through Sitemap.
        let jobs = vec![
            job("Site", vec![1, 3]),
            job("Page 1", vec![2]),
            job("Sitemap", vec![3]),
            job("Page 2", vec![]),
        ];
        let (out, positions) = collapse(jobs, 1);
        assert_eq!(out.len(), 4);
        assert_eq!(positions, [0, 1, 2, 3]);
    }

    proptest::proptest! {
        /// On random DAGs of few kinds, every job is drawn once (alone or
        /// in one box, the one its position names), and the picture has no
        /// cycle and no self-loop.
        #[test]
        fn collapsing_keeps_every_job_once_and_no_cycle(
            n in 2usize..40,
            edges in proptest::collection::vec((0usize..40, 0usize..40), 0..120),
            kinds in proptest::collection::vec(0usize..3, 40),
        ) {
            let mut jobs: Vec<Job> = (0..n)
                .map(|i| job(&format!("{} {i}", ["Page", "Asset", "Step"][kinds[i]]), vec![]))
                .collect();
            for (a, b) in edges {
                let (a, b) = (a % n, b % n);
                if a < b && !jobs[a].deps.contains(&b) {
                    jobs[a].deps.push(b);
                }
            }
            let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
            let (out, positions) = collapse(jobs, 1);
            // Each job's position is the box that draws it.
            for (name, &at) in names.iter().zip(&positions) {
                let drawn_there = match &out[at].members {
                    Some(members) => members.names.contains(name),
                    None => out[at].name == *name,
                };
                proptest::prop_assert!(drawn_there, "{} is not drawn at {}", name, at);
            }
            let drawn: usize = out
                .iter()
                .map(|j| j.members.as_ref().map_or(1, |m| m.names.len()))
                .sum();
            proptest::prop_assert_eq!(drawn, n);
            let mut graph = DiGraph::<(), ()>::new();
            let nodes: Vec<_> = out.iter().map(|_| graph.add_node(())).collect();
            for (i, j) in out.iter().enumerate() {
                for &d in &j.deps {
                    proptest::prop_assert_ne!(i, d);
                    graph.add_edge(nodes[i], nodes[d], ());
                }
            }
            proptest::prop_assert!(!petgraph::algo::is_cyclic_directed(&graph));
        }
    }
}
