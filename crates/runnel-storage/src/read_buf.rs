//! Reused buffers for segment reads.
//!
//! A fetch reads up to a partition's `max.partition.fetch.bytes` (1 MiB by default) per
//! partition. A fresh allocation that large is an `mmap` of its own in the system allocator,
//! and its `munmap` when the response has gone; every read then page-faults its whole buffer
//! in again (zeroed by the kernel) before `pread` can fill it. With four partitions of 1 KiB
//! records, those faults were 13 % of the broker's time and fetches waited on them.
//!
//! Owns: a small process-wide pool of spare buffers. A read takes one (or allocates), and the
//! `Bytes` it returns gives the buffer back when its last slice is dropped.
//! Invariant: the pool never holds more than `POOL_BUFFERS` buffers, none over
//! `POOL_MAX_CAPACITY` bytes, so it retains at most 32 MiB after the largest burst of reads.

use std::sync::Mutex;

use bytes::Bytes;

/// Spare buffers kept for reuse.
const POOL_BUFFERS: usize = 16;
/// Larger buffers are freed rather than kept (a fetch reads about 1 MiB per partition).
const POOL_MAX_CAPACITY: usize = 2 * 1024 * 1024;

static POOL: Pool = Pool::new();

/// A buffer with room for `len` bytes: a spare one, whose length is what an earlier read
/// wrote into it (initialised bytes the next read may overwrite without zeroing), or a new,
/// empty one.
pub(crate) fn take(len: usize) -> Vec<u8> {
    POOL.take(len)
}

/// `buf` as `Bytes` that return it to the pool once every slice of it is gone.
pub(crate) fn freeze(buf: Vec<u8>) -> Bytes {
    POOL.freeze(buf)
}

struct Pool {
    spare: Mutex<Vec<Vec<u8>>>,
}

impl Pool {
    const fn new() -> Pool {
        Pool {
            spare: Mutex::new(Vec::new()),
        }
    }

    fn take(&self, len: usize) -> Vec<u8> {
        let spare = self.spare.lock().ok().and_then(|mut spare| {
            // The smallest that fits, so small reads do not pin the large buffers.
            let at = spare
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= len)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i)?;
            Some(spare.swap_remove(at))
        });
        spare.unwrap_or_else(|| Vec::with_capacity(len))
    }

    fn freeze(&'static self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled { buf, pool: self })
    }

    fn give_back(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > POOL_MAX_CAPACITY {
            return;
        }
        if let Ok(mut spare) = self.spare.lock() {
            if spare.len() < POOL_BUFFERS {
                spare.push(buf);
            }
        }
    }
}

struct Pooled {
    buf: Vec<u8>,
    pool: &'static Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> &'static Pool {
        Box::leak(Box::new(Pool::new()))
    }

    #[test]
    fn a_buffer_comes_back_once_its_last_slice_is_dropped() {
        let pool = pool();
        let mut buf = pool.take(1000);
        buf.extend_from_slice(&[7u8; 1000]);
        let ptr = buf.as_ptr();
        let whole = pool.freeze(buf);
        let part = whole.slice(10..20);
        drop(whole);
        assert_eq!(&part[..], &[7u8; 10], "a slice keeps the bytes alive");
        assert!(pool.spare.lock().unwrap().is_empty(), "not back while a slice lives");
        drop(part);
        let again = pool.take(500);
        assert_eq!(again.as_ptr(), ptr, "the same allocation is reused");
        assert_eq!(again.len(), 1000, "with what it holds, initialised");
        assert!(pool.take(500).is_empty(), "a new buffer is empty");
    }

    #[test]
    fn a_read_takes_the_smallest_buffer_that_fits() {
        let pool = pool();
        let filled = |n: usize| {
            let mut b = pool.take(n);
            b.resize(n, 1);
            pool.freeze(b)
        };
        let (small, large) = (filled(100), filled(10_000));
        let (small_ptr, large_ptr) = (small.as_ptr(), large.as_ptr());
        drop((small, large));
        let (for_small, for_large) = (pool.take(50), pool.take(5_000));
        assert_eq!(for_small.as_ptr(), small_ptr);
        assert_eq!(for_large.as_ptr(), large_ptr);
        assert!(pool.take(20_000).capacity() >= 20_000, "nothing fits: a new one");
    }

    #[test]
    fn the_pool_is_bounded_in_count_and_size() {
        let pool = pool();
        drop(pool.freeze(vec![0; POOL_MAX_CAPACITY + 1]));
        assert!(pool.spare.lock().unwrap().is_empty(), "oversized buffers are freed");
        let many: Vec<Bytes> = (0..POOL_BUFFERS + 5).map(|_| pool.freeze(vec![0; 64])).collect();
        drop(many);
        assert_eq!(pool.spare.lock().unwrap().len(), POOL_BUFFERS);
    }
}
