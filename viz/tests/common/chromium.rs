//! Headless Chromium for the HTML run page's tests: viz's
//! `tests/html_browser.rs` and the examples' `tests/html_page.rs` (which
//! includes this file by path). Debian's `chromium` package, launched as
//! root allows it, with a fresh profile and no network.
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::protocol::cdp::types::Event as CdpEvent;
use headless_chrome::{Browser, LaunchOptions, Tab};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium with a profile of its own, removed with it.
pub struct Chromium {
    browser: Browser,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts Chromium with a window 1400 px wide and `height` tall (a
    /// full-page screenshot is that size). Fails, never skips, when
    /// Chromium is missing, saying how to install it.
    pub fn launch(height: u32) -> Chromium {
        let path = Path::new(CHROMIUM);
        assert!(
            path.exists(),
            "{CHROMIUM} is missing: these tests need Debian's chromium package \
             (apt-get update && apt-get install -y chromium; .ci/run does it)"
        );
        let profile = tempfile::tempdir().unwrap();
        let data_dir = format!("--user-data-dir={}", profile.path().display());
        let flags = [
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            data_dir.as_str(),
        ];
        let options = LaunchOptions::default_builder()
            .path(Some(path.to_owned()))
            .headless(true)
            .sandbox(false)
            .window_size(Some((1400, height)))
            .args(flags.iter().map(std::ffi::OsStr::new).collect())
            .idle_browser_timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let browser = Browser::new(options).expect("Chromium starts");
        Chromium {
            browser,
            _profile: profile,
        }
    }

    /// Opens a page and returns the tab with the errors its console and
    /// scripts report, as they come.
    pub fn open(&self, page: &Path) -> (Arc<Tab>, Arc<Mutex<Vec<String>>>) {
        let tab = self.browser.new_tab().unwrap();
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
        let url = format!("file://{}", page.display());
        tab.navigate_to(&url)
            .unwrap()
            .wait_until_navigated()
            .unwrap();
        tab.wait_for_element("#jobs table").unwrap();
        (tab, errors)
    }
}

/// The value of a JavaScript expression as JSON.
pub fn eval(tab: &Tab, expression: &str) -> serde_json::Value {
    let result = tab
        .evaluate(expression, false)
        .unwrap_or_else(|error| panic!("{expression}: {error}"));
    result.value.unwrap_or(serde_json::Value::Null)
}

/// How many elements match `selector`.
pub fn count(tab: &Tab, selector: &str) -> usize {
    let expression = format!("document.querySelectorAll({selector:?}).length");
    eval(tab, &expression).as_u64().unwrap() as usize
}

/// The text of the first element that matches `selector`.
pub fn text(tab: &Tab, selector: &str) -> String {
    let expression = format!("document.querySelector({selector:?}).textContent");
    eval(tab, &expression).as_str().unwrap().to_owned()
}

/// The page reported no error, in its console or as an exception.
pub fn assert_no_errors(errors: &Mutex<Vec<String>>) {
    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "the page reported errors: {errors:#?}");
}

/// Decodes a screenshot and checks that it shows a page: at least 1000 px
/// each way, mostly not near white, and with the graph's fill for each of
/// `colours` (a name and its RGB) on more than 100 pixels.
pub fn assert_shows(png_bytes: &[u8], colours: &[(&str, [u8; 3])]) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    assert!(info.width >= 1000 && info.height >= 1000, "{info:?}");
    let rgb: Vec<[u8; 3]> = pixels[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    let inked = rgb.iter().filter(|p| p.iter().any(|&c| c < 200)).count();
    assert!(
        inked * 50 > rgb.len(),
        "only {inked} of {} pixels are not near white",
        rgb.len()
    );
    for (name, colour) in colours {
        let found = rgb.iter().filter(|&p| p == colour).count();
        assert!(found > 100, "{found} pixels of the {name} colour");
    }
}
