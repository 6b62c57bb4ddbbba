//! Job names as pictures show them: control characters escaped, long
//! names shortened in the middle, and the "kind" a name belongs to.

/// The shortest line limit honoured, whatever the style asks.
const MIN_CHARS: usize = 8;

/// The text with every character the terminal escapes
/// ([`dojobber::text::is_hostile`]: control characters, line breaks and tabs
/// included, the line and paragraph separators and the bidirectional
/// marks and overrides) shown as a Rust-style escape
/// (`\u{a}`): one line, visibly what the name holds, with nothing XML
/// forbids and nothing a viewer drops or a DOT reader trips on. U+FFFE and
/// U+FFFF, which XML forbids, are escaped too. The HTML page's script
/// (`page.js`, `shown`) escapes the same way.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_escaped(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether [`printable`] escapes `c`.
fn is_escaped(c: char) -> bool {
    dojobber::text::is_hostile(c) || c == '\u{fffe}' || c == '\u{ffff}'
}

/// The name as a label: printable and at most `max_chars` characters
/// (at least [`MIN_CHARS`]), a long name keeping its start and end around
/// `…`. The name is cut between its own characters, each counted as wide
/// as it is printed, so no escape is split.
pub(crate) fn shortened(name: &str, max_chars: usize) -> String {
    let max_chars = max_chars.max(MIN_CHARS);
    let width = |c: char| {
        if is_escaped(c) {
            c.escape_unicode().count()
        } else {
            1
        }
    };
    if name.chars().map(width).sum::<usize>() <= max_chars {
        return printable(name);
    }
    // Two thirds of the room for the start, the rest for the end.
    let head_room = (max_chars - 1) * 2 / 3;
    let tail_room = max_chars - 1 - head_room;
    let head_end =
        fitting(name.char_indices(), head_room, width).map_or(0, |(i, c)| i + c.len_utf8());
    let tail_start = fitting(name.char_indices().rev(), tail_room, width)
        .map_or(name.len(), |(i, _)| i)
        .max(head_end);
    format!(
        "{}…{}",
        printable(&name[..head_end]),
        printable(&name[tail_start..])
    )
}

/// The last of `chars` that fits in `room`, each as wide as `width` says.
fn fitting(
    chars: impl Iterator<Item = (usize, char)>,
    room: usize,
    width: impl Fn(char) -> usize,
) -> Option<(usize, char)> {
    let mut used = 0;
    chars
        .take_while(|&(_, c)| {
            used += width(c);
            used <= room
        })
        .last()
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
        assert_eq!(
            printable("a\0b\tc\nd\u{7}e\u{1b}"),
            "a\\u{0}b\\u{9}c\\u{a}d\\u{7}e\\u{1b}"
        );
        assert_eq!(printable("\r\u{ffff}"), "\\u{d}\\u{ffff}");
        assert_eq!(
            printable("a\u{202e}b\u{2066}\u{200f}"),
            "a\\u{202e}b\\u{2066}\\u{200f}"
        );
        assert_eq!(
            printable("a\u{61c}b\u{2028}c\u{2029}"),
            "a\\u{61c}b\\u{2028}c\\u{2029}"
        );
    }

    #[test]
    fn long_names_keep_their_start_and_end() {
        assert_eq!(shortened("short", 10), "short");
        assert_eq!(shortened("abcdefghijklmnop", 10), "abcdef…nop");
        assert_eq!(shortened("abcdefghijklmnop", 1), "abcd…nop");
        // Cut between the name's characters: no escape is split.
        assert_eq!(shortened("1\n2\n3\n4\n5", 12), "1\\u{a}2…5");
        assert_eq!(
            shortened("1\n2\n3\n4\n5\n6\n7\n8\n9", 20),
            "1\\u{a}2\\u{a}…8\\u{a}9"
        );
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
