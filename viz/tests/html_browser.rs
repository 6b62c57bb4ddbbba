//! The HTML run page in a real browser: headless Chromium (Debian's
//! `chromium` package) opens it from a file, with no network, and the
//! page is checked as a user would look at it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dojobber::{Failure, JobRecord, Report, Status};

use dojobber::observe::Event;
use dojobber_viz::html::{RunView, write_page};
use headless_chrome::Tab;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;

#[path = "common/chromium.rs"]
mod chromium;
use chromium::{Chromium, assert_no_errors, assert_shows, count, eval, text};

#[path = "common/movie_run.rs"]
mod movie_run;
use movie_run::movie_run;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Clicks the graph's box of the job called `name`.
fn click_graph_job(tab: &Tab, view: &RunView, name: &str) {
    let index = view.jobs.iter().position(|job| job.name == name).unwrap();
    let selector = format!("#graph-view g.job[data-job=\"{index}\"]");
    tab.find_element(&selector).unwrap().click().unwrap();
}

/// The movie example run with four workers, as `--events-json` sees it.
fn movie_view() -> (RunView, usize) {
    let (report, events, plan) = movie_run();
    let phases = events
        .iter()
        .filter(|event| matches!(event, Event::PhaseFinished { .. }))
        .count();
    let mut view = RunView::from_report(&report).setting("workers", "4");
    view.add_events(events.iter(), &plan).unwrap();
    (view, phases)
}

/// Where screenshots go, for people to look at.
fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Checks that a screenshot shows the run: see [`assert_shows`], with the
/// graph's fills for passed, fixed and failed jobs.
fn assert_shows_the_run(png_bytes: &[u8]) {
    assert_shows(
        png_bytes,
        &[
            ("passed", [0, 255, 0]),
            ("fixed", [0, 100, 0]),
            ("failed", [255, 0, 0]),
        ],
    );
}

