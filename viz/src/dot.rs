//! The graph in graphviz-rust's DOT model, and back.
//!
//! Node ids are plain identifiers made from the job names (`Invite Lawyer
//! Cat` becomes `Invite_Lawyer_Cat`, made unique and kept clear of DOT's
//! keywords); the exact name travels in the node's `label`, escaped for
//! DOT's quoted strings and for Graphviz's label escapes, so any name
//! survives a print and a parse.

use std::collections::HashSet;

use graphviz_rust::dot_structures::{
    Attribute, Edge, EdgeTy, Graph, GraphAttributes, Id, Node, NodeId, Stmt, Subgraph, Vertex,
};
use graphviz_rust::printer::{DotPrinter, PrinterContext};

use crate::Options;
use crate::source::{self, Job};

/// The font Graphviz is asked for: a list fontconfig and browsers both read.
const GRAPHVIZ_FONT: &str = "Helvetica,Arial,sans-serif";

pub(crate) fn graph(jobs: &[Job], options: &Options) -> Graph {
    graph_with_rows(jobs, options, &[])
}

/// [`graph`], with wrapped ranks told to Graphviz: `rows[j]` says how many
/// of its layer's rows are above and below job `j`, and an edge from `a`
/// to `b` is made at least `1 + below(a) + above(b)` ranks long
/// (`minlen`), which holds each job in its own row. An empty `rows` adds
/// nothing.
pub(crate) fn graph_with_rows(jobs: &[Job], options: &Options, rows: &[(usize, usize)]) -> Graph {
    let style = &options.style;
    let ids = node_ids(jobs);
    let mut stmts = Vec::with_capacity(3 + jobs.len() * 2);
    stmts.push(Stmt::GAttribute(GraphAttributes::Node(vec![
        attr("shape", plain("box")),
        attr("style", quoted("rounded")),
        attr("fontname", quoted(GRAPHVIZ_FONT)),
    ])));
    stmts.push(Stmt::GAttribute(GraphAttributes::Edge(vec![attr(
        "color",
        quoted("#333333"),
    )])));
    for (job, id) in jobs.iter().zip(&ids) {
        let (name, second) = source::label(job, style, options.details);
        let mut label = name;
        if let Some(second) = second {
            label.push('\n');
            label.push_str(&second);
        }
        let mut attributes = vec![attr("label", Id::Escaped(escape_label(&label)))];
        if let Some(full) = source::tooltip(job, style) {
            let full = Id::Escaped(escape_label(&full));
            attributes.push(attr("tooltip", full.clone()));
            attributes.push(attr("comment", full));
        }
        attributes.extend(look(job.status, job.dummy, job.members.is_some()));
        stmts.push(Stmt::Node(Node::new(
            NodeId(Id::Plain(id.clone()), None),
            attributes,
        )));
    }
    for (index, (job, id)) in jobs.iter().zip(&ids).enumerate() {
        for &dep in &job.deps {
            let below = rows.get(index).map_or(0, |&(_, below)| below);
            let above = rows.get(dep).map_or(0, |&(above, _)| above);
            let attributes = if below + above > 0 {
                vec![attr("minlen", plain(&(1 + below + above).to_string()))]
            } else {
                Vec::new()
            };
            stmts.push(Stmt::Edge(Edge {
                ty: EdgeTy::Pair(
                    Vertex::N(NodeId(Id::Plain(id.clone()), None)),
                    Vertex::N(NodeId(Id::Plain(ids[dep].clone()), None)),
                ),
                attributes,
            }));
        }
    }
    if style.legend {
        stmts.push(Stmt::Subgraph(legend(jobs)));
    }
    Graph::DiGraph {
        id: Id::Plain("dojobber".to_owned()),
        strict: false,
        stmts,
    }
}

/// How a box looks beyond the defaults: filled by status, dashed for a
/// dummy job, a double outline for a collapsed box.
fn look(status: Option<dojobber::Status>, dummy: bool, collapsed: bool) -> Vec<Attribute> {
    let mut attributes = Vec::new();
    let colours = source::colours(status);
    let mut styles = vec!["rounded"];
    if colours.is_some() {
        styles.push("filled");
    }
    if dummy {
        styles.push("dashed");
    }
    if styles.len() > 1 {
        attributes.push(attr("style", quoted(&styles.join(","))));
    }
    if let Some((fill, text)) = colours {
        attributes.push(attr("fillcolor", plain(fill)));
        attributes.push(attr("fontcolor", plain(text)));
    }
    if collapsed {
        attributes.push(attr("peripheries", plain("2")));
    }
    attributes
}

/// The legend as a cluster of sample boxes in one row, in order (a
/// `rank=same` subgraph chained by invisible edges). Their ids are quoted
/// and hold a `:`, which no job's id does, and [`labels`] skips them.
fn legend(jobs: &[Job]) -> Subgraph {
    let mut row = vec![Stmt::Attribute(attr("rank", plain("same")))];
    let entries = source::legend(jobs);
    let id = |i: usize| NodeId(quoted(&format!("legend:{i}")), None);
    for (i, entry) in entries.iter().enumerate() {
        let mut attributes = vec![attr("label", quoted(entry.text))];
        attributes.extend(look(entry.status, entry.dummy, entry.collapsed));
        row.push(Stmt::Node(Node::new(id(i), attributes)));
    }
    for i in 1..entries.len() {
        row.push(Stmt::Edge(Edge {
            ty: EdgeTy::Pair(Vertex::N(id(i - 1)), Vertex::N(id(i))),
            attributes: vec![attr("style", plain("invis"))],
        }));
    }
    Subgraph {
        id: plain("cluster_legend"),
        stmts: vec![
            Stmt::Attribute(attr("label", quoted("Legend"))),
            Stmt::Attribute(attr("fontname", quoted(GRAPHVIZ_FONT))),
            Stmt::Attribute(attr("color", quoted("#999999"))),
            Stmt::Subgraph(Subgraph {
                id: plain("legend_row"),
                stmts: row,
            }),
        ],
    }
}

