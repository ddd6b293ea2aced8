//! A pool of the kernels' large work buffers (Winograd's transformed tiles, im2col columns), so
//! that a training loop whose shapes repeat (one style-transfer iteration after another) reuses
//! them instead of asking the OS for fresh pages and zeroing them every call. The kernels that
//! need work buffers take a [`BufferPool`] from their caller (the engine's CPU backend owns
//! one); nothing here is process-wide. Buffers below [`MIN_POOLED_BYTES`] go to the ordinary
//! allocator. (Tensor storage is not pooled: `nst-cli` tells glibc to keep freed memory
//! instead, which reuses it at any size.)
//!
//! [`BufferPool::zeroed`] hands out a buffer of exactly `n` zeros, [`BufferPool::scratch`] one
//! of at least `n` elements with unspecified contents; [`BufferPool::recycle`] takes either
//! back. A pool keeps at most [`MAX_POOLED_BYTES`]; beyond that the oldest buffers are freed.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Buffers smaller than this are not pooled (1 MiB).
pub const MIN_POOLED_BYTES: usize = 1 << 20;
/// The most the pool holds while idle (96 MiB: two Winograd work buffers and an im2col one).
pub const MAX_POOLED_BYTES: usize = 96 << 20;

struct Pool {
    /// Idle buffers, oldest first, with their size in bytes.
    idle: VecDeque<(usize, Box<dyn Any + Send>)>,
    bytes: usize,
}

/// What the pool holds: the kernels' floats, and `u32` for packed bf16 pairs (element types
/// whose `Default` is zero).
pub trait Pooled: Copy + Default + Send + Sync + 'static {}
impl Pooled for f32 {}
impl Pooled for f64 {}
impl Pooled for u32 {}

/// Idle work buffers for the CPU kernels, shared by the threads that call them (a mutex guards
/// the list; buffers are handed out whole, so no two callers share one).
pub struct BufferPool {
    inner: Mutex<Pool>,
}

impl Default for BufferPool {
    fn default() -> Self {
        BufferPool::new()
    }
}

impl BufferPool {
    /// An empty pool.
    pub const fn new() -> BufferPool {
        BufferPool {
            inner: Mutex::new(Pool {
                idle: VecDeque::new(),
                bytes: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer of `n` zeros: a pooled one of exactly that length when there is one, else new.
    pub fn zeroed<T: Pooled>(&self, n: usize) -> Vec<T> {
        match self.take::<T>(n, true) {
            Some(mut v) => {
                fill_zero(&mut v);
                v
            }
            None => vec![T::default(); n],
        }
    }

    /// A scratch buffer of at least `n` elements whose contents are unspecified (finite values
    /// left by earlier use, or zeros): the smallest idle one that is large enough, else a new one.
    /// For work buffers the caller overwrites before reading; give it back with [`recycle`].
    pub fn scratch<T: Pooled>(&self, n: usize) -> Vec<T> {
        self.take::<T>(n, false)
            .unwrap_or_else(|| vec![T::default(); n])
    }

    /// The smallest idle `Vec<T>` of length `n` (`exact`) or at least `n`, out of the pool.
    fn take<T: Pooled>(&self, n: usize, exact: bool) -> Option<Vec<T>> {
        if n * std::mem::size_of::<T>() < MIN_POOLED_BYTES {
            return None;
        }
        let mut p = self.lock();
        let (_, i) = p
            .idle
            .iter()
            .enumerate()
            .filter_map(|(i, (_, b))| {
                let len = b.downcast_ref::<Vec<T>>()?.len();
                (len == n || (!exact && len > n)).then_some((len, i))
            })
            .min()?;
        let (bytes, b) = p.idle.remove(i).expect("index from the scan");
        p.bytes -= bytes;
        Some(*b.downcast::<Vec<T>>().expect("type checked in the scan"))
    }

    /// Give a buffer back for reuse (small ones are simply freed).
    pub fn recycle<T: Pooled>(&self, v: Vec<T>) {
        let bytes = v.len() * std::mem::size_of::<T>();
        if !(MIN_POOLED_BYTES..=MAX_POOLED_BYTES).contains(&bytes) {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut p = self.lock();
            while p.bytes + bytes > MAX_POOLED_BYTES {
                match p.idle.pop_front() {
                    Some((b, buf)) => {
                        p.bytes -= b;
                        evicted.push(buf);
                    }
                    None => break,
                }
            }
            p.idle.push_back((bytes, Box::new(v)));
            p.bytes += bytes;
        }
        drop(evicted); // freed outside the lock
    }

    /// Bytes held by idle pooled buffers.
    pub fn pooled_bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// Bytes to which [`aligned`] aligns a work buffer: one cache line, so that no 512-bit load or
/// store of a panel row (a multiple of 64 bytes from the buffer's start) is split across two
/// lines. Intel's cores pay for every split 64-byte access; on the Zen 5 here a 16-byte
/// misalignment of the V panels cost 5–7% of `packed_gemm_speed`'s C = 512 kernels.
pub const ALIGN_BYTES: usize = 64;

/// How many elements of `T` to ask the pool for beyond `n` so that [`aligned`] finds `n`
/// aligned ones.
pub const fn align_pad<T>() -> usize {
    ALIGN_BYTES / std::mem::size_of::<T>()
}

/// The `n` elements of `buf` that start at its first [`ALIGN_BYTES`]-aligned address.
///
/// # Panics
/// If `buf` has fewer than `n + align_pad::<T>()` elements.
pub fn aligned<T: Pooled>(buf: &mut [T], n: usize) -> &mut [T] {
    let off = buf.as_ptr().align_offset(ALIGN_BYTES);
    assert!(
        off < align_pad::<T>() && buf.len() >= n + align_pad::<T>(),
        "aligned: buffer too short"
    );
    &mut buf[off..off + n]
}

fn fill_zero<T: Pooled>(v: &mut [T]) {
    use rayon::prelude::*;
    v.par_chunks_mut(1 << 18).for_each(|c| c.fill(T::default()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_zeroed_and_small_ones_are_not_kept() {
        let pool = BufferPool::new();
        let n = MIN_POOLED_BYTES / 4 + 7;
        let mut a = pool.zeroed::<f32>(n);
        a.iter_mut().for_each(|x| *x = 3.0);
        let ptr = a.as_ptr();
        pool.recycle(a);
        assert_eq!(pool.pooled_bytes(), n * 4);
        let b = pool.zeroed::<f32>(n);
        assert_eq!(b.len(), n);
        assert!(b.iter().all(|&x| x == 0.0));
        assert_eq!(ptr, b.as_ptr(), "the same allocation, zeroed again");
        let c = pool.zeroed::<f64>(n); // another type never gets an f32 buffer
        assert_eq!(c.len(), n);
        pool.recycle(b);
        pool.recycle(c);
        pool.recycle(vec![1.0f32; 10]);
        assert_eq!(
            pool.pooled_bytes(),
            n * 4 + n * 8,
            "small buffers are not kept"
        );
        assert!(pool.pooled_bytes() <= MAX_POOLED_BYTES);
    }

    #[test]
    fn aligned_slices_start_on_a_cache_line() {
        let mut v = vec![0f32; 100 + align_pad::<f32>()];
        for start in 0..4 {
            let s = aligned(&mut v[start..], 90);
            assert_eq!(s.len(), 90);
            assert_eq!(s.as_ptr() as usize % ALIGN_BYTES, 0);
        }
    }
}
