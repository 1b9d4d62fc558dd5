//! Peak memory of a hosted function process: finds this process's children running a given executable (Linux
//! `/proc/self/task/*/children`) and reads their high-water resident set (`VmHWM` in `/proc/<pid>/status`).

use std::path::Path;

/// Pids of this process's direct children whose executable is `exe`.
pub fn children_running(exe: &Path) -> Vec<u32> {
    let wanted = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return pids;
    };
    for task in tasks.flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let running = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            if running.as_deref() == Some(wanted.as_path()) && !pids.contains(&pid) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// CPU seconds (user + system) a process has used so far (`/proc/<pid>/stat`, fields 14 and 15, in clock ticks of
/// 1/100 s, Linux's `USER_HZ` on every platform it supports).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_seconds(&stat)
}

fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_field(&status, field)
}

fn parse_status_field(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kilobyte_fields() {
        let status =
            "Name:\tbootstrap\nVmPeak:\t  20000 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(parse_status_field(status, "VmHWM"), Some(9876 * 1024));
        assert_eq!(parse_status_field(status, "VmRSS"), Some(9000 * 1024));
        assert_eq!(parse_status_field(status, "VmSwap"), None);
    }

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        // A name with spaces and a parenthesis; utime 250 and stime 50 ticks.
        let stat = "4242 (boot strap (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5 1000 200";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
        assert_eq!(parse_cpu_seconds("garbage"), None);
    }

    #[test]
    fn finds_a_spawned_child_and_its_peak() {
        let exe = Path::new("/bin/sleep");
        let mut child = std::process::Command::new(exe).arg("5").spawn().unwrap();
        let pids = children_running(&std::fs::canonicalize(exe).unwrap());
        let found = pids.contains(&child.id());
        let hwm = status_bytes(child.id(), "VmHWM");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found, "{pids:?} lacks {}", child.id());
        assert!(hwm.is_some_and(|b| b > 0));
    }
}