#[test]
fn the_movie_run_page_works_in_chromium() -> TestResult {
    let (view, phases) = movie_view();
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("run.html");
    write_page(&page, &view)?;

    let chromium = Chromium::launch(2700);
    let (tab, errors) = chromium.open(&page);
    assert_eq!(count(&tab, "#timeline rect.phase"), phases);
    assert_eq!(count(&tab, "#graph-view g.job"), view.jobs.len());
    assert_eq!(count(&tab, "#graph-view g.job[data-job]"), view.jobs.len());
    assert_eq!(count(&tab, "#jobs tbody tr"), view.jobs.len());
    assert!(count(&tab, "#concurrency path.in-flight") == 1);
    assert!(text(&tab, "#summary").contains("workers4"));
    let failures = text(&tab, "#failures");
    assert!(
        failures.contains("TurnOnTV failed after 3 tries"),
        "{failures}"
    );
    assert!(
        failures.contains("try 3, recheck: No space on couch."),
        "{failures}"
    );

    click_graph_job(&tab, &view, "TurnOnTV");
    let details = text(&tab, "#details");
    assert!(details.starts_with("TurnOnTV"), "{details}");
    assert!(details.contains("Remote batteries are dead."), "{details}");
    let tv = view.jobs.iter().find(|job| job.name == "TurnOnTV").unwrap();
    assert_eq!(
        count(&tab, "#details table.phases tbody tr"),
        tv.phases.len()
    );
    assert_eq!(count(&tab, "#graph-view g.job.selected"), 1);

    // Hovering a phase tells its job, phase and try.
    let tip = eval(
        &tab,
        "(() => { const bar = document.querySelector('#timeline rect.phase.failed');
           bar.dispatchEvent(new MouseEvent('mousemove', { bubbles: true, clientX: 5, clientY: 5 }));
           return document.getElementById('tooltip').textContent; })()",
    );
    assert!(tip.as_str().unwrap().contains(", try "), "{tip}");
    eval(
        &tab,
        "document.querySelector('#timeline .chart').dispatchEvent(new MouseEvent('mouseleave'))",
    );
    assert_eq!(
        eval(&tab, "document.getElementById('tooltip').style.display"),
        "none"
    );
    // Stretching the time axis redraws every bar, wider.
    let width = "document.querySelector('#timeline svg').getAttribute('width')";
    let before: f64 = eval(&tab, width).as_str().unwrap().parse()?;
    eval(
        &tab,
        "(() => { const zoom = document.querySelector('#timeline select');
           zoom.value = '4'; zoom.dispatchEvent(new Event('change')); })()",
    );
    let after: f64 = eval(&tab, width).as_str().unwrap().parse()?;
    assert!(after > 3.0 * before, "{before} -> {after}");
    assert_eq!(count(&tab, "#timeline rect.phase"), phases);
    assert_eq!(count(&tab, "#timeline .row-label.selected"), 1);
    // Zooming the graph narrows its view box.
    let view_box = "document.querySelector('#graph-view svg').getAttribute('viewBox')";
    let before = eval(&tab, view_box);
    tab.find_element("#graph button[title=\"zoom in\"]")?
        .click()?;
    assert_ne!(eval(&tab, view_box), before);
    tab.find_element("#graph button[title=\"show the whole graph\"]")?
        .click()?;
    let whole = "document.querySelector('#graph-view svg').getAttribute('data-whole')";
    assert_eq!(eval(&tab, view_box), eval(&tab, whole));
    eval(
        &tab,
        "(() => { const zoom = document.querySelector('#timeline select');
           zoom.value = '1'; zoom.dispatchEvent(new Event('change')); })()",
    );

    // Sorting by tries puts the most tried job last.
    tab.find_element("#jobs th:nth-child(3)")?.click()?;
    let last = text(&tab, "#jobs tbody tr:last-child td:first-child");
    let most = view.jobs.iter().map(|job| job.tries).max().unwrap();
    assert_eq!(
        view.jobs.iter().find(|j| j.name == last).unwrap().tries,
        most
    );
    click_graph_job(&tab, &view, "WatchMovie");
    assert!(text(&tab, "#details").contains("blocked byStartMovie"));

    let screenshot =
        tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)?;
    std::fs::write(screenshot_path("html-movie.png"), &screenshot)?;
    assert_shows_the_run(&screenshot);
    assert_no_errors(&errors);
    Ok(())
}

#[test]
fn a_page_from_the_report_alone_says_the_timeline_needs_the_events() -> TestResult {
    let (mut view, _) = movie_view();
    for job in &mut view.jobs {
        job.phases.clear();
        job.ready_secs = None;
    }
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("report-only.html");
    write_page(&page, &view)?;

    let chromium = Chromium::launch(1000);
    let (tab, errors) = chromium.open(&page);
    assert_eq!(count(&tab, "#timeline rect.phase"), 0);
    assert!(text(&tab, "#timeline").contains("needs the run's events"));
    assert!(text(&tab, "#concurrency").contains("needs the run's events"));
    assert_eq!(count(&tab, "#graph-view g.job"), view.jobs.len());
    click_graph_job(&tab, &view, "SitOnCouch");
    let details = text(&tab, "#details");
    assert!(details.contains("No space on couch."), "{details}");
    assert!(details.contains("made without"), "{details}");
    assert_no_errors(&errors);
    Ok(())
}

