//! Redaction of what changes from run to run (times, temporary paths) in
//! text meant for snapshots.

use std::borrow::Cow;
use std::path::Path;

use regex::Regex;

/// Replaces what differs between runs in output, so a snapshot of it is
/// stable: durations (`0.53s`, `12ms`, `1m`) become `[TIME]`, timestamps
/// (`2026-11-29T01:02:03Z`) `[TIMESTAMP]`, JSON seconds
/// (`"elapsed_secs": 0.0123`) `"[SECS]"`, and each path given to
/// [`path`](Redactions::path) its name.
///
/// ```
/// use dojobber_testkit::Redactions;
///
/// let target = std::env::temp_dir().join("site-1234");
/// let text = format!("wrote {}/index.html\n20 jobs in 0.53s, {{\"elapsed_secs\": 0.0123}}", target.display());
/// let redacted = Redactions::new().path(&target, "[TARGET]").apply(&text);
/// assert_eq!(redacted, "wrote [TARGET]/index.html\n20 jobs in [TIME], {\"elapsed_secs\": \"[SECS]\"}");
/// ```
///
/// With insta: `insta::assert_snapshot!(redactions.apply(&output))`.
#[derive(Clone, Debug)]
pub struct Redactions {
    /// Applied in order: paths first (they may hold digits), then times.
    rules: Vec<(Regex, String)>,
}

impl Default for Redactions {
    fn default() -> Self {
        Redactions::new()
    }
}

impl Redactions {
    /// Times, timestamps and JSON seconds; no paths yet.
    pub fn new() -> Redactions {
        let rule = |pattern: &str, name: &str| {
            (
                Regex::new(pattern).expect("the built-in patterns compile"),
                name.to_owned(),
            )
        };
        Redactions {
            rules: vec![
                rule(r#""(\w*_secs)":\s*-?[0-9][0-9.eE+-]*"#, r#""$1": "[SECS]""#),
                rule(
                    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
                    "[TIMESTAMP]",
                ),
                rule(r"\b\d+(\.\d+)?(ns|µs|us|ms|s|m|h)\b", "[TIME]"),
            ],
        }
    }

    /// The same, also replacing `path` (as text, wherever it appears) by
    /// `name`. Give the longest paths first when one holds another.
    pub fn path(mut self, path: impl AsRef<Path>, name: &str) -> Redactions {
        let text = path.as_ref().to_string_lossy();
        let pattern = Regex::new(&regex::escape(&text)).expect("an escaped path compiles");
        // `$` in a name would read as a group reference.
        let name = name.replace('$', "$$");
        let times = self.rules.len() - 3;
        self.rules.insert(times, (pattern, name));
        self
    }

    /// `text` with every rule applied.
    pub fn apply(&self, text: &str) -> String {
        let mut text = Cow::Borrowed(text);
        for (pattern, name) in &self.rules {
            if let Cow::Owned(replaced) = pattern.replace_all(&text, name.as_str()) {
                text = Cow::Owned(replaced);
            }
        }
        text.into_owned()
    }
}
