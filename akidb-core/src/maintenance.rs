//! Background maintenance: one worker thread per database, owned by it, that runs
//! - the automatic `optimize` of collections whose graphs gathered too many tombstones, and
//! - retention passes ([`crate::Retention`]): one when a collection with a policy is opened,
//!   created or given a policy, then one every retention interval for each such collection open
//!   in this process.
//!
//! - One job at a time, per database; a collection is queued for optimize at most once.
//! - Owned: dropping the database stops the worker (an optimize or a retention pass in progress
//!   is cancelled at its next check: between chunks for retention, so every chunk is whole) and
//!   joins it before the database saves its indexes and closes its file, so no thread outlives
//!   the database or keeps its file locked.
//! - A worker that cannot be started (the system refuses a thread) is retried at the next request
//!   and logged; writes never fail for it, and `Collection::optimize` /
//!   `Collection::enforce_retention` still work when called.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use akidb_storage::Storage;

use crate::clock::Clock;
use crate::collection::{prune_changes, retention_pass, CollectionState, CHANGE_FEED_KEEP};

/// What the worker is asked to do.
enum Job {
    Optimize(Weak<CollectionState>),
    /// Run a retention pass now and keep running them every interval.
    Retention(Weak<CollectionState>),
}

/// The worker's queue and thread.
type Worker = (Sender<Job>, std::thread::JoinHandle<()>);

pub(crate) struct Maintenance {
    worker: Mutex<Option<Worker>>,
    /// Set when the database is dropped: jobs stop at their next check.
    stop: Arc<AtomicBool>,
    store: Arc<Storage>,
    clock: Arc<dyn Clock>,
    retention_interval: Duration,
}

impl Maintenance {
    pub(crate) fn new(
        store: Arc<Storage>,
        clock: Arc<dyn Clock>,
        retention_interval: Duration,
    ) -> Self {
        Self {
            worker: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            store,
            clock,
            retention_interval,
        }
    }

    /// The flag a long operation checks to stop early because the database is going away.
    pub(crate) fn stopping(&self) -> &AtomicBool {
        &self.stop
    }

    /// Queues an optimize of `state` (unless one is queued or running already).
    pub(crate) fn request_optimize(&self, state: &Arc<CollectionState>) {
        if state.optimize_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if !self.send(Job::Optimize(Arc::downgrade(state)), state.name()) {
            state.optimize_queued.store(false, Ordering::Release);
        }
    }

    /// Runs a retention pass of `state` soon, then every retention interval while it is open.
    pub(crate) fn watch_retention(&self, state: &Arc<CollectionState>) {
        self.send(Job::Retention(Arc::downgrade(state)), state.name());
    }

    /// Sends a job, starting the worker if needed. Returns whether it was queued.
    fn send(&self, job: Job, name: &str) -> bool {
        let mut slot = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_none_or(|(_, t)| t.is_finished()) {
            let (tx, rx) = mpsc::channel::<Job>();
            let run = Run {
                stop: self.stop.clone(),
                store: self.store.clone(),
                clock: self.clock.clone(),
                interval: self.retention_interval,
            };
            let spawned = std::thread::Builder::new()
                .name("akidb-maintenance".into())
                .spawn(move || run.serve(rx));
            match spawned {
                Ok(t) => *slot = Some((tx, t)),
                Err(e) => {
                    log::warn!("cannot start the maintenance worker (job for {name} skipped): {e}");
                    return false;
                }
            }
        }
        slot.as_ref().is_some_and(|(tx, _)| tx.send(job).is_ok())
    }

    /// Stops the worker (cancelling a job in progress) and waits for it.
    pub(crate) fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((tx, thread)) = worker {
            drop(tx);
            let _ = thread.join();
        }
    }
}

/// What the worker thread owns.
struct Run {
    stop: Arc<AtomicBool>,
    store: Arc<Storage>,
    clock: Arc<dyn Clock>,
    interval: Duration,
}

impl Run {
    fn serve(self, rx: mpsc::Receiver<Job>) {
        let mut watched: Vec<Weak<CollectionState>> = Vec::new();
        let mut next_pass = Instant::now() + self.interval;
        loop {
            let wait = next_pass.saturating_duration_since(Instant::now());
            let job = match rx.recv_timeout(wait) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if self.stop.load(Ordering::Acquire) {
                continue; // drain until the database drops the sender
            }
            match job {
                Some(Job::Optimize(state)) => {
                    let Some(state) = state.upgrade() else { continue };
                    state.optimize_queued.store(false, Ordering::Release);
                    self.optimize(&state);
                }
                Some(Job::Retention(state)) => {
                    if let Some(s) = state.upgrade() {
                        self.retention(&s);
                    }
                    if !watched.iter().any(|w| w.ptr_eq(&state)) {
                        watched.push(state);
                    }
                }
                None => {
                    watched.retain(|w| w.upgrade().is_some_and(|s| !s.is_dropped()));
                    for state in watched.iter().filter_map(Weak::upgrade) {
                        if self.stop.load(Ordering::Acquire) {
                            break;
                        }
                        self.retention(&state);
                    }
                    next_pass = Instant::now() + self.interval;
                }
            }
        }
    }

    fn optimize(&self, state: &CollectionState) {
        self.prune_changes(state);
        if let Err(e) = state.optimize(&self.stop) {
            log::warn!("automatic optimize of {} failed: {e}", state.name());
        }
    }

    /// Prunes the collection's change feed of delete records older than [`CHANGE_FEED_KEEP`].
    fn prune_changes(&self, state: &CollectionState) {
        let now = self.clock.now_ms();
        if let Err(e) = prune_changes(state, &self.store, now, CHANGE_FEED_KEEP) {
            log::warn!("pruning the change feed of {} failed: {e}", state.name());
        }
    }

    fn retention(&self, state: &CollectionState) {
        let stop = || self.stop.load(Ordering::Relaxed) || state.is_dropped();
        match retention_pass(state, &self.store, self.clock.as_ref(), &stop) {
            Ok(report) if report.needs_optimize => self.optimize(state),
            Ok(_) => self.prune_changes(state),
            Err(e) => log::warn!("retention pass of {} failed: {e}", state.name()),
        }
    }
}
