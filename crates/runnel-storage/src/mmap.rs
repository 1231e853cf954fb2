//! The only module of this crate with `unsafe`: a writable memory map over an index file.
//!
//! The file descriptor is closed once the file is mapped (a mapping stays valid without it), so
//! an index costs no descriptor: a broker with 10 000 partitions holds one descriptor per
//! segment (its `.log`), not three. Resizing and syncing reopen the file by path.
//!
//! Invariants: the file is never resized (truncated or grown) while mapped — `resize` drops the
//! map first and maps again afterwards; the partition directory is owned by this process, so no
//! other process rewrites a mapped file.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

/// A read-write mapped file of fixed length (until `resize`).
pub(crate) struct MappedFile {
    path: PathBuf,
    /// `None` when the file is empty: a zero-length mapping is not portable.
    map: Option<MmapMut>,
    len_bytes: usize,
}

impl MappedFile {
    /// Opens (creating if missing) `path`, sets its length to `len_bytes` and maps it.
    pub(crate) fn open(path: &Path, len_bytes: usize) -> io::Result<Self> {
        let map = open_sized(path, len_bytes)?;
        Ok(Self {
            path: path.to_path_buf(),
            map,
            len_bytes,
        })
    }

    pub(crate) fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or(&mut [])
    }

    /// Unmaps, changes the file length, maps again.
    pub(crate) fn resize(&mut self, len_bytes: usize) -> io::Result<()> {
        // Unmapping leaves dirty pages in the page cache; no msync is needed for them to reach
        // the file.
        drop(self.map.take());
        self.map = open_sized(&self.path, len_bytes)?;
        self.len_bytes = len_bytes;
        Ok(())
    }

    /// Writes dirty pages back and syncs the file (its length too).
    pub(crate) fn flush(&self) -> io::Result<()> {
        if let Some(map) = &self.map {
            map.flush()?;
        }
        File::open(&self.path)?.sync_data()
    }
}

/// Opens `path` (creating it), sets its length and maps it; the descriptor closes on return.
fn open_sized(path: &Path, len_bytes: usize) -> io::Result<Option<MmapMut>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    file.set_len(len_bytes as u64)?;
    map_file(&file, len_bytes)
}

fn map_file(file: &File, len_bytes: usize) -> io::Result<Option<MmapMut>> {
    if len_bytes == 0 {
        return Ok(None);
    }
    // SAFETY: memmap2 requires that the mapped file is not resized or modified by anyone else
    // while mapped. The file was just sized to `len_bytes` by us, lives in a partition directory
    // this process owns exclusively, and `MappedFile` only changes its length in `resize`, after
    // dropping this map. Closing the descriptor afterwards does not end the mapping (POSIX).
    let map = unsafe { MmapMut::map_mut(file)? };
    Ok(Some(map))
}

/// Total and available bytes of the file system holding `path` (DescribeLogDirs v4, KIP-827).
pub fn disk_space(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a valid NUL-terminated string and `stats` points to writable memory
    // of the right type; statvfs only writes into it, and we read it only when it succeeded.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised the whole struct.
    let stats = unsafe { stats.assume_init() };
    // statvfs fields are `c_ulong`/`fsblkcnt_t`, whose width differs between platforms.
    #[allow(clippy::unnecessary_cast)]
    let (fragment, blocks, available) = (stats.f_frsize as u64, stats.f_blocks as u64, stats.f_bavail as u64);
    Ok((blocks.saturating_mul(fragment), available.saturating_mul(fragment)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn disk_space_of_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (total, usable) = super::disk_space(dir.path()).unwrap();
        assert!(total > 0 && usable <= total, "total {total} usable {usable}");
        assert!(super::disk_space(&dir.path().join("missing")).is_err());
    }
}
