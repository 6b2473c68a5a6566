//! The allocator settings of the process.
//!
//! glibc serves an allocation of 128 KiB or more with its own `mmap`, returned to the system on
//! free, but after the first such block is freed it raises that threshold (up to 32 MiB) and
//! serves later large blocks from its heaps instead. A load allocates and frees large blocks all
//! the time (Arrow arrays of a batch, COPY chunks), so the heaps of every worker thread fill
//! with freed space that is not returned: on the 120-day demo the anonymous memory at the peak
//! was 81 MiB with the dynamic threshold and 53 MiB with it fixed (docs/benchmarks.md, "Memory").
//! Fixing it costs one `mmap`/`munmap` per large block, a few thousand per million rows.

/// Fix glibc's mmap threshold at its default, 128 KiB (which also stops it from moving). Called
/// first thing in `main`, before any thread starts. Other C libraries: nothing to do.
pub fn bound_allocator_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const THRESHOLD: libc::c_int = 128 * 1024;
        // SAFETY: mallopt only changes allocator parameters, and no other thread exists yet.
        // Its result is ignored: a refusal leaves glibc's default, which is only less frugal.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        }
    }
}