#[test]
fn names_and_errors_are_shown_as_text_never_as_markup() -> TestResult {
    let hostile = [
        "</script><script>window.pwned = 1</script>",
        "<img src=x onerror=\"window.pwned = 2\">",
        "Tom & \"Jerry\" <b>bold</b>\nsecond\tline \u{7}\u{1b}[31m \u{2028}\u{2029}\u{61c}",
    ];
    // Control characters, line breaks and tabs too, show as the pictures
    // show them.
    let escaped = hostile.map(|name| {
        name.replace('\n', "\\u{a}")
            .replace('\t', "\\u{9}")
            .replace('\u{7}', "\\u{7}")
            .replace('\u{1b}', "\\u{1b}")
            .replace('\u{2028}', "\\u{2028}")
            .replace('\u{2029}', "\\u{2029}")
            .replace('\u{61c}', "\\u{61c}")
    });
    let job = |name: &str, status, deps: Vec<String>| JobRecord {
        tries: u32::from(status != Status::Blocked),
        last_error: (status == Status::Failed)
            .then(|| Failure::new(format!("<i>{name}</i> failed </script>"))),
        blocked_by: (status == Status::Blocked).then(|| hostile[1].to_owned()),
        time: Duration::from_millis(3),
        deps,
        ..JobRecord::new(name, status)
    };
    let mut report = Report::from_jobs([
        job(hostile[0], Status::Passed, vec![]),
        job(hostile[1], Status::Failed, vec![hostile[0].to_owned()]),
        job(hostile[2], Status::Blocked, vec![hostile[1].to_owned()]),
    ])
    .unwrap();
    report.rounds = 1;
    report.elapsed = Duration::from_millis(5);
    let mut view = RunView::from_report(&report);
    // The page shows a stop reason as text too (a report's are typed).
    view.stopped = Some("<script>window.pwned = 3</script>".to_owned());
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("hostile.html");
    write_page(&page, &view)?;

    let chromium = Chromium::launch(1000);
    let (tab, errors) = chromium.open(&page);
    assert_eq!(eval(&tab, "typeof window.pwned"), "undefined");
    assert_eq!(count(&tab, "img"), 0);
    let names: Vec<String> = (1..=3)
        .map(|row| {
            text(
                &tab,
                &format!("#jobs tbody tr:nth-child({row}) td:first-child"),
            )
        })
        .collect();
    assert_eq!(names, escaped);
    assert_eq!(count(&tab, "#graph-view g.job"), 3);
    let graph_title = eval(
        &tab,
        "document.querySelector('#graph-view g.job[data-job=\"2\"] title').textContent",
    );
    assert_eq!(graph_title, escaped[2]);
    click_graph_job(&tab, &view, hostile[2]);
    assert!(text(&tab, "#details").starts_with(&escaped[2]));
    click_graph_job(&tab, &view, hostile[1]);
    let details = text(&tab, "#details");
    assert!(
        details.contains(&format!("<i>{}</i> failed </script>", hostile[1])),
        "{details}"
    );
    assert!(text(&tab, "#summary").contains("<script>window.pwned = 3</script>"));
    assert_no_errors(&errors);
    Ok(())
}

/// A made-up report: `pages` jobs named by `name`, fixed but for the
/// `failed` ones (page 8, if there is one, fixed after an error), and a
/// `Site` job that needs them all.
fn site_report(pages: usize, failed: &[usize], name: impl Fn(usize) -> String) -> Report {
    let page_job = |i: usize| {
        let status = if failed.contains(&i) {
            Status::Failed
        } else {
            Status::Fixed
        };
        JobRecord {
            tries: 1,
            time: Duration::from_millis(2),
            last_error: match (status, i) {
                (Status::Failed, _) => Some(Failure::new("no such page")),
                (_, 8) => Some(Failure::new("template still loading")),
                _ => None,
            },
            ..JobRecord::new(name(i), status)
        }
    };
    let mut jobs: Vec<JobRecord> = (0..pages).map(page_job).collect();
    let mut site = page_job(usize::MAX);
    site.name = "Site".to_owned();
    site.deps = jobs.iter().map(|job| job.name.clone()).collect();
    jobs.push(site);
    let mut report = Report::from_jobs(jobs).unwrap();
    report.rounds = 1;
    report.elapsed = Duration::from_millis(100);
    report
}

