//! A global allocator that asks Linux for transparent huge pages (2 MiB) under large
//! allocations: the system allocator, plus `madvise(MADV_HUGEPAGE)` on the 2 MiB-aligned
//! interior of every block of at least [`HUGE_MIN_BYTES`], before the caller first touches it.
//!
//! Why: the kernels stream buffers far larger than what the TLBs map with 4 KiB pages (the
//! packed Winograd weights, 36 MiB for one 512→512 layer; the 8 MiB work block, whose input
//! transform stores to 36 transform points' rows at once, each in its own 4 KiB page). Where the system's THP mode is `madvise` (Debian's
//! and many distributions' default), nothing gets huge pages unless asked. On the Zen 5 here
//! (`nst-cli bench`, tubingen × starry_night, 2 threads, six pairs alternated with the build
//! before), 512 px took 0.330–0.346 s/it against 0.342–0.379 (each pair faster, by 2–12%, 4%
//! typical) and 256 px 0.090–0.095 against 0.089–0.095 (no change); peak RSS the same
//! (624 / 380 MB). About 85% of the resident memory is then on huge pages (538 of 637 MB,
//! `smaps_rollup` during a 512-px run). Not yet measured on an Intel CPU.
//!
//! Binaries opt in (`nst-cli` does): `#[global_allocator] static A: HugePageAlloc = HugePageAlloc;`.
//! Elsewhere than Linux, or where THP is `never`, it is the system allocator: `madvise` is a
//! hint whose failure changes nothing.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks from this size up are advised (4 MiB: at least one whole aligned 2 MiB page inside).
pub const HUGE_MIN_BYTES: usize = 4 << 20;

/// The size of a transparent huge page on x86-64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// [`System`], with `madvise(MADV_HUGEPAGE)` on large blocks (module docs).
pub struct HugePageAlloc;

/// Advise the whole 2 MiB pages inside `[p, p + len)`.
#[inline]
fn advise(p: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    if len >= HUGE_MIN_BYTES && !p.is_null() {
        let start = (p as usize).next_multiple_of(HUGE_PAGE);
        let end = (p as usize + len) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: the range lies inside a block the allocator just handed out; MADV_HUGEPAGE
            // changes no contents, only how untouched pages are backed. Errors are ignored.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    let _ = (p, len);
}

// SAFETY: every call is forwarded to `System`, which upholds GlobalAlloc's contract; `advise`
// only adds a hint about the returned memory.
unsafe impl GlobalAlloc for HugePageAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        advise(p, layout.size());
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() < HUGE_MIN_BYTES {
            return System.alloc_zeroed(layout);
        }
        // Advise before the zeros are written, so the first touch faults in huge pages
        // (calloc may write the zeros itself, before a hint after it could act).
        let p = System.alloc(layout);
        if !p.is_null() {
            advise(p, layout.size());
            std::ptr::write_bytes(p, 0, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout)
    }

    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new_size);
        advise(q, new_size);
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_usable_and_zeroed_where_asked() {
        let a = HugePageAlloc;
        for &n in &[64usize, HUGE_MIN_BYTES - 1, HUGE_MIN_BYTES, 9 << 20] {
            let layout = Layout::from_size_align(n, 64).unwrap();
            // SAFETY: a non-zero layout; every pointer is freed with the layout it came with.
            unsafe {
                // A dirty block freed first, so that the zeroed one likely reuses its memory
                // (fresh pages from the OS would be zeros without any zeroing).
                let d = a.alloc(layout);
                std::ptr::write_bytes(d, 0xFF, n);
                a.dealloc(d, layout);
                let z = a.alloc_zeroed(layout);
                assert!(!z.is_null());
                assert_eq!(z as usize % 64, 0, "alignment kept");
                let s = std::slice::from_raw_parts_mut(z, n);
                assert!(
                    s.iter().all(|&b| b == 0),
                    "alloc_zeroed gives zeros ({n} bytes)"
                );
                s.fill(0xA5);
                let r = a.realloc(z, layout, 2 * n);
                assert!(!r.is_null());
                let s = std::slice::from_raw_parts(r, n);
                assert!(s.iter().all(|&b| b == 0xA5), "realloc keeps the contents");
                a.dealloc(r, Layout::from_size_align(2 * n, 64).unwrap());
            }
        }
    }
}
