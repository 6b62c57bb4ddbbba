//! A run as one self-contained HTML page, the way `cargo build --timings`
//! writes its report: summary, failures, a timeline of phases, concurrency
//! over time, the job graph (zoomable, pannable, clickable) and a sortable
//! table of jobs. Its script and style are in the file; it loads nothing.
//!
//! The page is made from a [`RunView`]: a run's [`Report`](dojobber::Report),
//! which records every phase with its times, or its events (the timeline
//! and the concurrency chart need those times; a page from a version 1
//! report, which has none, says so).
//!
//! Every name and error reaches the page as JSON data that the page's
//! script puts in as text, never as markup, so a job called `</script>` is
//! shown as written.
//!
//! ```
//! use dojobber::{Context, Job, JobResult, Runner};
//! use dojobber_viz::html::{RunView, page};
//!
//! struct Done;
//! impl Job for Done {
//!     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
//! }
//! let report = Runner::new(Done, ()).output(std::io::sink()).run()?.into_report();
//! let html = page(&RunView::from_report(&report));
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! assert!(!html.contains(" src=") && !html.contains("<link"), "the page loads nothing");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod view;

use std::path::Path;

pub use view::{JobView, PhaseRun, RunView, ViewError};

use crate::VizError;

const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// The page for a run, as HTML text.
pub fn page(view: &RunView) -> String {
    let data = script_safe_json(view);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>dojobber run</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <script type=\"application/json\" id=\"run-data\">{data}</script>\n\
         <main id=\"page\"><noscript>This page draws itself with its own JavaScript; \
         allow scripts for this file.</noscript></main>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    )
}

/// Writes [`page`] to `path`, replacing the file if it exists, as
/// [`files::write`](crate::files::write) does: a link planted at a
/// temporary name or swapped in at `path` is never followed.
///
/// ```
/// use dojobber::{Context, Job, JobResult, Runner};
/// use dojobber_viz::html::{RunView, write_page};
///
/// struct Done;
/// impl Job for Done {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
/// }
/// let report = Runner::new(Done, ()).output(std::io::sink()).run()?.into_report();
/// let dir = tempfile::tempdir()?;
/// write_page(&dir.path().join("run.html"), &RunView::from_report(&report))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_page(path: &Path, view: &RunView) -> Result<(), VizError> {
    crate::files::write(path, page(view).as_bytes()).map_err(|source| VizError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The view as JSON that can sit inside a `<script>` element: `<`, `>` and
/// `&` occur in JSON only inside strings, where `\u003c` and the like mean
/// the same, so no `</script>` or `<!--` can end the element early.
fn script_safe_json(view: &RunView) -> String {
    let json = serde_json::to_string(view).expect("a RunView always serialises");
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_in_the_page_cannot_close_its_script() {
        let text = "</script><script>alert(1)</script><!-- & -->";
        let mut view = RunView::from_report(&dojobber::Report::from_jobs([]).unwrap());
        view.stopped = Some(text.to_owned());
        view.settings.push((text.to_owned(), text.to_owned()));
        let html = page(&view);
        let data = html
            .split("id=\"run-data\">")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .expect("the data element");
        let back: serde_json::Value = serde_json::from_str(data).expect("valid JSON");
        assert_eq!(back["stopped"], text);
        assert_eq!(html.matches("</script>").count(), 2);
    }
}
