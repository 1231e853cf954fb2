//! Resource use of a process (the broker, or `loadgen` itself) read from `/proc/<pid>`.
//!
//! Owns: a sampler thread that reads the resident set size every `interval` and the CPU time
//! (user + system, all threads) at the start and end of a run. It never signals or otherwise
//! touches the observed process. Linux only; on other systems or for a process that is gone the
//! figures are simply absent (`None`), never an error that stops a run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `AT_CLKTCK` in the ELF auxiliary vector: the unit of `utime`/`stime` in `/proc/<pid>/stat`.
const AT_CLKTCK: u64 = 17;
/// What Linux uses on every architecture we run on, if the auxiliary vector cannot be read.
const DEFAULT_CLOCK_TICKS_PER_S: u64 = 100;

/// What one run cost the observed process.
#[derive(Clone, Copy, Debug)]
pub struct ProcStats {
    pub rss_peak_mib: f64,
    pub rss_avg_mib: f64,
    pub cpu_s: f64,
    /// CPU seconds per wall-clock second, in percent (up to 100 × cores).
    pub cpu_pct: f64,
}

impl ProcStats {
    /// The figures as report metrics, each name prefixed by `who` (`broker`, `loadgen`).
    pub fn metrics(&self, who: &str) -> Vec<(String, f64)> {
        vec![
            (format!("{who}_rss_peak_mib"), self.rss_peak_mib),
            (format!("{who}_rss_avg_mib"), self.rss_avg_mib),
            (format!("{who}_cpu_s"), self.cpu_s),
            (format!("{who}_cpu_pct"), self.cpu_pct),
        ]
    }
}

/// Samples one process until [`Sampler::finish`].
pub struct Sampler {
    pid: u32,
    stop: Arc<AtomicBool>,
    rss: JoinHandle<Vec<u64>>,
    cpu_ticks_start: Option<u64>,
    started: Instant,
}

impl Sampler {
    /// Starts sampling `pid` every `interval` (RSS) and takes the starting CPU time.
    pub fn start(pid: u32, interval: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let rss = std::thread::spawn(move || {
            let mut samples = Vec::new();
            loop {
                if let Some(kib) = rss_kib(pid) {
                    samples.push(kib);
                }
                if flag.load(Ordering::Relaxed) {
                    return samples;
                }
                std::thread::sleep(interval);
            }
        });
        Sampler {
            pid,
            stop,
            rss,
            cpu_ticks_start: cpu_ticks(pid),
            started: Instant::now(),
        }
    }

    /// Stops sampling; `None` if the process could not be read.
    pub fn finish(self) -> Option<ProcStats> {
        let wall_s = self.started.elapsed().as_secs_f64();
        let cpu_ticks_end = cpu_ticks(self.pid);
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.rss.join().unwrap_or_default();
        let (start, end) = (self.cpu_ticks_start?, cpu_ticks_end?);
        let peak = samples.iter().copied().max()?;
        let avg = samples.iter().sum::<u64>() as f64 / samples.len() as f64;
        let cpu_s = end.saturating_sub(start) as f64 / clock_ticks_per_s() as f64;
        Some(ProcStats {
            rss_peak_mib: peak as f64 / 1024.0,
            rss_avg_mib: avg / 1024.0,
            cpu_s,
            cpu_pct: if wall_s > 0.0 { cpu_s / wall_s * 100.0 } else { 0.0 },
        })
    }
}

/// What the whole machine did during a run: CPU time stolen by the hypervisor and, on a VM
/// with free page reporting, memory handed back to the host (which it must fault in again,
/// zeroed, when the guest reuses it: new page-cache pages then cost several times more).
pub struct HostSampler {
    cpu_start: Option<CpuTicks>,
    reported_kib_start: Option<u64>,
}

/// The `cpu` line of `/proc/stat`: all cores, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CpuTicks {
    total: u64,
    idle: u64,
    steal: u64,
}

/// Where a guest kernel counts the memory its free page reporting gave back to the host.
const REPORTED_KIB: &str = "/sys/module/page_reporting/parameters/reported_kib";

impl HostSampler {
    pub fn start() -> HostSampler {
        HostSampler {
            cpu_start: host_cpu_ticks(),
            reported_kib_start: read_u64(REPORTED_KIB),
        }
    }

