//! `watch_movie -j 4 --html run.html` as a user runs it, then the page it
//! wrote opened in headless Chromium (Debian's `chromium` package), from
//! the file, with no network: what issue 15 asks of `--html`.

use std::path::Path;
use std::process::Command;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;

mod support;
use support::{example, stderr, stdout};

/// The same browser and page helpers as viz's own page tests.
#[path = "../../../viz/tests/common/chromium.rs"]
mod chromium;
use chromium::{Chromium, assert_no_errors, assert_shows, count, text};

#[test]
fn the_page_html_writes_works_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (page, report) = (dir.path().join("run.html"), dir.path().join("run.json"));
    let output = Command::new(example("watch_movie"))
        .args(["-j", "4", "-q", "--progress", "never", "--html"])
        .arg(&page)
        .arg("--report-json")
        .arg(&report)
        .output()
        .expect("the example runs");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        (stderr(&output), stdout(&output)),
        (String::new(), String::new())
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let jobs = report["jobs"].as_array().unwrap();
    let phases: usize = jobs
        .iter()
        .map(|job| job["phases"].as_array().unwrap().len())
        .sum();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains(" src=") && !html.contains("<link"),
        "it loads nothing"
    );

    let chromium = Chromium::launch(2700);
    let (tab, errors) = chromium.open(&page);
    // One bar per phase, one graph node and one table row per job.
    assert_eq!(count(&tab, "#timeline rect.phase"), phases);
    assert_eq!(count(&tab, "#graph-view g.job[data-job]"), jobs.len());
    assert_eq!(count(&tab, "#jobs tbody tr"), jobs.len());
    assert!(text(&tab, "#summary").contains("workers4"));
    // The plan came with the report: the dummy jobs are drawn dashed.
    assert_eq!(
        count(&tab, "#graph-view g.job rect[stroke-dasharray]"),
        4,
        "DetermineDetails, InviteFriends, PrepareRoom and Food"
    );
    // Clicking a failed job shows its errors.
    let tv = jobs
        .iter()
        .position(|job| job["name"] == "TurnOnTV")
        .unwrap();
    tab.find_element(&format!("#graph-view g.job[data-job=\"{tv}\"]"))
        .unwrap()
        .click()
        .unwrap();
    let details = text(&tab, "#details");
    assert!(details.starts_with("TurnOnTV"), "{details}");
    assert!(details.contains("Remote batteries are dead."), "{details}");

    let screenshot = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap();
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-watch-movie.png"),
        &screenshot,
    )
    .unwrap();
    assert_shows(&screenshot, &[("failed", [255, 0, 0])]);
    assert_no_errors(&errors);
}