/// Letters for a number, `a`, `b`, ..., `z`, `ba`, ...: names of distinct
/// kinds (digits would be dropped from the kind).
fn letters(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

#[test]
fn a_large_graph_starts_readable_and_shows_the_chosen_job() -> TestResult {
    // Wide ranks wrap into rows, so it takes a few hundred pages for the
    // whole graph to be too small to read when it all fits; a few of each
    // kind, so that no fan-out is collapsed.
    const PAGES: usize = 300;
    let report = site_report(PAGES, &[], |i| {
        format!(
            "Render{}(site/pages/section-{i:02}/index.html)",
            letters(i / 4)
        )
    });
    let view = RunView::from_report(&report);
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("wide.html");
    write_page(&page, &view)?;

    let chromium = Chromium::launch(1000);
    let (tab, errors) = chromium.open(&page);
    let area_of = |attribute: &str| -> f64 {
        let expression =
            format!("document.querySelector('#graph-view svg').getAttribute('{attribute}')");
        let text = eval(&tab, &expression);
        let numbers: Vec<f64> = text
            .as_str()
            .unwrap()
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        numbers[2] * numbers[3]
    };
    // It starts showing a readable part of the graph, not all of it.
    assert!(area_of("viewBox") < area_of("data-whole") / 4.0);
    // The last page is far from the start; choosing it in the table brings
    // it into the graph's view.
    let last = PAGES - 1;
    let in_view = format!(
        "(() => {{ const svg = document.querySelector('#graph-view svg');
           const [x, y, w, h] = svg.getAttribute('viewBox').split(' ').map(Number);
           const b = svg.querySelector('g.job[data-job=\"{last}\"]').getBBox();
           return b.x >= x && b.y >= y && b.x + b.width <= x + w && b.y + b.height <= y + h; }})()"
    );
    assert_eq!(eval(&tab, &in_view), false);
    tab.find_element(&format!("#jobs tbody tr:nth-child({PAGES})"))?
        .click()?;
    assert_eq!(
        count(
            &tab,
            &format!("#graph-view g.job.selected[data-job=\"{last}\"]")
        ),
        1
    );
    assert_eq!(eval(&tab, &in_view), true);
    assert_eq!(count(&tab, "#graph-view g.job"), PAGES + 1);
    assert_no_errors(&errors);
    Ok(())
}

#[test]
fn a_wide_fan_out_is_one_box_in_the_graph_and_every_job_in_the_table() -> TestResult {
    const PAGES: usize = 500;
    let report = site_report(PAGES, &[7, 300], |i| format!("RenderPage {i}"));
    let view = RunView::from_report(&report);
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("fan-out.html");
    write_page(&page, &view)?;

    let chromium = Chromium::launch(1000);
    let (tab, errors) = chromium.open(&page);
    // As `--graph` draws it: the site and one box for its pages.
    assert_eq!(count(&tab, "#graph-view g.job"), 2);
    assert_eq!(count(&tab, "#graph-view g.job.collapsed"), 1);
    assert_eq!(count(&tab, "#graph-view g.job[data-job]"), 1);
    assert_eq!(count(&tab, "#jobs tbody tr"), PAGES + 1);
    assert!(text(&tab, "#failures").contains("RenderPage 300 failed after 1 try"));
    // A fixed job's error is what came before the fix, not shown as a failure.
    assert_eq!(count(&tab, "#jobs td.error:not(.earlier)"), 2);
    let earlier = text(&tab, "#jobs td.error.earlier");
    assert_eq!(earlier, "before the fix: template still loading");

    // The box lists every page, with its status; each opens its details.
    tab.find_element("#graph-view g.job.collapsed")?.click()?;
    let details = text(&tab, "#details");
    assert!(details.starts_with("500 jobs of one kind"), "{details}");
    assert!(details.contains("2failed"), "{details}");
    assert_eq!(count(&tab, "#details ul.members li"), PAGES);
    assert_eq!(count(&tab, "#graph-view g.job.collapsed.selected"), 1);
    let screenshot =
        tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)?;
    std::fs::write(screenshot_path("html-fan-out.png"), &screenshot)?;
    tab.find_element("#details ul.members li:nth-child(301) .job-link")?
        .click()?;
    let details = text(&tab, "#details");
    assert!(details.starts_with("RenderPage 300"), "{details}");
    assert!(details.contains("no such page"), "{details}");
    // A page chosen anywhere selects the box that draws it.
    assert_eq!(count(&tab, "#graph-view g.job.collapsed.selected"), 1);
    tab.find_element("#jobs tbody tr:nth-child(501)")?.click()?;
    assert!(text(&tab, "#details").starts_with("Site"));
    assert_eq!(
        count(&tab, "#graph-view g.job.selected[data-job=\"500\"]"),
        1
    );
    assert_eq!(count(&tab, "#graph-view g.job.collapsed.selected"), 0);
    assert_no_errors(&errors);
    Ok(())
}

