//! A "sitekit-like" suite, the shape issue 15 reports as unreadable: 62
//! jobs, one of them (`Pages`) with 50 deps of one kind (`RenderPage …`),
//! a dozen others, and a run where some failed. Built as data (a plan and
//! the report of a run), so pictures of it are the same on every machine.
//! Shared by viz's tests and `cargo xtask viz` (which includes this file).

use std::time::Duration;

use dojobber::engine::{Defaults, JobSpec, Plan};
use dojobber::{JobKind, JobRecord, Report, Status};

/// The pages' names: 50 of them, one long enough to be shortened.
fn page_names() -> Vec<String> {
    let mut names: Vec<String> = (1..=30)
        .map(|i| format!("RenderPage blog/post-{i:02}.md"))
        .collect();
    names.extend((1..=19).map(|i| format!("RenderPage docs/chapter-{i:02}.md")));
    names.push(
        "RenderPage blog/2024/why-we-moved-our-static-site-generator-to-a-job-graph.md".to_owned(),
    );
    names
}

/// The plan and the report of a run in which two pages and the image
/// optimiser failed, so what needs them is blocked.
pub fn sitekit() -> (Plan, Report) {
    // (name, kind, deps by name, status)
    let mut jobs: Vec<(String, JobKind, Vec<String>, Status)> = Vec::new();
    let mut add = |name: &str, kind, deps: &[&str], status| {
        let deps = deps.iter().map(|d| (*d).to_owned()).collect();
        jobs.push((name.to_owned(), kind, deps, status));
    };
    use JobKind::{Dummy, Normal};
    use Status::{Blocked, Failed, Fixed, Passed};
    add("LoadConfig", Normal, &[], Passed);
    add(
        "FetchData https://api.example.invalid/v2/products?page=all&format=json",
        Normal,
        &["LoadConfig"],
        Fixed,
    );
    add(
        "LoadContent",
        Normal,
        &[
            "LoadConfig",
            "FetchData https://api.example.invalid/v2/products?page=all&format=json",
        ],
        Fixed,
    );
    add("LoadTemplates", Normal, &["LoadConfig"], Passed);
    let pages = page_names();
    for (i, page) in pages.iter().enumerate() {
        let status = if i == 7 || i == 41 { Failed } else { Fixed };
        add(page, Normal, &["LoadContent", "LoadTemplates"], status);
    }
    let page_refs: Vec<&str> = pages.iter().map(String::as_str).collect();
    add("Pages", Dummy, &page_refs, Blocked);
    add("CompileStyles", Normal, &["LoadConfig"], Fixed);
    add("BundleScripts", Normal, &["LoadConfig"], Fixed);
    add("OptimizeImages", Normal, &[], Failed);
    add(
        "Assets",
        Dummy,
        &["CompileStyles", "BundleScripts", "OptimizeImages"],
        Blocked,
    );
    add("CheckLinks", Normal, &["Pages"], Blocked);
    add("WriteSitemap", Normal, &["Pages"], Blocked);
    add(
        "Publish",
        Normal,
        &["Pages", "Assets", "CheckLinks", "WriteSitemap"],
        Blocked,
    );
    assert_eq!(jobs.len(), 62);

    let index = |name: &str| {
        jobs.iter()
            .position(|(n, ..)| n == name)
            .expect("deps are named jobs")
    };
    let specs = jobs
        .iter()
        .map(|(name, kind, deps, _)| {
            let mut spec = JobSpec::new(name.clone());
            spec.kind = *kind;
            spec.deps = deps.iter().map(|d| index(d)).collect();
            spec
        })
        .collect();
    let root = index("Publish");
    let (plan, _) = Plan::new(specs, root, Defaults::default()).expect("sitekit has no cycle");
    let mut report = Report::from_jobs(plan.ids().map(|id| {
        let (name, _, deps, status) = &jobs[index(plan.name(id))];
        JobRecord {
            tries: u32::from(*status != Blocked),
            time: Duration::from_millis(20),
            deps: deps.clone(),
            ..JobRecord::new(name.clone(), *status)
        }
    }))
    .unwrap();
    report.rounds = 1;
    report.elapsed = Duration::from_secs(3);
    (plan, report)
}
