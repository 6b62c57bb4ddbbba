//! Core's modules keep the order ARCHITECTURE.md declares: each uses only
//! those before it. The order is read from the line of ARCHITECTURE.md
//! that starts with [`ORDER_LINE`]; each module's code (its unit tests
//! left out) is searched for `crate::` paths, and a path that names a
//! later module, or goes through the crate root's re-exports instead of
//! naming a module, fails the test with the file and line at fault.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// How the order's line in ARCHITECTURE.md begins; the module names follow
/// it in backquotes, lowest first.
const ORDER_LINE: &str = "Core's modules, lowest first:";

/// A `crate::` path in a module's code.
#[derive(Debug)]
struct Use {
    /// The first segment after `crate::`.
    target: String,
    /// `file:line`.
    at: String,
}

#[test]
fn each_module_uses_only_those_before_it() {
    let order = declared_order();
    let modules = modules_of_lib();
    assert_eq!(
        sorted(&order),
        sorted(&modules),
        "ARCHITECTURE.md's order and lib.rs's `mod` lines list different modules"
    );
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(rank, name)| (name.as_str(), rank))
        .collect();
    let mut wrong = Vec::new();
    for module in &order {
        for found in uses_of(module) {
            match rank.get(found.target.as_str()) {
                Some(&to) if to < rank[module.as_str()] => {}
                Some(_) if found.target == *module => {}
                Some(_) => wrong.push(format!(
                    "{}: `{module}` uses `{}`, which comes after it",
                    found.at, found.target
                )),
                None => wrong.push(format!(
                    "{}: `{module}` uses `crate::{}`: name the module the item is in, \
                     not the crate root's re-export",
                    found.at, found.target
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the order is {order:?}; against it:\n{}",
        wrong.join("\n")
    );
}

/// The check itself finds what it must: a use of a later module, a path
/// through the root, grouped imports; and skips comments and unit tests.
#[test]
fn the_search_finds_crate_paths_in_code_only() {
    let code = "use crate::plan::{JobId, Plan};\n\
                use crate::{event::{Event, Outcome}, job};\n\
                use crate::{\n    cancel::Handle,\n    graph,\n};\n\
                /// [`Runner`](crate::runner::Runner) in a doc comment\n\
                fn f() -> crate::JobResult { crate::text::humane(x); Ok(()) } // crate::machine\n\
                #[cfg(test)]\nmod tests {\n    use crate::runner::Runner;\n}\n";
    let found: Vec<String> = crate_paths(code, Path::new("x.rs"))
        .into_iter()
        .map(|found| format!("{} {}", found.at, found.target))
        .collect();
    assert_eq!(
        found,
        [
            "x.rs:1 plan",
            "x.rs:2 event",
            "x.rs:2 job",
            "x.rs:3 cancel",
            "x.rs:3 graph",
            "x.rs:8 JobResult",
            "x.rs:8 text"
        ]
    );
}

fn core_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut names = names.to_vec();
    names.sort();
    names
}

/// The module names on ARCHITECTURE.md's order line, lowest first.
fn declared_order() -> Vec<String> {
    let architecture = read(&core_dir().join("../ARCHITECTURE.md"));
    let line = architecture
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(ORDER_LINE))
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no line starting {ORDER_LINE:?}"));
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// The top-level modules `lib.rs` declares (`mod name;`).
fn modules_of_lib() -> Vec<String> {
    read(&core_dir().join("src/lib.rs"))
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("pub ").unwrap_or(line);
            line.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(String::from)
        })
        .collect()
}

/// Every `crate::` path in the files of one module (`name.rs`, or every
/// file under `name/`).
fn uses_of(module: &str) -> Vec<Use> {
    let src = core_dir().join("src");
    let mut files = Vec::new();
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    } else {
        let mut dirs = vec![src.join(module)];
        while let Some(dir) = dirs.pop() {
            let entries = fs::read_dir(&dir)
                .unwrap_or_else(|error| panic!("module {module}: {}: {error}", dir.display()));
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|ext| ext == "rs") {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    files
        .iter()
        .flat_map(|file| {
            let shown = file.strip_prefix(core_dir()).unwrap_or(file);
            crate_paths(&read(file), shown)
        })
        .collect()
}

/// The first segment of each `crate::` path in `code`, outside comments
/// and outside the unit tests (`#[cfg(test)] mod tests`, which may use
/// anything); `crate::{a::X, b}` gives `a` and `b`, over several lines too.
fn crate_paths(code: &str, file: &Path) -> Vec<Use> {
    let mut kept = String::new();
    let mut lines = code.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            break;
        }
        kept.push_str(line.split("//").next().unwrap_or_default());
        kept.push('\n');
    }
    let mut found = Vec::new();
    for (start, _) in kept.match_indices("crate::") {
        let before = kept[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let at = format!(
            "{}:{}",
            file.display(),
            kept[..start].matches('\n').count() + 1
        );
        let rest = &kept[start + "crate::".len()..];
        let targets = match rest.strip_prefix('{') {
            Some(group) => top_level_items(group),
            None => vec![first_segment(rest)],
        };
        for target in targets.into_iter().filter(|target| !target.is_empty()) {
            found.push(Use {
                target,
                at: at.clone(),
            });
        }
    }
    found
}

/// The first segment of each item of a `{...}` group, `group` starting
/// after its `{`.
fn top_level_items(group: &str) -> Vec<String> {
    let mut items = vec![first_segment(group)];
    let mut depth = 0_usize;
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => items.push(first_segment(&group[index + 1..])),
            _ => {}
        }
    }
    items
}

fn first_segment(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}
