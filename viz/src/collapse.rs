//! Wide fan-outs drawn as one box: when a job has more than a threshold
//! of deps of one kind, they become a single `50 × RenderPage` job whose
//! edges are the union of theirs. Pictures only: DOT keeps every job.

use std::collections::HashMap;

use petgraph::algo::is_cyclic_directed;
use petgraph::graph::DiGraph;

use crate::names;
use crate::source::{Job, Members};

/// The jobs with every fan-out of more than `over` deps of one kind
/// (see [`names::kind`]) collapsed into one box, placed where its first
/// member was. A job joins at most one box; a box that would close a
/// cycle in the picture (a member reaching another through outside jobs)
/// is not made.
pub(crate) fn collapse(jobs: Vec<Job>, over: usize) -> Vec<Job> {
    let n = jobs.len();
    // box_of[j]: the index of the box job j goes into, in `boxes`.
    let mut box_of: Vec<Option<usize>> = vec![None; n];
    let mut boxes: Vec<Vec<usize>> = Vec::new();
    for job in &jobs {
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
                if !members.contains(&dep) {
                    members.push(dep);
                }
            }
        }
        for kind in kinds_in_order {
            let members = by_kind.remove(kind).expect("listed kinds have members");
            if members.len() <= over {
                continue;
            }
            for &m in &members {
                box_of[m] = Some(boxes.len());
            }
            if forms_cycle(&jobs, &box_of) {
                for &m in &members {
                    box_of[m] = None;
                }
            } else {
                boxes.push(members);
            }
        }
    }
    if boxes.is_empty() {
        return jobs;
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
    let remap = |deps: &[usize], own: usize| {
        let mut mapped: Vec<usize> = Vec::with_capacity(deps.len());
        for &dep in deps {
            let to = new_index[dep];
            if to != own && !mapped.contains(&to) {
                mapped.push(to);
            }
        }
        mapped
    };
    for (b, members) in boxes.iter().enumerate() {
        let own = box_index[b];
        let first = &jobs[members[0]];
        let kind = names::kind(&first.name).expect("boxed jobs have a kind");
        let mut deps = Vec::new();
        for &m in members {
            for dep in remap(&jobs[m].deps, own) {
                if !deps.contains(&dep) {
                    deps.push(dep);
                }
            }
        }
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
            let deps = remap(&job.deps, own);
            out[own] = Some(Job { deps, ..job });
        }
    }
    out.into_iter()
        .map(|job| job.expect("every new position is filled"))
        .collect()
}

/// Whether the picture with jobs merged as `box_of` says has a cycle.
fn forms_cycle(jobs: &[Job], box_of: &[Option<usize>]) -> bool {
    let n = jobs.len();
    let node = |j: usize| box_of[j].map_or(j, |b| n + b);
    let mut graph = DiGraph::<(), ()>::new();
    let boxes = box_of.iter().flatten().max().map_or(0, |&b| b + 1);
    let nodes: Vec<_> = (0..n + boxes).map(|_| graph.add_node(())).collect();
    for (j, job) in jobs.iter().enumerate() {
        for &dep in &job.deps {
            let (a, b) = (node(j), node(dep));
            if a != b {
                graph.add_edge(nodes[a], nodes[b], ());
            }
        }
    }
    is_cyclic_directed(&graph)
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
        let out = collapse(jobs, 3);
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
        assert_eq!(collapse(jobs.clone(), 2).len(), 3);
        // Page 1 -> Sitemap -> Page 2: one box would depend on itself
        // through Sitemap.
        let jobs = vec![
            job("Site", vec![1, 3]),
            job("Page 1", vec![2]),
            job("Sitemap", vec![3]),
            job("Page 2", vec![]),
        ];
        assert_eq!(collapse(jobs, 1).len(), 4);
    }
}
