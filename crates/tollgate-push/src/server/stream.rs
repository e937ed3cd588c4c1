//! One subscription's response body: the Gateway's current snapshot, then each newer one,
//! and a ping after every stretch of silence. A task feeds the body through a channel of one
//! message: while the client is slow (HTTP/2 flow control stops the body being read) the task
//! waits, and the `watch` channel keeps only the newest snapshot for it.

use bytes::Bytes;
use http_body::{Body, Frame};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::hub::{Connected, Latest};
use crate::message::{PING_LINE, REMOVED_LINE};

/// The body of a subscription response.
pub(crate) struct SubscriptionBody {
    lines: mpsc::Receiver<Bytes>,
}

impl Body for SubscriptionBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.lines
            .poll_recv(cx)
            .map(|line| line.map(|line| Ok(Frame::data(line))))
    }
}

/// What a subscription's task needs.
pub(crate) struct Subscription {
    pub(crate) latest: watch::Receiver<Latest>,
    pub(crate) connected: Connected,
    pub(crate) permit: OwnedSemaphorePermit,
    pub(crate) ping_interval: Duration,
    pub(crate) shutdown: CancellationToken,
}

/// Starts feeding a subscription; the body ends when the server shuts down, and the task
/// ends (and the proxy counts as disconnected) when the body is dropped.
pub(crate) fn start(subscription: Subscription) -> SubscriptionBody {
    let (sender, lines) = mpsc::channel(1);
    tokio::spawn(feed(subscription, sender));
    SubscriptionBody { lines }
}

async fn feed(subscription: Subscription, sender: mpsc::Sender<Bytes>) {
    let Subscription {
        mut latest,
        connected,
        permit,
        ping_interval,
        shutdown,
    } = subscription;
    tracing::info!(
        gateway = connected.gateway(),
        proxy = connected.proxy(),
        "proxy subscribed"
    );
    latest.mark_changed();
    loop {
        let line = tokio::select! {
            () = shutdown.cancelled() => break,
            () = sender.closed() => break,
            changed = latest.changed() => {
                if changed.is_err() {
                    break;
                }
                match &*latest.borrow_and_update() {
                    Latest::Nothing => continue,
                    Latest::Snapshot { line, .. } => line.clone(),
                    Latest::Removed => Bytes::from_static(REMOVED_LINE),
                }
            }
            () = tokio::time::sleep(ping_interval) => Bytes::from_static(PING_LINE),
        };
        tokio::select! {
            sent = sender.send(line) => if sent.is_err() { break },
            () = shutdown.cancelled() => break,
        }
    }
    tracing::info!(
        gateway = connected.gateway(),
        proxy = connected.proxy(),
        "proxy disconnected"
    );
    drop(permit);
}
