//! Time as AkiDB reads it: insertion times of documents and retention cut-offs.

/// A source of wall-clock time in unix milliseconds. The default is the system clock
/// ([`SystemClock`]); give your own (a simulation, a test) with
/// [`crate::DatabaseBuilder::with_clock`]. Retention never deletes a document newer than its
/// policy says *by this clock*.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock. A clock before 1970 reads as 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}
