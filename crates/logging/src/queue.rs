//! Kong's plugin queue (`kong/tools/queue.lua`) as a bounded channel plus one shipper thread.
//!
//! Producers (proxy threads) call [`QueueSender::push`]: a non-blocking `try_send` into a
//! `std::sync::mpsc::sync_channel(max_entries)` (lock-free in the common case). When the queue is
//! full (or `max_bytes` would be exceeded) the *new* record is dropped and counted; Kong drops the
//! oldest, which a producer cannot do without a lock, and both keep memory bounded.
//!
//! The shipper polls (it never blocks inside the channel, so a producer's push never has to
//! wake it), waits for a first record, coalesces up to `max_batch_size` records or until
//! `max_coalescing_delay` passed since the first, and hands the batch to the [`Sink`]. A failed
//! send is retried after `initial_retry_delay`, doubling up to `max_retry_delay`, until
//! `max_retry_time` has passed since the first attempt; then the batch is dropped and counted.
//! `concurrency_limit` = 1 (Kong's default: one batch in flight) is what is implemented; -1 is
//! accepted and treated as 1.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::record::LogRecord;

/// What a queue carries: log records, or other per-request entries (e.g. trace spans).
pub trait Entry: Send + 'static {
    /// Rough size for `max_bytes` accounting.
    fn approx_size(&self) -> usize;
}

impl Entry for LogRecord {
    fn approx_size(&self) -> usize {
        LogRecord::approx_size(self)
    }
}

/// Kong's `queue` plugin settings (defaults as in Kong 3.x).
#[derive(Clone, Debug)]
pub struct QueueConfig {
    pub max_batch_size: usize,
    pub max_coalescing_delay: Duration,
    pub max_entries: usize,
    pub max_bytes: Option<usize>,
    pub max_retry_time: Duration,
    pub initial_retry_delay: Duration,
    pub max_retry_delay: Duration,
    pub concurrency_limit: i32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_batch_size: 1,
            max_coalescing_delay: Duration::from_secs(1),
            max_entries: 10_000,
            max_bytes: None,
            max_retry_time: Duration::from_secs(60),
            initial_retry_delay: Duration::from_millis(10),
            max_retry_delay: Duration::from_secs(60),
            concurrency_limit: 1,
        }
    }
}

/// Where batches go. Runs on the shipper thread only, so it may block (network, disk).
pub trait Sink<T = LogRecord>: Send + 'static {
    /// Delivers one batch; `Err` makes the queue retry the same batch later.
    fn send(&mut self, batch: &[T], single: bool) -> Result<(), String>;
}

/// Counters of one queue. `dropped` is an `Arc` so it can be handed to
/// `gatehouse_metrics::Registry::register_external` directly.
#[derive(Default)]
pub struct QueueStats {
    /// Records refused because the queue was full or over `max_bytes` (or shut down).
    pub dropped: Arc<AtomicU64>,
    /// Records in batches given up after `max_retry_time`.
    pub failed: Arc<AtomicU64>,
    /// Records delivered.
    pub sent: Arc<AtomicU64>,
    /// Send attempts that failed (each retry counts).
    pub send_errors: Arc<AtomicU64>,
    queued_bytes: AtomicU64,
}

/// The producer side; clone one per proxy thread (or per snapshot) and call [`push`](Self::push).
pub struct QueueSender<T = LogRecord> {
    tx: SyncSender<(T, u32)>,
    stats: Arc<QueueStats>,
    max_bytes: u64,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender {
            tx: self.tx.clone(),
            stats: self.stats.clone(),
            max_bytes: self.max_bytes,
        }
    }
}

