//! A process-wide pool of the kernels' large work buffers (Winograd's transformed tiles, im2col
//! columns), so that a training loop whose shapes repeat (one style-transfer iteration after
//! another) reuses them instead of asking the OS for fresh pages and zeroing them every call.
//! Buffers below [`MIN_POOLED_BYTES`] go to the ordinary allocator. (Tensor storage is not
//! pooled: `nst-cli` tells glibc to keep freed memory instead, which reuses it at any size.)
//!
//! [`zeroed`] hands out a buffer of exactly `n` zeros, [`scratch`] one of at least `n`
//! elements with unspecified contents; [`recycle`] takes either back. The pool keeps at most
//! [`MAX_POOLED_BYTES`]; beyond that the oldest buffers are freed.

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

static POOL: Mutex<Pool> = Mutex::new(Pool {
    idle: VecDeque::new(),
    bytes: 0,
});

fn lock() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer of `n` zeros: a pooled one of exactly that length when there is one, else new.
pub fn zeroed<T: Pooled>(n: usize) -> Vec<T> {
    match take::<T>(n, true) {
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
pub fn scratch<T: Pooled>(n: usize) -> Vec<T> {
    take::<T>(n, false).unwrap_or_else(|| vec![T::default(); n])
}

/// The smallest idle `Vec<T>` of length `n` (`exact`) or at least `n`, out of the pool.
fn take<T: Pooled>(n: usize, exact: bool) -> Option<Vec<T>> {
    if n * std::mem::size_of::<T>() < MIN_POOLED_BYTES {
        return None;
    }
    let mut p = lock();
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
pub fn recycle<T: Pooled>(v: Vec<T>) {
    let bytes = v.len() * std::mem::size_of::<T>();
    if !(MIN_POOLED_BYTES..=MAX_POOLED_BYTES).contains(&bytes) {
        return;
    }
    let mut evicted = Vec::new();
    {
        let mut p = lock();
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
pub fn pooled_bytes() -> usize {
    lock().bytes
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
        let n = MIN_POOLED_BYTES / 4 + 7;
        let mut a = zeroed::<f32>(n);
        a.iter_mut().for_each(|x| *x = 3.0);
        let ptr = a.as_ptr();
        recycle(a);
        let b = zeroed::<f32>(n);
        assert_eq!(b.len(), n);
        assert!(b.iter().all(|&x| x == 0.0));
        // Usually the same allocation (another test thread may have taken it meanwhile).
        let _ = ptr == b.as_ptr();
        let c = zeroed::<f64>(n); // another type never gets an f32 buffer
        assert_eq!(c.len(), n);
        recycle(b);
        recycle(c);
        recycle(vec![1.0f32; 10]);
        assert!(pooled_bytes() <= MAX_POOLED_BYTES);
    }
}
