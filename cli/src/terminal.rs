//! Whether a stream is a terminal that takes colours and redraws, as the
//! stream and the environment say: `NO_COLOR` (no-color.org) turns colours
//! off, `TERM=dumb` colours and redraws (a terminal that cannot move its
//! cursor). `--color always` and `--progress always` still force them.

use std::ffi::OsStr;
use std::io::IsTerminal;

/// Whether `--color auto` colours what goes to `stream`.
pub(crate) fn is_colour_terminal(stream: &impl IsTerminal) -> bool {
    stream.is_terminal()
        && welcomes_colours(
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        )
}

/// Whether `--progress auto` draws (and redraws) the progress display on
/// `stream`.
pub(crate) fn is_redrawing_terminal(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && !is_dumb(std::env::var_os("TERM").as_deref())
}

/// `NO_COLOR` set to anything but the empty string asks for no colours, and
/// so does a dumb terminal.
fn welcomes_colours(no_color: Option<&OsStr>, term: Option<&OsStr>) -> bool {
    no_color.is_none_or(OsStr::is_empty) && !is_dumb(term)
}

fn is_dumb(term: Option<&OsStr>) -> bool {
    term.is_some_and(|term| term == "dumb")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_and_a_dumb_terminal_turn_colours_off() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert!(welcomes_colours(None, os("xterm-256color")));
        assert!(welcomes_colours(os(""), None), "an empty NO_COLOR is unset");
        assert!(!welcomes_colours(os("1"), os("xterm")));
        assert!(!welcomes_colours(os("false"), None), "any value counts");
        assert!(!welcomes_colours(None, os("dumb")));
        assert!(is_dumb(os("dumb")) && !is_dumb(os("vt100")) && !is_dumb(None));
    }
}
