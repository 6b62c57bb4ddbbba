//! Text from jobs (names, errors) made safe for a terminal: the one rule
//! the engine's printer, the command line and the pictures share.
//!
//! ```
//! use dojobber::text::{escaped, shortened};
//! let name = escaped("Deploy\u{1b}[2J to prod");
//! assert_eq!(name, "Deploy\\u{1b}[2J to prod");
//! assert_eq!(shortened(&name, 6), "Deploy… (17 more characters)");
//! ```

// Inside the engine, durations as people write them (`humane`) too.

use std::borrow::Cow;
use std::time::Duration;

/// Whether `c` would act on a terminal rather than show: a control
/// character (ESC, `\r`, `\n`, tabs, C1), a line or paragraph separator
/// (U+2028, U+2029), which a viewer breaks the line at, or a
/// bidirectional mark or override (U+061C, U+200E/F, U+202A–E,
/// U+2066–9), which reorders what follows it. The one rule for the
/// terminal, the pictures and the HTML page (whose script keeps a copy:
/// viz's `page.js`, `shown`).
///
/// ```
/// assert!(dojobber::text::is_hostile('\u{1b}'));
/// assert!(dojobber::text::is_hostile('\u{202e}'));
/// assert!(dojobber::text::is_hostile('\u{2028}'));
/// assert!(!dojobber::text::is_hostile('é'));
/// ```
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every [hostile](is_hostile) character shown as a Rust
/// escape (`\u{1b}`, `\n`), so a job name or an error cannot move the
/// cursor, clear the screen or fake a line; anything else as it is.
///
/// ```
/// assert_eq!(dojobber::text::escaped("a\u{1b}[2J\nb"), "a\\u{1b}[2J\\nb");
/// assert_eq!(dojobber::text::escaped("Café \"x\""), "Café \"x\"");
/// ```
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hostile) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hostile(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The most characters of an error that a line for people shows; the
/// report has it whole.
pub const MAX_REASON_CHARS: usize = 300;

/// `text` cut to `max` characters, with `…` and the count of the rest.
///
/// ```
/// assert_eq!(dojobber::text::shortened("abcdef", 4), "abcd… (2 more characters)");
/// assert_eq!(dojobber::text::shortened("abc", 4), "abc");
/// ```
pub fn shortened(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((end, _)) => {
            let rest = text[end..].chars().count();
            Cow::Owned(format!("{}… ({rest} more characters)", &text[..end]))
        }
    }
}

/// `1.5s`, `250ms`, `2m 5s`: a duration as people write it.
pub(crate) fn humane(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else if duration < Duration::from_secs(60) {
        format!("{}s", (duration.as_secs_f64() * 1000.0).round() / 1000.0)
    } else {
        let secs = duration.as_secs();
        format!("{}m {}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped_and_plain_text_borrowed() {
        assert_eq!(
            escaped("esc \u{1b}[31mred\r\n\t\u{202e}x\u{2066}\u{200f}"),
            "esc \\u{1b}[31mred\\r\\n\\t\\u{202e}x\\u{2066}\\u{200f}"
        );
        assert_eq!(
            escaped("a\u{61c}b\u{2028}c\u{2029}d"),
            "a\\u{61c}b\\u{2028}c\\u{2029}d",
            "the Arabic letter mark and the line and paragraph separators"
        );
        assert!(matches!(escaped("Caf\u{e9} \"q\" \\"), Cow::Borrowed(_)));
        assert_eq!(shortened("abcdef", 4), "abcd… (2 more characters)");
        assert_eq!(shortened("abc", 4), "abc");
    }
}
