//! The export queue behind both OTLP signals Tollgate sends: finished spans and audit log
//! records wait in a bounded queue that one task exports in batches. The SDK's own batch
//! processors keep their drop counts to themselves and export from threads outside the Tokio
//! runtime that the gRPC exporter needs; this one counts drops in a metric and exports on the
//! proxy's runtime.

use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use prometheus_client::metrics::counter::Counter;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The most items sent in one export.
const MAX_BATCH: usize = 512;
/// How long the first item of a batch waits for others before the batch goes.
const LINGER: Duration = Duration::from_millis(500);
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time between two warnings about failed exports.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What a queue counts.
#[derive(Clone, Debug, Default)]
pub(crate) struct QueueMetrics {
    pub(super) exported: Counter,
    pub(super) dropped: Counter,
    pub(super) failures: Counter,
}

/// Sends batches of `T` somewhere.
pub(super) trait Export<T>: Send + Sync + 'static {
    /// Sends one batch.
    fn export(&self, batch: Vec<T>) -> impl Future<Output = OTelSdkResult> + Send;
    /// Nothing more will be sent.
    fn shutdown(&self);
}

/// Spans to an OTLP span exporter.
pub(super) struct Spans<E>(pub(super) E);

impl<E: SpanExporter + 'static> Export<SpanData> for Spans<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.0.export(batch)
    }

    fn shutdown(&self) {
        let _ = self.0.shutdown();
    }
}

/// A log record with the scope that emitted it.
pub(super) type LogItem = (SdkLogRecord, InstrumentationScope);

/// Log records to an OTLP log exporter.
pub(super) struct Logs<E>(pub(super) E);

impl<E: LogExporter + 'static> Export<LogItem> for Logs<E> {
    async fn export(&self, batch: Vec<LogItem>) -> OTelSdkResult {
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> = batch
            .iter()
            .map(|(record, scope)| (record, scope))
            .collect();
        self.0.export(LogBatch::new(&refs)).await
    }

    fn shutdown(&self) {
        let _ = self.0.shutdown();
    }
}

/// The processor the SDK's provider calls with each finished item.
#[derive(Debug)]
pub(super) struct Queue<T> {
    sender: parking_lot::Mutex<Option<mpsc::Sender<T>>>,
    dropped: Counter,
}

impl<T: Send + 'static> Queue<T> {
    /// A queue of `capacity` items, and the task that exports them with `exporter`.
    pub(super) fn start(
        exporter: impl Export<T>,
        capacity: usize,
        metrics: QueueMetrics,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(capacity);
        let dropped = metrics.dropped.clone();
        let task = tokio::spawn(export(receiver, exporter, metrics));
        let queue = Self {
            sender: parking_lot::Mutex::new(Some(sender)),
            dropped,
        };
        (queue, task)
    }

    /// Queues `item`, or drops and counts it when the queue is full or closed.
    fn push(&self, item: T) {
        let sent = match &*self.sender.lock() {
            Some(sender) => sender.try_send(item).is_ok(),
            None => false,
        };
        if !sent {
            self.dropped.inc();
        }
    }

    /// Closes the queue; the export task ends once it has sent what is queued.
    fn close(&self) {
        self.sender.lock().take();
    }
}

impl SpanProcessor for Queue<SpanData> {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.push(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        // Items are exported continuously; shutdown drains what is left.
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.close();
        Ok(())
    }
}

impl LogProcessor for Queue<LogItem> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.push((record.clone(), scope.clone()));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.close();
        Ok(())
    }
}

/// Exports batches until the queue is closed and empty.
async fn export<T>(
    mut receiver: mpsc::Receiver<T>,
    exporter: impl Export<T>,
    metrics: QueueMetrics,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut last_warning: Option<Instant> = None;
    loop {
        if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
            break;
        }
        let linger = Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            let room = MAX_BATCH - batch.len();
            match tokio::time::timeout_at(linger, receiver.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let count = batch.len() as u64;
        let items = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let failure = match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(items)).await {
            Ok(Ok(())) => {
                metrics.exported.inc_by(count);
                None
            }
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some(format!("no answer within {EXPORT_TIMEOUT:?}")),
        };
        if let Some(reason) = failure {
            metrics.failures.inc();
            if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                last_warning = Some(Instant::now());
                tracing::warn!(%reason, items = count, "OTLP export failed; its items are lost");
            }
        }
    }
    exporter.shutdown();
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Tracer, TracerProvider};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::sync::Arc;

    /// Keeps what it is given; answers after `delay`.
    #[derive(Debug, Default, Clone)]
    struct Collect {
        spans: Arc<parking_lot::Mutex<Vec<String>>>,
        batches: Arc<parking_lot::Mutex<usize>>,
        delay: Duration,
    }

    impl SpanExporter for Collect {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            tokio::time::sleep(self.delay).await;
            *self.batches.lock() += 1;
            self.spans
                .lock()
                .extend(batch.into_iter().map(|s| s.name.into_owned()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn spans_are_exported_in_batches_and_drained_at_shutdown() {
        let exporter = Collect::default();
        let metrics = QueueMetrics::default();
        let (queue, task) = Queue::start(Spans(exporter.clone()), 1000, metrics.clone());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(queue)
            .build();
        let tracer = provider.tracer("test");
        for i in 0..600 {
            drop(tracer.start(format!("span {i}")));
        }
        let _ = provider.shutdown();
        task.await.unwrap();
        assert_eq!(exporter.spans.lock().len(), 600);
        assert_eq!(*exporter.batches.lock(), 2, "512 then 88");
        assert_eq!(metrics.exported.get(), 600);
        assert_eq!(metrics.dropped.get(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let exporter = Collect {
            delay: Duration::from_secs(3600),
            ..Collect::default()
        };
        let metrics = QueueMetrics::default();
        let (queue, task) = Queue::start(Spans(exporter), 10, metrics.clone());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(queue)
            .build();
        let tracer = provider.tracer("test");
        let started = Instant::now();
        for i in 0..1000 {
            drop(tracer.start(format!("span {i}")));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "ending spans never waits"
        );
        // At most the queue plus the batch the exporter holds got through.
        assert!(metrics.dropped.get() >= 1000 - 10 - MAX_BATCH as u64);
        assert!(metrics.dropped.get() > 0);
        task.abort();
    }
}
