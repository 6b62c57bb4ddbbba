//! An in-memory writer for tests of printed output.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// An in-memory writer whose clones share one buffer: give one clone to a
/// printer, read the text from another.
///
/// ```
/// use std::io::Write;
/// let buffer = dojobber_testkit::SharedBuffer::default();
/// writeln!(buffer.clone(), "Food.check: pass")?;
/// assert_eq!(buffer.text(), "Food.check: pass\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
