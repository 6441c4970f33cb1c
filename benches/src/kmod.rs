//! The kernel-module rows, measured inside QEMU by the kmod harness and read here from its
//! results file, so they appear in the same table. They are marked emulated: absolute
//! numbers under QEMU mean little; the ratio of ring to one ioctl per request, same module,
//! same boot, is the figure of merit.
//!
//! The file is JSON: `{ "cases": [ { "name": "kmod/ring/read64/b32", "ops_per_sec": ...,
//! "p50_ns": ..., "p99_ns": ..., "batch": 32 }, { "name": "kmod/ioctl/read64", ... } ] }`
//! (`batch` and `note` optional).

use std::{io, path::Path};

use serde::Deserialize;

use crate::CaseResult;

/// Environment variable naming the results file when no path is given.
pub const RESULTS_ENV: &str = "SBPF_KMOD_RESULTS";

/// Names of the kmod rows.
pub const CASES: [&str; 2] = ["kmod/ring/read64/b32", "kmod/ioctl/read64"];

#[derive(Deserialize)]
struct File {
    cases: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    name: String,
    ops_per_sec: f64,
    #[serde(default)]
    p50_ns: u64,
    #[serde(default)]
    p99_ns: u64,
    #[serde(default)]
    batch: Option<u32>,
    #[serde(default)]
    note: Option<String>,
}

/// The kmod rows from `path`, each marked emulated.
pub fn load(path: &Path) -> io::Result<Vec<CaseResult>> {
    let text = std::fs::read_to_string(path)?;
    let file: File = serde_json::from_str(&text).map_err(io::Error::other)?;
    Ok(file
        .cases
        .into_iter()
        .map(|r| CaseResult {
            batch: r.batch.unwrap_or(1),
            note: match r.note {
                Some(n) => format!("emulated (QEMU), from {}; {n}", path.display()),
                None => format!("emulated (QEMU), from {}", path.display()),
            },
            name: r.name,
            ops_per_sec: r.ops_per_sec,
            p50_ns: r.p50_ns,
            p99_ns: r.p99_ns,
            samples: Vec::new(),
            round_ops_per_sec: Vec::new(),
        })
        .collect())
}

/// The kmod rows: from `path` if given and readable, else placeholders saying why.
pub fn rows(path: Option<&Path>) -> Vec<CaseResult> {
    let missing = |why: String| {
        CASES
            .iter()
            .map(|n| CaseResult::unavailable(*n, 1, format!("emulated (QEMU) row: {why}")))
            .collect()
    };
    match path {
        None => missing(format!("no results file ({RESULTS_ENV} unset)")),
        Some(p) => load(p).unwrap_or_else(|e| missing(format!("{}: {e}", p.display()))),
    }
}