impl<T: Entry> QueueSender<T> {
    /// Enqueues without blocking; `false` (and `dropped` + 1) when full or shut down.
    #[inline]
    pub fn push(&self, rec: T) -> bool {
        let size = if self.max_bytes == u64::MAX {
            0
        } else {
            let size = rec.approx_size() as u64;
            let before = self.stats.queued_bytes.fetch_add(size, Relaxed);
            if before + size > self.max_bytes {
                self.stats.queued_bytes.fetch_sub(size, Relaxed);
                self.stats.dropped.fetch_add(1, Relaxed);
                return false;
            }
            size
        };
        match self.tx.try_send((rec, size as u32)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                if size > 0 {
                    self.stats.queued_bytes.fetch_sub(size, Relaxed);
                }
                self.stats.dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }
}

/// A running queue: the sender, its stats and the shipper thread.
pub struct Queue<T = LogRecord> {
    sender: QueueSender<T>,
    closing: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How often an idle shipper checks for shutdown.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Poll interval bounds (see `Shipper::poll`). Under steady traffic the shipper wakes once per
/// `MIN_POLL` and drains everything queued: 5 ms keeps it to 200 wake-ups a second (each one a
/// context switch on a core a proxy thread may share) while a 10,000-entry queue still holds
/// 5 ms of 2M requests/s.
const MIN_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_millis(20);

impl<T: Entry> Queue<T> {
    /// Starts the shipper thread `gh-log-{name}`.
    pub fn start(name: &str, cfg: QueueConfig, sink: impl Sink<T>) -> std::io::Result<Queue<T>> {
        let (tx, rx) = mpsc::sync_channel(cfg.max_entries.max(1));
        let stats = Arc::new(QueueStats::default());
        let closing = Arc::new(AtomicBool::new(false));
        let max_bytes = cfg.max_bytes.map_or(u64::MAX, |b| b as u64);
        let shipper = Shipper {
            cfg,
            rx,
            stats: stats.clone(),
            closing: closing.clone(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("gh-log-{name}"))
            .spawn(move || shipper.run(sink))?;
        Ok(Queue {
            sender: QueueSender {
                tx,
                stats,
                max_bytes,
            },
            closing,
            thread: Some(thread),
        })
    }

    pub fn sender(&self) -> QueueSender<T> {
        self.sender.clone()
    }

    pub fn stats(&self) -> &Arc<QueueStats> {
        &self.sender.stats
    }

    /// Stops accepting the wait for new batches, ships what is queued (with retries bounded by
    /// `max_retry_time`) and joins the thread.
    pub fn shutdown(mut self) {
        self.halt();
    }
}

impl<T> Queue<T> {
    fn halt(&mut self) {
        self.closing.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Shipper<T> {
    cfg: QueueConfig,
    rx: Receiver<(T, u32)>,
    stats: Arc<QueueStats>,
    closing: Arc<AtomicBool>,
}

impl<T: Entry> Shipper<T> {
    fn take(&self, batch: &mut Vec<T>, (rec, size): (T, u32)) {
        if size > 0 {
            self.stats.queued_bytes.fetch_sub(size as u64, Relaxed);
        }
        batch.push(rec);
    }

    /// Waits up to `wait` for a record by polling. The shipper never blocks inside the
    /// channel: a blocked receiver makes every producer's `try_send` wake it (a futex call on
    /// the proxy thread); a polling one leaves producers a lock-free slot write. The poll
    /// interval backs off from [`MIN_POLL`] to [`MAX_POLL`] while idle.
    fn poll(&self, wait: Duration, idle: &mut Duration) -> Result<Option<(T, u32)>, ()> {
        let until = Instant::now() + wait;
        loop {
            match self.rx.try_recv() {
                Ok(x) => {
                    *idle = MIN_POLL;
                    return Ok(Some(x));
                }
                Err(mpsc::TryRecvError::Disconnected) => return Err(()),
                Err(mpsc::TryRecvError::Empty) => {}
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.closing.load(Relaxed) {
                return Ok(None);
            }
            std::thread::sleep((*idle).min(left));
            *idle = (*idle * 2).min(MAX_POLL);
        }
    }

    fn run(self, mut sink: impl Sink<T>) {
        let max = self.cfg.max_batch_size.max(1);
        let single = self.cfg.max_batch_size <= 1;
        let mut batch = Vec::with_capacity(max.min(4096));
        let mut idle = MIN_POLL;
        loop {
            let first = match self.poll(IDLE_POLL, &mut idle) {
                Ok(Some(x)) => x,
                Ok(None) if self.closing.load(Relaxed) => break,
                Ok(None) => continue,
                Err(()) => break,
            };
            self.take(&mut batch, first);
            let deadline = Instant::now() + self.cfg.max_coalescing_delay;
            while batch.len() < max {
                // What is already queued first, without reading the clock per record.
                if let Ok(x) = self.rx.try_recv() {
                    self.take(&mut batch, x);
                    continue;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                match self.poll(left, &mut idle) {
                    Ok(Some(x)) => self.take(&mut batch, x),
                    Ok(None) | Err(()) => break,
                }
            }
            self.ship(&mut sink, &batch, single);
            batch.clear();
        }
        // Shutdown: ship what is left, in batches.
        while let Ok(x) = self.rx.try_recv() {
            self.take(&mut batch, x);
            if batch.len() >= max {
                self.ship(&mut sink, &batch, single);
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.ship(&mut sink, &batch, single);
        }
    }

    fn ship(&self, sink: &mut impl Sink<T>, batch: &[T], single: bool) {
        let started = Instant::now();
        let mut delay = self.cfg.initial_retry_delay;
        loop {
            match sink.send(batch, single) {
                Ok(()) => {
                    self.stats.sent.fetch_add(batch.len() as u64, Relaxed);
                    return;
                }
                Err(e) => {
                    self.stats.send_errors.fetch_add(1, Relaxed);
                    if started.elapsed() + delay > self.cfg.max_retry_time {
                        tracing::error!(
                            entries = batch.len(),
                            "log queue: could not send entries, giving up after max_retry_time: {e}"
                        );
                        self.stats.failed.fetch_add(batch.len() as u64, Relaxed);
                        return;
                    }
                    tracing::warn!("log queue: send failed, retrying in {delay:?}: {e}");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(self.cfg.max_retry_delay);
                }
            }
        }
    }
}
