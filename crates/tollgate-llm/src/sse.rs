//! Splits a Server-Sent Events byte stream into whole events, whatever the chunk boundaries.

use bytes::{Bytes, BytesMut};

/// Incremental SSE event splitter. Feed it chunks as they arrive; it hands back each complete
/// event (its bytes including the blank line that ends it), slicing the input without copying
/// when an event lies within one chunk. Memory is bounded by `max_event`: a longer event is
/// handed back in pieces, as if it had ended, so the stream keeps flowing.
#[derive(Debug)]
pub struct SseEvents {
    partial: BytesMut,
    max_event: usize,
}

impl SseEvents {
    /// A splitter that holds at most `max_event` bytes of an unfinished event.
    pub fn new(max_event: usize) -> Self {
        Self {
            partial: BytesMut::new(),
            max_event,
        }
    }

    /// Adds a chunk and appends every event it completes to `events`.
    pub fn push(&mut self, chunk: Bytes, events: &mut Vec<Bytes>) {
        let mut rest = chunk;
        if !self.partial.is_empty() {
            // Look for the end of the pending event, allowing its delimiter to straddle chunks.
            let carried = self.partial.len().min(3);
            let mut window = BytesMut::with_capacity(carried + rest.len().min(4));
            window.extend_from_slice(&self.partial[self.partial.len() - carried..]);
            window.extend_from_slice(&rest[..rest.len().min(4)]);
            let end = event_end(&window)
                .filter(|end| *end > carried)
                .map(|end| end - carried)
                .or_else(|| event_end(&rest));
            match end {
                Some(end) => {
                    self.partial.extend_from_slice(&rest[..end]);
                    events.push(self.partial.split().freeze());
                    rest = rest.slice(end..);
                }
                None => {
                    self.partial.extend_from_slice(&rest);
                    self.spill_if_too_long(events);
                    return;
                }
            }
        }
        while let Some(end) = event_end(&rest) {
            events.push(rest.slice(..end));
            rest = rest.slice(end..);
        }
        if !rest.is_empty() {
            self.partial.extend_from_slice(&rest);
            self.spill_if_too_long(events);
        }
    }

    /// Hands back whatever unfinished event remains, at the end of the stream.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.partial.is_empty()).then(|| self.partial.split().freeze())
    }

    fn spill_if_too_long(&mut self, events: &mut Vec<Bytes>) {
        if self.partial.len() > self.max_event {
            events.push(self.partial.split().freeze());
        }
    }
}

/// The index just past the first event delimiter (a blank line: `\n\n`, `\r\n\r\n` or
/// `\r\r`) in `bytes`.
fn event_end(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = memchr::memchr2(b'\n', b'\r', &bytes[from..]) {
        let at = from + offset;
        let rest = &bytes[at..];
        for delimiter in [&b"\n\n"[..], b"\r\n\r\n", b"\r\r"] {
            if rest.starts_with(delimiter) {
                return Some(at + delimiter.len());
            }
        }
        from = at + 1;
    }
    None
}

/// The payload of an event's `data:` lines, joined by newlines as the SSE specification says.
/// Borrowed when the event has a single data line, the common case.
pub fn data_of(event: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    // The common case, read without splitting lines: one `data:` line, then only line ends.
    if let Some(rest) = event.strip_prefix(b"data:") {
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        if rest[end..].iter().all(|b| matches!(b, b'\n' | b'\r')) {
            let line = &rest[..end];
            return std::borrow::Cow::Borrowed(line.strip_suffix(b"\r").unwrap_or(line));
        }
    }
    let mut lines = event
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter_map(|l| l.strip_prefix(b"data:"))
        .map(|l| l.strip_prefix(b" ").unwrap_or(l));
    let Some(first) = lines.next() else {
        return std::borrow::Cow::Borrowed(&[]);
    };
    let mut rest = lines.peekable();
    if rest.peek().is_none() {
        return std::borrow::Cow::Borrowed(first);
    }
    let mut joined = first.to_vec();
    for line in rest {
        joined.push(b'\n');
        joined.extend_from_slice(line);
    }
    std::borrow::Cow::Owned(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut splitter = SseEvents::new(1 << 20);
        let mut events = Vec::new();
        for chunk in chunks {
            splitter.push(Bytes::copy_from_slice(chunk), &mut events);
        }
        events.extend(splitter.finish());
        events.into_iter().map(|e| e.to_vec()).collect()
    }

    #[test]
    fn splits_whole_events_at_any_boundary() {
        let stream =
            b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\nevent: x\ndata: y\n\ndata: [DONE]\n\n";
        let whole = split_all(&[stream]);
        assert_eq!(whole.len(), 4);
        for cut_a in 0..stream.len() {
            for cut_b in cut_a..stream.len() {
                let pieces = [&stream[..cut_a], &stream[cut_a..cut_b], &stream[cut_b..]];
                assert_eq!(split_all(&pieces), whole, "cuts at {cut_a}, {cut_b}");
            }
        }
    }

    #[test]
    fn unfinished_tail_comes_back_at_the_end() {
        assert_eq!(
            split_all(&[b"data: 1\n\ndata: 2"]),
            vec![b"data: 1\n\n".to_vec(), b"data: 2".to_vec()]
        );
    }

    #[test]
    fn an_overlong_event_is_handed_back_rather_than_held() {
        let mut splitter = SseEvents::new(8);
        let mut events = Vec::new();
        splitter.push(Bytes::from_static(b"data: 0123456789"), &mut events);
        assert_eq!(events.len(), 1);
        assert!(splitter.finish().is_none());
    }

    #[test]
    fn data_lines_are_joined() {
        assert_eq!(
            &*data_of(b"event: e\ndata: {\"a\":\ndata: 1}\n\n"),
            b"{\"a\":\n1}"
        );
        assert_eq!(&*data_of(b"data:[DONE]\r\n\r\n"), b"[DONE]");
        assert_eq!(&*data_of(b": comment\n\n"), b"");
        assert_eq!(&*data_of(b"data: {}\n\n"), b"{}");
        assert_eq!(&*data_of(b"data: {}"), b"{}");
        assert_eq!(&*data_of(b"data: a\rb\n\n"), b"a\rb");
        assert_eq!(&*data_of(b"data: 1\ndata: 2\n\n"), b"1\n2");
        assert_eq!(&*data_of(b"data: 1\nevent: e\n\n"), b"1");
    }
}
