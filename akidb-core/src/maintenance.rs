//! Background maintenance: one worker thread per database, owned by it, that runs the automatic
//! `optimize` of collections whose graphs gathered too many tombstones.
//!
//! - One run at a time, per database; a collection is queued at most once.
//! - Owned: dropping the database stops the worker (an optimize in progress is cancelled at its
//!   next check) and joins it before the database saves its indexes and closes its file, so no
//!   thread outlives the database or keeps its file locked.
//! - A worker that cannot be started (the system refuses a thread) is retried at the next request
//!   and logged; writes never fail for it, and `Collection::optimize` still works when called.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::collection::CollectionState;

/// The worker's queue and thread.
type Worker = (Sender<Weak<CollectionState>>, std::thread::JoinHandle<()>);

pub(crate) struct Maintenance {
    worker: Mutex<Option<Worker>>,
    /// Set when the database is dropped: optimizes stop at their next check.
    stop: Arc<AtomicBool>,
}

impl Maintenance {
    pub(crate) fn new() -> Self {
        Self { worker: Mutex::new(None), stop: Arc::new(AtomicBool::new(false)) }
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
        let mut slot = self.worker.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_none_or(|(_, t)| t.is_finished()) {
            let (tx, rx) = mpsc::channel::<Weak<CollectionState>>();
            let stop = self.stop.clone();
            let spawned =
                std::thread::Builder::new().name("akidb-maintenance".into()).spawn(move || {
                    for state in rx {
                        let Some(state) = state.upgrade() else { continue };
                        state.optimize_queued.store(false, Ordering::Release);
                        if stop.load(Ordering::Acquire) {
                            continue;
                        }
                        if let Err(e) = state.optimize(&stop) {
                            log::warn!("automatic optimize of {} failed: {e}", state.name());
                        }
                    }
                });
            match spawned {
                Ok(t) => *slot = Some((tx, t)),
                Err(e) => {
                    state.optimize_queued.store(false, Ordering::Release);
                    log::warn!(
                        "cannot start the maintenance worker (optimize of {} skipped): {e}",
                        state.name()
                    );
                    return;
                }
            }
        }
        if let Some((tx, _)) = slot.as_ref() {
            if tx.send(Arc::downgrade(state)).is_err() {
                state.optimize_queued.store(false, Ordering::Release);
            }
        }
    }

    /// Stops the worker (cancelling an optimize in progress) and waits for it.
    pub(crate) fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((tx, thread)) = worker {
            drop(tx);
            let _ = thread.join();
        }
    }
}
