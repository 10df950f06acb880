//! CPU time of a process from /proc, shared by the load generators.

/// Returns the CPU time (user + system) of process `pid`, or of this
/// process for `None`, in microseconds.
pub fn cpu_micros(pid: Option<u32>, clock_ticks: u64) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;

    // The command name (field 2) may contain spaces, so fields are counted
    // from the closing parenthesis. utime (field 14) and stime (field 15)
    // are the 12th and 13th fields after it.
    let rest = text.get(text.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / clock_ticks.max(1))
}
