//! Random values of generated messages, valid for a given version, for property tests and
//! fuzzing seeds. Only compiled for tests or with the `sample` feature.

use crate::codec::Uuid;
use bytes::Bytes;

/// A value that can be drawn at random for one API version.
pub trait Sample {
    fn sample(g: &mut SampleGen, version: i16) -> Self;
}

/// A small deterministic generator (xorshift64*), seeded by the test so failures replay.
pub struct SampleGen {
    state: u64,
}

impl SampleGen {
    pub fn new(seed: u64) -> Self {
        SampleGen {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// Array lengths stay small so nested messages stay small.
    pub fn array_len(&mut self) -> usize {
        (self.next_u64() % 3) as usize
    }

    pub fn string(&mut self) -> String {
        let n = (self.next_u64() % 12) as usize;
        (0..n).map(|_| (b'a' + (self.next_u64() % 26) as u8) as char).collect()
    }

    pub fn bytes(&mut self) -> Bytes {
        let n = (self.next_u64() % 24) as usize;
        (0..n).map(|_| self.next_u64() as u8).collect::<Vec<u8>>().into()
    }

    pub fn uuid(&mut self) -> Uuid {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        id[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        Uuid(id)
    }
}
