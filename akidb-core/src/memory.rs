//! Giving the memory a collection load frees back to the operating system.
//!
//! Loading a collection reads every stored document once: vectors are copied into the exact
//! store, declared fields into the payload columns, an index generation into the graph. glibc's
//! allocator keeps most of what that frees (many small blocks between long-lived ones) for later
//! allocations, and the process's resident size still counts it: about 450 MB after loading
//! 1,000,000 documents of 384 dimensions (docs/benchmarks.md). After a load,
//! [`release_free_heap`] hands the free pages back (`malloc_trim`). On other C libraries and
//! systems it does nothing.

/// Returns free heap pages to the operating system (glibc on Linux; elsewhere a no-op).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_heap() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointer and only releases free memory of glibc's heaps; it
    // is thread-safe and may be called at any time.
    unsafe {
        malloc_trim(0);
    }
}

/// Returns free heap pages to the operating system (glibc on Linux; elsewhere a no-op).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_heap() {}
