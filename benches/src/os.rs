//! Process placement (CPU pinning) and memory readings, from Linux.

use std::fmt;

/// Where the server and client processes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Placement {
    /// Both pinned to the same CPU (the default: steady figures on a small virtual machine).
    Same,
    /// Pinned to two different CPUs, one each.
    Split,
    /// Not pinned: the operating system places them.
    None,
}

/// The CPUs chosen for the client and the server.
#[derive(Clone, Copy, Debug)]
pub struct Cpus {
    pub client: Option<usize>,
    pub server: Option<usize>,
}

impl Cpus {
    /// Picks CPUs for `placement` among those this process may run on.
    pub fn pick(placement: Placement) -> Result<Self, String> {
        let allowed = allowed_cpus()?;
        let first = *allowed.first().ok_or("no CPU allowed")?;
        Ok(match placement {
            Placement::Same => Cpus { client: Some(first), server: Some(first) },
            Placement::Split => {
                let second = *allowed.get(1).ok_or("placement `split` needs two CPUs")?;
                Cpus { client: Some(first), server: Some(second) }
            }
            Placement::None => Cpus { client: None, server: None },
        })
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.client, self.server) {
            (Some(c), Some(s)) if c == s => write!(f, "same CPU: client and server pinned to CPU {c}"),
            (Some(c), Some(s)) => write!(f, "split: client pinned to CPU {c}, server to CPU {s}"),
            _ => write!(f, "unpinned: placed by the operating system"),
        }
    }
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Result<Vec<usize>, String> {
    // SAFETY: `set` is a plain bit set the call fills in; its size is passed.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(format!("sched_getaffinity: {}", std::io::Error::last_os_error()));
        }
        Ok((0..libc::CPU_SETSIZE as usize).filter(|&cpu| libc::CPU_ISSET(cpu, &set)).collect())
    }
}

/// Pins this process (every thread it starts from now on) to `cpu`.
pub fn pin_to(cpu: usize) -> Result<(), String> {
    // SAFETY: `set` is a plain bit set built here; its size is passed.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!("cannot pin to CPU {cpu}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// This process's resident set size and its peak, in KiB (`VmRSS`, `VmHWM`). Reads into a buffer
/// on the stack: it allocates nothing, so it does not disturb allocation counts.
pub fn memory_kib() -> (u64, u64) {
    use std::io::Read;
    let mut buf = [0u8; 8192];
    let mut len = 0;
    if let Ok(mut file) = std::fs::File::open("/proc/self/status") {
        while let Ok(n @ 1..) = file.read(&mut buf[len..]) {
            len += n;
        }
    }
    let status = std::str::from_utf8(&buf[..len]).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A line describing the machine: CPU model, CPUs, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|v| v.split_once(':')).map(|(_, m)| m.trim()))
        .unwrap_or("unknown CPU");
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(String::new, |kib| format!(", {} GiB", (kib + (1 << 19)) >> 20));
    format!("{model}, {cpus} CPUs{memory}, Linux {}", kernel.trim())
}
