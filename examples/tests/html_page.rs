//! `watch_movie -j 4 --html run.html` as a user runs it, then the page it
//! wrote opened in headless Chromium (Debian's `chromium` package), from
//! the file, with no network: what issue 15 asks of `--html`.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::protocol::cdp::types::Event as CdpEvent;
use headless_chrome::{Browser, LaunchOptions, Tab};

mod support;
use support::{example, stderr, stdout};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium with a fresh profile, as root allows it (the same
/// launch as viz's `tests/html_browser.rs`).
fn launch(profile: &Path) -> Browser {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test needs Debian's chromium package \
         (apt-get update && apt-get install -y chromium; .ci/run does it)"
    );
    let data_dir = format!("--user-data-dir={}", profile.display());
    let flags = [
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        data_dir.as_str(),
    ];
    let options = LaunchOptions::default_builder()
        .path(Some(CHROMIUM.into()))
        .headless(true)
        .sandbox(false)
        .window_size(Some((1400, 2700)))
        .args(flags.iter().map(std::ffi::OsStr::new).collect())
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    Browser::new(options).expect("Chromium starts")
}

/// Opens the page; returns the tab and the errors its console and scripts
/// report, as they come.
fn open(browser: &Browser, page: &Path) -> (Arc<Tab>, Arc<Mutex<Vec<String>>>) {
    let tab = browser.new_tab().unwrap();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    tab.enable_log().unwrap().enable_runtime().unwrap();
    tab.add_event_listener(Arc::new(move |event: &CdpEvent| {
        let error = match event {
            CdpEvent::RuntimeExceptionThrown(thrown) => Some(format!("{thrown:?}")),
            CdpEvent::RuntimeConsoleAPICalled(call)
                if format!("{:?}", call.params.Type) == "Error" =>
            {
                Some(format!("{call:?}"))
            }
            CdpEvent::LogEntryAdded(entry)
                if format!("{:?}", entry.params.entry.level) == "Error" =>
            {
                Some(format!("{entry:?}"))
            }
            _ => None,
        };
        if let Some(error) = error {
            seen.lock().unwrap().push(error);
        }
    }))
    .unwrap();
    tab.navigate_to(&format!("file://{}", page.display()))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.wait_for_element("#jobs table").unwrap();
    (tab, errors)
}

fn eval(tab: &Tab, expression: &str) -> serde_json::Value {
    let result = tab
        .evaluate(expression, false)
        .unwrap_or_else(|error| panic!("{expression}: {error}"));
    result.value.unwrap_or(serde_json::Value::Null)
}

fn count(tab: &Tab, selector: &str) -> u64 {
    eval(
        tab,
        &format!("document.querySelectorAll({selector:?}).length"),
    )
    .as_u64()
    .unwrap()
}

fn text(tab: &Tab, selector: &str) -> String {
    let expression = format!("document.querySelector({selector:?}).textContent");
    eval(tab, &expression).as_str().unwrap().to_owned()
}

/// Whether a screenshot shows something: decoded, mostly not near white,
/// with the graph's red of a failed job in it.
fn assert_not_blank(png_bytes: &[u8]) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let rgb: Vec<&[u8]> = pixels[..info.buffer_size()]
        .chunks(info.color_type.samples())
        .collect();
    let inked = rgb
        .iter()
        .filter(|p| p[..3].iter().any(|&c| c < 200))
        .count();
    assert!(
        inked * 50 > rgb.len(),
        "only {inked} of {} pixels inked",
        rgb.len()
    );
    let red = rgb.iter().filter(|p| p[..3] == [255, 0, 0]).count();
    assert!(red > 100, "{red} pixels of the failed colour");
}

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

    let profile = tempfile::tempdir().unwrap();
    let browser = launch(profile.path());
    let (tab, errors) = open(&browser, &page);
    // One bar per phase, one graph node and one table row per job.
    assert_eq!(count(&tab, "#timeline rect.phase"), phases as u64);
    assert_eq!(
        count(&tab, "#graph-view g.job[data-job]"),
        jobs.len() as u64
    );
    assert_eq!(count(&tab, "#jobs tbody tr"), jobs.len() as u64);
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
    assert_not_blank(&screenshot);
    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "the page reported errors: {errors:#?}");
}