    /// `host_busy_pct` and `host_steal_pct` (of all cores' time, 100 = every core), and
    /// `host_reported_mib` where the kernel reports free pages; absent figures are left out.
    pub fn finish(self) -> Vec<(String, f64)> {
        let mut m = Vec::new();
        if let (Some(a), Some(b)) = (self.cpu_start, host_cpu_ticks()) {
            let total = b.total.saturating_sub(a.total).max(1) as f64;
            let idle = b.idle.saturating_sub(a.idle) as f64;
            let steal = b.steal.saturating_sub(a.steal) as f64;
            m.push(("host_busy_pct".into(), (total - idle) / total * 100.0));
            m.push(("host_steal_pct".into(), steal / total * 100.0));
        }
        if let (Some(a), Some(b)) = (self.reported_kib_start, read_u64(REPORTED_KIB)) {
            m.push(("host_reported_mib".into(), b.saturating_sub(a) as f64 / 1024.0));
        }
        m
    }
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn host_cpu_ticks() -> Option<CpuTicks> {
    parse_cpu_line(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`; guest time is
/// already inside user, so it is not added again.
fn parse_cpu_line(stat: &str) -> Option<CpuTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let field = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(CpuTicks {
        total: (0..8).map(field).sum(),
        idle: field(3) + field(4),
        steal: field(7),
    })
}

/// Resident set size in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss_kib(&status)
}

fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// User + system CPU time of all threads, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu_ticks(&stat)
}

fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces, so count fields
    // after the last ')'; field 3 (state) is then the first.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `sysconf(_SC_CLK_TCK)` without libc: the kernel passes it in the auxiliary vector.
pub fn clock_ticks_per_s() -> u64 {
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return DEFAULT_CLOCK_TICKS_PER_S;
    };
    parse_auxv_clock_ticks(&auxv).unwrap_or(DEFAULT_CLOCK_TICKS_PER_S)
}

fn parse_auxv_clock_ticks(auxv: &[u8]) -> Option<u64> {
    // Pairs of native-endian u64 (key, value) on 64-bit Linux.
    auxv.chunks_exact(16).find_map(|pair| {
        let key = u64::from_ne_bytes(pair[..8].try_into().ok()?);
        let value = u64::from_ne_bytes(pair[8..].try_into().ok()?);
        (key == AT_CLKTCK && value > 0).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_name_with_spaces_and_parens() {
        let stat = "42 (tokio (rt) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        assert_eq!(parse_stat_cpu_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn cpu_line_counts_idle_with_iowait_and_steal_apart() {
        let stat = "cpu  100 0 50 800 20 0 5 25 0 0\ncpu0 1 2 3\n";
        let t = parse_cpu_line(stat).expect("parsed");
        assert_eq!(
            t,
            CpuTicks {
                total: 1000,
                idle: 820,
                steal: 25
            }
        );
        assert_eq!(parse_cpu_line("cpu0 1 2 3\n"), None);
    }

    #[test]
    fn vm_rss_line() {
        let status = "Name:\trunnel\nVmPeak:\t  99 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(parse_vm_rss_kib(status), Some(12345));
        assert_eq!(parse_vm_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn auxv_clock_ticks() {
        let mut auxv = Vec::new();
        for (k, v) in [(6u64, 4096u64), (AT_CLKTCK, 250), (0, 0)] {
            auxv.extend_from_slice(&k.to_ne_bytes());
            auxv.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(parse_auxv_clock_ticks(&auxv), Some(250));
        assert_eq!(parse_auxv_clock_ticks(&auxv[..16]), None);
    }

    #[test]
    fn sampling_this_process_sees_memory_and_cpu() {
        let sampler = Sampler::start(std::process::id(), Duration::from_millis(5));
        // Burn some CPU so the tick counter moves at 100 Hz.
        let begin = Instant::now();
        let mut x = 0u64;
        while begin.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let stats = sampler.finish().expect("own /proc readable");
        assert!(stats.rss_peak_mib > 0.0 && stats.rss_avg_mib <= stats.rss_peak_mib);
        assert!(stats.cpu_s > 0.0, "{stats:?}");
    }
}
