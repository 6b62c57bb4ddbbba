//! viz's writers against a hostile neighbour: a link planted at a
//! temporary's name, a link swapped in at the output's name, an output
//! that is a hard link of someone else's file. The victim never changes.
#![cfg(unix)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use dojobber::engine::{Defaults, JobSpec, Plan};
use dojobber_viz::files::Output;
use dojobber_viz::html::{RunView, write_page};
use dojobber_viz::{Options, Renderer, Style, write_graph};

const PURE: Options = Options {
    details: false,
    renderer: Renderer::PureRust,
    style: Style::DEFAULT,
};

fn plan() -> Plan {
    let mut root = JobSpec::new("Root");
    root.deps = vec![1];
    Plan::new(vec![root, JobSpec::new("Leaf")], 0, Defaults::default())
        .expect("a valid plan")
        .0
}

/// Every way a library writer of this crate writes `path`.
fn write_each_way(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy();
    if name.ends_with(".html") {
        let report = dojobber::Report::from_jobs(Vec::new()).unwrap();
        write_page(path, &RunView::from_report(&report)).unwrap();
    } else {
        write_graph(path, &plan(), &PURE).unwrap();
    }
}

/// Links to `victim` at the names a temporary of `output` might get: the
/// old scheme's `.NAME.PID.N.dojobber-tmp` for this process and the next
/// ones, and the names editors and other tools use.
fn plant_links(dir: &Path, output: &str, victim: &Path) -> usize {
    let pid = std::process::id();
    let mut names = vec![
        format!(".{output}.tmp"),
        format!("{output}.tmp"),
        format!(".{output}.swp"),
        format!("{output}~"),
    ];
    for pid in pid..pid + 64 {
        for counter in 0..8 {
            names.push(format!(".{output}.{pid}.{counter}.dojobber-tmp"));
        }
    }
    for name in &names {
        symlink(victim, dir.join(name)).unwrap();
    }
    names.len()
}

#[test]
fn links_planted_at_temporary_names_are_never_followed() {
    for output in ["run.dot", "run.svg", "run.png", "run.html"] {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "mine").unwrap();
        let planted = plant_links(dir.path(), output, &victim);
        let path = dir.path().join(output);
        write_each_way(&path);
        write_each_way(&path);
        assert_eq!(fs::read_to_string(&victim).unwrap(), "mine", "{output}");
        assert!(fs::symlink_metadata(&path).unwrap().is_file(), "{output}");
        let links = fs::read_dir(dir.path())
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().file_type().unwrap().is_symlink())
            .count();
        assert_eq!(links, planted, "{output}: the links are left as they were");
        let regular = fs::read_dir(dir.path()).unwrap().count() - planted;
        assert_eq!(
            regular, 2,
            "{output}: the victim and the output, no temporary"
        );
    }
}

#[test]
fn an_output_that_is_a_hard_link_of_another_file_is_replaced_not_written_through() {
    for output in ["run.dot", "run.html"] {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "mine").unwrap();
        let path = dir.path().join(output);
        fs::hard_link(&victim, &path).unwrap();
        write_each_way(&path);
        assert_eq!(fs::read_to_string(&victim).unwrap(), "mine", "{output}");
        assert_eq!(fs::metadata(&victim).unwrap().nlink(), 1, "{output}");
        assert_ne!(fs::read_to_string(&path).unwrap(), "mine", "{output}");
    }
}

#[test]
fn a_link_swapped_in_at_the_outputs_name_is_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "mine").unwrap();
    let path = dir.path().join("report.json");
    fs::write(&path, "old").unwrap();
    let Output::Replaced { mut temp, beside } = Output::open(&path).unwrap() else {
        panic!("a regular file is replaced through a temporary");
    };
    // The neighbour's move, once the path is resolved and before the
    // content is in place.
    fs::remove_file(&path).unwrap();
    symlink(&victim, &path).unwrap();
    temp.write_all(b"new").unwrap();
    beside.put_in_place().unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "mine");
    assert!(fs::symlink_metadata(&path).unwrap().is_file());
    assert_eq!(fs::read_to_string(&path).unwrap(), "new");
}

#[test]
fn a_folder_swapped_for_a_link_redirects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&shared).unwrap();
    fs::create_dir(&elsewhere).unwrap();
    let path = shared.join("run.dot");
    let Output::Replaced { mut temp, beside } = Output::open(&path).unwrap() else {
        panic!("a new name is replaced through a temporary");
    };
    fs::rename(&shared, dir.path().join("moved")).unwrap();
    symlink(&elsewhere, &shared).unwrap();
    temp.write_all(b"digraph {}").unwrap();
    beside.put_in_place().unwrap();
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert_eq!(
        fs::read_to_string(dir.path().join("moved/run.dot")).unwrap(),
        "digraph {}"
    );
}
