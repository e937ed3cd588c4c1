//! Splits a response body into its newline-delimited messages, refusing any larger than the
//! limit and giving up when nothing at all arrives for too long.

use bytes::{Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use std::time::Duration;

use crate::PushError;
use crate::error::with_causes;

pub(crate) struct Lines<B> {
    body: B,
    buffer: BytesMut,
    /// How much of `buffer` is known to hold no newline.
    scanned: usize,
    max_bytes: usize,
    idle_timeout: Duration,
}

impl<B> Lines<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error,
{
    pub(crate) fn new(body: B, max_bytes: usize, idle_timeout: Duration) -> Self {
        Self {
            body,
            buffer: BytesMut::new(),
            scanned: 0,
            max_bytes,
            idle_timeout,
        }
    }

    /// The next message, without its newline.
    pub(crate) async fn next_line(&mut self) -> Result<Bytes, PushError> {
        loop {
            if let Some(at) = self.buffer[self.scanned..].iter().position(|b| *b == b'\n') {
                let end = self.scanned + at;
                self.scanned = 0;
                if end > self.max_bytes {
                    return Err(self.too_large());
                }
                let mut line = self.buffer.split_to(end + 1);
                line.truncate(end);
                return Ok(line.freeze());
            }
            self.scanned = self.buffer.len();
            if self.buffer.len() > self.max_bytes {
                return Err(self.too_large());
            }
            let frame = tokio::time::timeout(self.idle_timeout, self.body.frame())
                .await
                .map_err(|_| {
                    PushError::Stream(format!(
                        "nothing received for {} ms",
                        self.idle_timeout.as_millis()
                    ))
                })?;
            match frame {
                None => return Err(PushError::Stream("closed by the controller".into())),
                Some(Err(error)) => return Err(PushError::Stream(with_causes(&error))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    fn too_large(&self) -> PushError {
        PushError::Protocol(format!(
            "a message is larger than the limit of {} bytes",
            self.max_bytes
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body of the given chunks, then (with `hang`) one that never ends.
    struct Chunks {
        chunks: VecDeque<&'static [u8]>,
        hang: bool,
    }

    impl Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.chunks.pop_front() {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(chunk))))),
                None if self.hang => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    fn reader(chunks: &[&'static [u8]], hang: bool, max: usize) -> Lines<Chunks> {
        let body = Chunks {
            chunks: chunks.iter().copied().collect(),
            hang,
        };
        Lines::new(body, max, Duration::from_secs(45))
    }

    #[tokio::test]
    async fn splits_across_and_within_chunks() {
        let mut lines = reader(&[b"ab", b"c\nd", b"e\nf\n"], false, 10);
        assert_eq!(&lines.next_line().await.unwrap()[..], b"abc");
        assert_eq!(&lines.next_line().await.unwrap()[..], b"de");
        assert_eq!(&lines.next_line().await.unwrap()[..], b"f");
        let end = lines.next_line().await.unwrap_err().to_string();
        assert_eq!(end, "the stream ended: closed by the controller");
    }

    #[tokio::test]
    async fn refuses_a_message_over_the_limit() {
        let mut lines = reader(&[b"12345", b"6789\n"], false, 8);
        let error = lines.next_line().await.unwrap_err().to_string();
        assert!(
            error.contains("larger than the limit of 8 bytes"),
            "{error}"
        );
        let mut lines = reader(&[b"12345678\n"], false, 8);
        assert_eq!(&lines.next_line().await.unwrap()[..], b"12345678");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_when_nothing_arrives() {
        let mut lines = reader(&[b"a"], true, 8);
        let error = lines.next_line().await.unwrap_err().to_string();
        assert_eq!(error, "the stream ended: nothing received for 45000 ms");
    }
}
