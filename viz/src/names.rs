//! Job names as pictures show them: control characters escaped, long
//! lines shortened in the middle, and the "kind" a name belongs to.

/// Lines a label keeps; a name with more shows the first ones and `…`.
const MAX_LINES: usize = 3;
/// The shortest line limit honoured, whatever the style asks.
const MIN_CHARS: usize = 8;

/// The text with every control character but `\n` shown as a Rust-style
/// escape (`\u{0}`), and tabs as spaces: what XML allows and what no
/// viewer drops or DOT reader trips on. U+FFFE and U+FFFF, which XML
/// forbids, are escaped too.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\t' {
            out.push(' ');
        } else if c != '\n' && (c.is_control() || c == '\u{fffe}' || c == '\u{ffff}') {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// The name as a label: printable, at most [`MAX_LINES`] lines of at most
/// `max_chars` characters each (at least [`MIN_CHARS`]), a long line
/// keeping its start and end around `…`.
pub(crate) fn shortened(name: &str, max_chars: usize) -> String {
    let max_chars = max_chars.max(MIN_CHARS);
    let printable = printable(name);
    let mut lines: Vec<String> = Vec::new();
    for (i, line) in printable.split('\n').enumerate() {
        if i == MAX_LINES {
            lines.push("…".to_owned());
            break;
        }
        let count = line.chars().count();
        if count <= max_chars {
            lines.push(line.to_owned());
            continue;
        }
        // Two thirds of the room for the start, the rest for the end.
        let head = (max_chars - 1) * 2 / 3;
        let tail = max_chars - 1 - head;
        let mut short: String = line.chars().take(head).collect();
        short.push('…');
        short.extend(line.chars().skip(count - tail));
        lines.push(short);
    }
    lines.join("\n")
}

/// The kind of job a name suggests, for collapsing fan-outs: the name up
/// to its first character that is not a letter or digit, trailing digits
/// dropped. `RenderPage about.md`, `RenderPage(12)` and `RenderPage12`
/// are all `RenderPage`; a name that starts with punctuation or digits
/// has no kind.
pub(crate) fn kind(name: &str) -> Option<&str> {
    let end = name
        .find(|c: char| !c.is_alphanumeric())
        .unwrap_or(name.len());
    let kind = name[..end].trim_end_matches(|c: char| c.is_ascii_digit());
    (!kind.is_empty()).then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\0b\tc\nd\u{7}"), "a\\u{0}b c\nd\\u{7}");
        assert_eq!(printable("\r\u{ffff}"), "\\u{d}\\u{ffff}");
    }

    #[test]
    fn long_names_keep_their_start_and_end() {
        assert_eq!(shortened("short", 10), "short");
        assert_eq!(shortened("abcdefghijklmnop", 10), "abcdef…nop");
        assert_eq!(shortened("abcdefghijklmnop", 1), "abcd…nop");
        assert_eq!(shortened("1\n2\n3\n4\n5", 10), "1\n2\n3\n…");
        let long = "x".repeat(10_000);
        assert_eq!(shortened(&long, 40).chars().count(), 40);
    }

    #[test]
    fn kinds_come_from_the_start_of_the_name() {
        assert_eq!(kind("RenderPage about.md"), Some("RenderPage"));
        assert_eq!(kind("RenderPage(12)"), Some("RenderPage"));
        assert_eq!(kind("RenderPage12"), Some("RenderPage"));
        assert_eq!(kind("Invite Lawyer Cat"), Some("Invite"));
        assert_eq!(kind("42 things"), None);
        assert_eq!(kind(" spaced"), None);
    }
}
