//! `sbpf-ring bench`: every benchmark case side by side in one process, a table of
//! throughput and latency with each case's ratio to its baseline, optionally JSON, and an
//! SVG plot. The cases live in the `sbpf-benches` crate; this is its command-line face.

use std::{path::PathBuf, process::ExitCode};

use sbpf_benches::report::{run_all, ExtraValidator, Options};
use sbpf_guard::{Engine, Guard, Stage};

/// Arguments of `sbpf-ring bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// About one second per case (all cases in under two minutes on two cores).
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Where to write the SVG plot.
    #[arg(long, value_name = "PATH", default_value = "bench.svg")]
    pub plot: PathBuf,
    /// The kernel module's rows, measured in QEMU by `sbpf-ring vmtest`
    /// (default: $SBPF_KMOD_RESULTS, else the harness's latest `.vmtest/kmod-bench.json`).
    #[arg(long, value_name = "PATH")]
    pub kmod_results: Option<PathBuf>,
    /// Run only the cases whose name contains SUBSTR (several: comma-separated, any of
    /// them).
    #[arg(long, value_name = "SUBSTR")]
    pub filter: Option<String>,
    /// Run every case N times, round-robin, sharing its time out; each case reports its
    /// median round (default: 3, or 1 with --quick).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=9))]
    pub rounds: Option<u32>,
}

/// Runs the benchmarks and reports; fails if a case produced failed completions or the
/// plot could not be written.
pub fn run(args: BenchArgs) -> ExitCode {
    let mut opts = Options::new(args.quick);
    opts.filter = args.filter;
    if let Some(rounds) = args.rounds {
        opts.rounds = rounds;
    }
    if let Some(path) = args.kmod_results {
        opts.kmod_results = Some(path);
    } else if opts.kmod_results.is_none() {
        let harness = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.vmtest/kmod-bench.json");
        opts.kmod_results = harness.exists().then_some(harness);
    }
    opts.progress = !args.json;
    // The built-in bounds guard (object and arena bounds, as the consumer checks them) on
    // every producer, under the JIT and under the interpreter.
    for (name, engine) in [
        ("ring+guard-jit/read64/b32", Engine::Jit),
        ("ring+guard-interp/read64/b32", Engine::Interpreter),
    ] {
        opts.validators.push(ExtraValidator {
            name: name.into(),
            make: Box::new(move || Box::new(Guard::new([Stage::bounds(engine)]))),
        });
    }
    let report = run_all(opts);
    if report.cases.is_empty() {
        eprintln!("no case matches the filter");
        return ExitCode::FAILURE;
    }
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    let mut ok = true;
    if let Err(e) = sbpf_benches::plot::write_svg(&report.cases, &args.plot) {
        eprintln!("could not write the plot {}: {e}", args.plot.display());
        ok = false;
    } else if !args.json {
        println!("\nplot: {}", args.plot.display());
    }
    if report.cases.iter().any(|c| c.note.contains("FAILED")) {
        eprintln!("some requests failed; see the notes");
        ok = false;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