pub(crate) fn print(graph: &Graph) -> String {
    let mut text = graph.print(&mut PrinterContext::default());
    text.push('\n');
    text
}

fn attr(name: &str, value: Id) -> Attribute {
    Attribute(Id::Plain(name.to_owned()), value)
}

fn plain(value: &str) -> Id {
    Id::Plain(value.to_owned())
}

/// A quoted DOT string for a value that holds no quote or backslash.
fn quoted(value: &str) -> Id {
    debug_assert!(!value.contains(['"', '\\']));
    Id::Escaped(format!("\"{value}\""))
}

/// DOT's keywords, which cannot be plain ids (matched without case).
const KEYWORDS: [&str; 6] = ["node", "edge", "graph", "digraph", "subgraph", "strict"];

/// The longest node id made from a name, before a clash's suffix.
const MAX_ID_CHARS: usize = 48;

/// One plain, unique identifier per job, readable in the DOT text:
/// letters, digits and `_` of the name (its first [`MAX_ID_CHARS`]),
/// `job` when nothing is left, a `_2`, `_3`, ... suffix for a clash.
fn node_ids(jobs: &[Job]) -> Vec<String> {
    let mut used = HashSet::with_capacity(jobs.len());
    jobs.iter()
        .map(|job| {
            let mut base: String = job
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            // A 10 KB name keeps its label's comment, not a 10 KB id.
            if let Some((cut, _)) = base.char_indices().nth(MAX_ID_CHARS) {
                base.truncate(cut);
            }
            if base.trim_matches('_').is_empty() {
                base = "job".to_owned();
            }
            if base.starts_with(|c: char| c.is_ascii_digit())
                || KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&base))
            {
                base.insert_str(0, "job_");
            }
            let mut id = base.clone();
            let mut n = 2;
            while !used.insert(id.clone()) {
                id = format!("{base}_{n}");
                n += 1;
            }
            id
        })
        .collect()
}

/// The label as a quoted DOT string (quotes included). Inside it Graphviz
/// reads `\\` as a backslash and `\n` as a line break, and DOT's parser
/// reads `\"` as a quote; nothing else needs escaping once control
/// characters are made printable ([`crate::names::printable`]).
fn escape_label(label: &str) -> String {
    let mut out = String::with_capacity(label.len() + 2);
    out.push('"');
    for c in label.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The text Graphviz shows for a label value: the inverse of the escaping
/// above for quoted strings (`\n`, `\l` and `\r` all end a line); a plain
/// id is its own text and an HTML label is returned as written.
pub(crate) fn label_text(id: &Id) -> String {
    match id {
        Id::Escaped(quoted) => {
            let inner = quoted
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(quoted);
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n' | 'l' | 'r') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            }
            out
        }
        Id::Html(text) | Id::Plain(text) | Id::Anonymous(text) => text.clone(),
    }
}

/// The labels of a parsed graph's node statements, in order.
pub(crate) fn labels(graph: &Graph) -> Vec<String> {
    let stmts = match graph {
        Graph::Graph { stmts, .. } | Graph::DiGraph { stmts, .. } => stmts,
    };
    stmts
        .iter()
        .filter_map(|stmt| match stmt {
            Stmt::Node(node) => node
                .attributes
                .iter()
                .find(|Attribute(key, _)| matches!(key, Id::Plain(k) if k == "label"))
                .map(|Attribute(_, value)| label_text(value)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str) -> Job {
        Job::single(name.to_owned(), None)
    }

    #[test]
    fn wrapped_rows_reach_graphviz_as_minlen() {
        // Root -> A1..A4, each -> Leaf; two rows of two.
        let mut jobs: Vec<Job> = ["Root", "A1", "A2", "A3", "A4", "Leaf"]
            .into_iter()
            .map(job)
            .collect();
        jobs[0].deps = vec![1, 2, 3, 4];
        for a in &mut jobs[1..=4] {
            a.deps = vec![5];
        }
        let rows = crate::layered::wrap_rows(&jobs, &[100.0; 6], 250.0);
        assert_eq!(rows, [(0, 0), (0, 1), (0, 1), (1, 0), (1, 0), (0, 0)]);
        let text = print(&graph_with_rows(&jobs, &Options::default(), &rows));
        for edge in [
            "Root -> A1\n",
            "Root -> A3 [minlen=2]",
            "A1 -> Leaf [minlen=2]",
            "A3 -> Leaf\n",
        ] {
            assert!(text.contains(edge), "{edge:?} in\n{text}");
        }
    }

    #[test]
    fn ids_are_plain_unique_and_not_keywords() {
        let jobs: Vec<Job> = [
            "Invite Lawyer Cat",
            "Invite_Lawyer_Cat",
            "node",
            "3D",
            "ü",
            "",
        ]
        .into_iter()
        .map(job)
        .collect();
        assert_eq!(
            node_ids(&jobs),
            [
                "Invite_Lawyer_Cat",
                "Invite_Lawyer_Cat_2",
                "job_node",
                "job_3D",
                "job",
                "job_2"
            ]
        );
    }

    #[test]
    fn labels_escape_quotes_backslashes_and_newlines() {
        assert_eq!(escape_label("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(escape_label("ends with \\"), r#""ends with \\""#);
        let text = label_text(&Id::Escaped(escape_label("x\\\"\n\\n")));
        assert_eq!(text, "x\\\"\n\\n");
    }
}
