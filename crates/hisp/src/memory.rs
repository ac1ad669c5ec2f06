//! The allocator policy of the hisp process.
//!
//! A HISP handles messages of tens of MiB beside many small ones. Under
//! glibc's dynamic default, the mapping threshold rises after the first large
//! buffer is freed: from then on large message buffers come from the heap and
//! stay resident after use, while medium buffers are mapped and faulted in
//! afresh for every message. hisp fixes both thresholds instead: buffers of
//! 4 MiB and more are mapped on their own and returned to the system when
//! freed, smaller ones are reused from the heap, which may keep up to 32 MiB
//! free for reuse. `cargo bench -p hisp-smime` measures under the same policy.

/// Buffers at least this large are mapped on their own.
const MMAP_THRESHOLD: i32 = 4 << 20;
/// Free heap kept for reuse before it is returned to the system.
const TRIM_THRESHOLD: i32 = 32 << 20;

/// Sets the policy; call once, first thing in `main`.
pub fn set_allocator_policy() {
    // SAFETY: mallopt only sets allocator tunables; it is called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
