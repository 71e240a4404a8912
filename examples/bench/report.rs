//! Figures: statistics over repetitions, the machine, the markdown table and
//! the JSON document.

use serde::Serialize;

/// Median and spread of one measured quantity over repetitions.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub p95: f64,
    pub runs: usize,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Self {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len().max(1);
        let at = |q: f64| s.get(((q * (n - 1) as f64).round()) as usize).copied().unwrap_or(f64::NAN);
        let median = if s.is_empty() {
            f64::NAN
        } else if n % 2 == 1 {
            s[n / 2]
        } else {
            f64::midpoint(s[n / 2 - 1], s[n / 2])
        };
        Self { median, min: at(0.0), max: at(1.0), p95: at(0.95), runs: s.len() }
    }

    fn cell(&self, unit: &str) -> String {
        format!("{} {unit} ({}–{})", fmt(self.median), fmt(self.min), fmt(self.max))
    }
}

fn fmt(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// One row of the table: Lethe against the raw backend in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub backend: String,
    pub figure: String,
    pub unit: String,
    pub lethe: Stats,
    pub raw: Option<Stats>,
    /// Lethe / raw of the medians (for rates: raw / Lethe, so > 1 is always "Lethe costs more").
    pub ratio: Option<f64>,
    pub goal: String,
    pub note: String,
}

impl Row {
    pub fn new(backend: &str, figure: &str, unit: &str, lethe: &[f64], raw: Option<&[f64]>) -> Self {
        let lethe = Stats::of(lethe);
        let raw = raw.map(Stats::of);
        let higher_is_better = unit.ends_with("/s");
        let ratio = raw.as_ref().map(|r| if higher_is_better { r.median / lethe.median } else { lethe.median / r.median });
        Self {
            backend: backend.into(),
            figure: figure.into(),
            unit: unit.into(),
            lethe,
            raw,
            ratio,
            goal: String::new(),
            note: String::new(),
        }
    }

    pub fn goal(mut self, goal: &str) -> Self {
        self.goal = goal.into();
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// The machine the figures were taken on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub load_average_at_start: String,
    pub postgres: String,
}

impl Machine {
    pub fn probe(postgres: String) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".into(), |s| s.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            memory_gib: (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            load_average_at_start: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            postgres,
        }
    }
}

pub fn markdown(machine: &Machine, n: usize, date: &str, rows: &[Row], notes: &[String]) -> String {
    let mut out = format!(
        "Lethe benchmark, {date}: N = {n} vectors (dim 384), {} cores ({}), {} GiB RAM, load average at start {}; {}.\n\
         Median of the runs, (min–max) in brackets; ratio = Lethe / raw (for rates raw / Lethe), both measured in the same run.\n\n\
         | backend | figure | Lethe | raw backend | ratio | goal | note |\n|---|---|---|---|---|---|---|\n",
        machine.cores, machine.cpu, machine.memory_gib, machine.load_average_at_start, machine.postgres
    );
    for r in rows {
        let raw = r.raw.as_ref().map_or_else(|| "–".into(), |s| s.cell(&r.unit));
        let ratio = r.ratio.map_or_else(|| "–".into(), |x| format!("{x:.2}"));
        out.push_str(&format!(
            "| {} | {} | {} | {raw} | {ratio} | {} | {} |\n",
            r.backend,
            r.figure,
            r.lethe.cell(&r.unit),
            r.goal,
            r.note
        ));
    }
    for n in notes {
        out.push_str(&format!("\n- {n}"));
    }
    out.push('\n');
    out
}

/// Resets the process's peak resident set (Linux: `clear_refs` 5); later
/// [`peak_rss_mib`] reports the peak since.
pub fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("    cannot reset the peak RSS ({e}): the figure covers the whole run");
    }
}

/// The process's peak resident set (VmHWM) in MiB, where /proc says.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
