//! What an idle sweep costs on Lambda (issue 14), for the Rust function and each Python peer, sized by one rule:
//! Lambda gives CPU in proportion to memory (1,769 MB = one vCPU), so a function needs memory = max(peak RSS + a
//! margin, CPU seconds ÷ wall seconds × 1,769 MB), at least Lambda's 128 MB and in its 1 MB steps. Billed GB-seconds
//! per sweep = wall × memory; dollars per month at a 15-minute schedule with the public x86 price.

use std::fmt::Write as _;

use serde::Serialize;

/// Lambda's price per GB-second, x86, US East (N. Virginia), first 6 billion GB-seconds a month
/// (<https://aws.amazon.com/lambda/pricing/>, read 2026-12).
pub const USD_PER_GB_S: f64 = 0.000_016_666_7;
/// The memory at which a function has one full vCPU (Lambda's documentation: "at 1,769 MB, a function has the
/// equivalent of one vCPU").
pub const MB_PER_VCPU: f64 = 1_769.0;
/// Lambda's smallest memory setting.
pub const MIN_MB: f64 = 128.0;
/// Sweeps a month at a 15-minute schedule (365 / 12 days × 96).
pub const SWEEPS_PER_MONTH: f64 = 365.0 / 12.0 * 96.0;

/// One implementation, sized.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Sizing {
    pub implementation: String,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub peak_rss_mb: f64,
    /// The memory the rule asks for: max(RSS + margin, CPU share × 1,769 MB), at least 128 MB, whole MB.
    pub memory_mb: f64,
    /// Which side of the rule set it: `memory` or `cpu`.
    pub sized_by: String,
    pub gb_s_per_sweep: f64,
    pub usd_per_month: f64,
}

/// The headroom above the measured peak: a quarter, and at least 16 MB (allocator growth, a larger report).
fn with_margin(rss_mb: f64) -> f64 {
    rss_mb + (rss_mb * 0.25).max(16.0)
}

pub fn size(implementation: &str, wall_s: f64, cpu_s: f64, peak_rss_bytes: u64) -> Sizing {
    let rss_mb = peak_rss_bytes as f64 / (1024.0 * 1024.0);
    let by_memory = with_margin(rss_mb);
    let by_cpu = if wall_s > 0.0 {
        cpu_s / wall_s * MB_PER_VCPU
    } else {
        0.0
    };
    let memory_mb = by_memory.max(by_cpu).max(MIN_MB).ceil();
    let gb_s = wall_s * memory_mb / 1024.0;
    Sizing {
        implementation: implementation.to_string(),
        wall_s,
        cpu_s,
        peak_rss_mb: rss_mb,
        memory_mb,
        sized_by: if by_cpu > by_memory { "cpu" } else { "memory" }.to_string(),
        gb_s_per_sweep: gb_s,
        usd_per_month: gb_s * USD_PER_GB_S * SWEEPS_PER_MONTH,
    }
}

/// The sweep's cost for each implementation, and the figures issue 14 asks for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CostFigures {
    pub sizings: Vec<Sizing>,
    pub rust_gb_s_per_sweep: f64,
    /// The concurrent Python peer's.
    pub python_gb_s_per_sweep: f64,
    /// Python (concurrent) GB-s ÷ Rust GB-s.
    pub ratio: f64,
}

impl CostFigures {
    pub fn new(rust: Sizing, python_concurrent: Sizing, others: Vec<Sizing>) -> Self {
        let ratio = if rust.gb_s_per_sweep > 0.0 {
            python_concurrent.gb_s_per_sweep / rust.gb_s_per_sweep
        } else {
            0.0
        };
        let mut sizings = vec![rust.clone(), python_concurrent.clone()];
        sizings.extend(others);
        Self {
            rust_gb_s_per_sweep: rust.gb_s_per_sweep,
            python_gb_s_per_sweep: python_concurrent.gb_s_per_sweep,
            ratio,
            sizings,
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## What a sweep costs on Lambda\n");
        let _ = writeln!(
            md,
            "Memory = max(peak RSS + max(25 %, 16 MB), CPU s ÷ wall s × {MB_PER_VCPU:.0} MB), at least {MIN_MB:.0} MB; GB-s = wall × memory; ${USD_PER_GB_S} per GB-s (x86, us-east-1, https://aws.amazon.com/lambda/pricing/); {SWEEPS_PER_MONTH:.0} sweeps a month at a 15-minute schedule. Medians of the steady-state runs (the sequential peer: its one kind of sweep). Python's CPU and RSS are the whole process (interpreter, imports, sweep).\n"
        );
        let _ = writeln!(
            md,
            "| implementation | wall | CPU | peak RSS | memory (sized by) | GB-s per sweep | $ per month |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        for s in &self.sizings {
            let _ = writeln!(
                md,
                "| {} | {:.2} s | {:.2} s | {:.1} MB | {:.0} MB ({}) | {:.3} | {:.2} |",
                s.implementation,
                s.wall_s,
                s.cpu_s,
                s.peak_rss_mb,
                s.memory_mb,
                s.sized_by,
                s.gb_s_per_sweep,
                s.usd_per_month
            );
        }
        let _ = writeln!(
            md,
            "\nConcurrent Python ÷ Rust, billed GB-s per sweep: **{:.1}×**.\n",
            self.ratio
        );
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_takes_the_larger_need_and_lambdas_floor() {
        // 10 MB, idle CPU: the 128 MB floor.
        let s = size("a", 10.0, 0.1, 10 * 1024 * 1024);
        assert_eq!((s.memory_mb, s.sized_by.as_str()), (128.0, "memory"));
        // Half a vCPU for the whole sweep: 884.5 MB → 885.
        let s = size("b", 10.0, 5.0, 60 * 1024 * 1024);
        assert_eq!((s.memory_mb, s.sized_by.as_str()), (885.0, "cpu"));
        assert!((s.gb_s_per_sweep - 10.0 * 885.0 / 1024.0).abs() < 1e-9);
        // 200 MB resident: + 25 %.
        let s = size("c", 1.0, 0.0, 200 * 1024 * 1024);
        assert_eq!(s.memory_mb, 250.0);
        let month = s.gb_s_per_sweep * USD_PER_GB_S * SWEEPS_PER_MONTH;
        assert!((s.usd_per_month - month).abs() < 1e-12);
    }
}