/// A run across hosts: the page names the worker of each try, in the
/// jobs table (its last try's), the job's details, its phases and the
/// failures; a name with control characters shows escaped.
#[test]
fn a_run_across_hosts_names_the_worker_of_each_try() -> TestResult {
    let report: Report = serde_json::from_str(
        r#"{"version":2,"no_act":false,"rounds":2,"elapsed_secs":3.0,"cleanup_failure":null,"jobs":[
        {"name":"Db","status":"fixed","tries":1,"last_error":null,"blocked_by":null,"time_secs":1.0,"deps":[],
         "phases":[{"phase":"check","attempt":1,"start_secs":0.0,"end_secs":0.5,"passed":false,"performed":true,"error":{"message":"no table"}},
                   {"phase":"run","attempt":1,"start_secs":0.5,"end_secs":1.0,"passed":true,"performed":true},
                   {"phase":"recheck","attempt":1,"start_secs":1.0,"end_secs":1.0,"passed":true,"performed":true}],
         "performed_by":["db\u001b1"]},
        {"name":"Web","status":"failed","tries":2,"last_error":{"message":"port taken"},"blocked_by":null,"time_secs":2.0,"deps":["Db"],
         "phases":[{"phase":"check","attempt":1,"start_secs":1.0,"end_secs":2.0,"passed":false,"performed":true,"error":{"message":"down"}},
                   {"phase":"check","attempt":2,"start_secs":2.0,"end_secs":3.0,"passed":false,"performed":true,"error":{"message":"port taken"}}],
         "performed_by":["web1","web2"]}]}"#,
    )?;
    let view = RunView::from_report(&report);
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("remote.html");
    write_page(&page, &view)?;

    let chromium = Chromium::launch(1000);
    let (tab, errors) = chromium.open(&page);
    let headers = eval(
        &tab,
        "Array.from(document.querySelectorAll('#jobs th')).map((th) => th.textContent).join(',')",
    );
    assert!(headers.as_str().unwrap().contains(",worker,"), "{headers}");
    let workers = eval(
        &tab,
        "Array.from(document.querySelectorAll('#jobs td.worker')).map((td) => td.textContent).join(',')",
    );
    assert_eq!(workers, "db\\u{1b}1,web2");
    let failures = text(&tab, "#failures");
    assert!(
        failures.contains("try 1 on web1, check: down")
            && failures.contains("try 2 on web2, check: port taken"),
        "{failures}"
    );
    click_graph_job(&tab, &view, "Web");
    let details = text(&tab, "#details");
    assert!(
        details.contains("try 1 on web1, try 2 on web2"),
        "{details}"
    );
    assert_eq!(count(&tab, "#details table.phases td.worker"), 2);
    assert_no_errors(&errors);
    Ok(())
}

/// A local run's page has no worker column: nobody elsewhere performed
/// anything.
#[test]
fn a_local_runs_page_names_no_worker() -> TestResult {
    let report = site_report(3, &[1], |i| format!("Page{i}"));
    let view = RunView::from_report(&report);
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("local.html");
    write_page(&page, &view)?;

    let chromium = Chromium::launch(1000);
    let (tab, errors) = chromium.open(&page);
    assert!(count(&tab, "#jobs th") > 0);
    assert_eq!(count(&tab, "#jobs td.worker"), 0);
    let headers = eval(
        &tab,
        "Array.from(document.querySelectorAll('#jobs th')).map((th) => th.textContent).join(',')",
    );
    assert!(!headers.as_str().unwrap().contains("worker"), "{headers}");
    assert_no_errors(&errors);
    Ok(())
}
