//! `sbpf-ring`: the project's command. `demo` is the main job; `bench`, `guard`, `vmtest`
//! and `stat` serve the benchmarks, the guards, the kernel tests and the module's state.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use sbpf_ring_cli::{bench, demo, guard};

#[derive(Parser, Debug)]
#[command(
    name = "sbpf-ring",
    version,
    about = "Shared-memory request rings between user space and the kernel"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a mixed, verified workload from several producer threads (the kernel module if
    /// loaded, the in-process backend otherwise).
    Demo(demo::DemoArgs),
    /// Run every benchmark case side by side and print the comparison.
    Bench(bench::BenchArgs),
    /// Verify or run an eBPF guard.
    #[command(subcommand)]
    Guard(guard::GuardCommand),
    /// Build the kernel module and test it inside Debian's kernels under QEMU.
    Vmtest {
        /// Which kernel: 6.1, 6.12 or all.
        #[arg(long, default_value = "all")]
        kernel: String,
        /// Keep the work directory.
        #[arg(long)]
        keep: bool,
    },
    /// Show whether the kernel module is loaded and its rings' counters.
    Stat,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => match demo::run(args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("sbpf-ring demo: {e}");
                ExitCode::from(2)
            }
        },
        Command::Bench(args) => bench::run(args),
        Command::Guard(cmd) => guard::run(cmd),
        Command::Vmtest { kernel, keep } => {
            let script = repo_root().join("kmod/vmtest/run.sh");
            let mut cmd = std::process::Command::new("bash");
            cmd.arg(&script).arg("--kernel").arg(&kernel);
            if keep {
                cmd.arg("--keep");
            }
            match cmd.status() {
                Ok(s) if s.success() => ExitCode::SUCCESS,
                Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(1, 255) as u8),
                Err(e) => {
                    eprintln!("sbpf-ring vmtest: cannot run {}: {e}", script.display());
                    ExitCode::from(2)
                }
            }
        }
        Command::Stat => stat(),
    }
}

fn stat() -> ExitCode {
    if !sbpf_ring::kernel::available() {
        println!(
            "kernel module: not loaded ({} does not exist); rings use the local backend",
            sbpf_ring::kernel::DEVICE
        );
        return ExitCode::SUCCESS;
    }
    println!("kernel module: loaded ({})", sbpf_ring::kernel::DEVICE);
    for path in [
        "/sys/kernel/debug/sbpf_ring/rings",
        "/sys/module/sbpf_ring/parameters/pinned_bytes",
    ] {
        match std::fs::read_to_string(path) {
            Ok(text) => println!("{path}:\n{}", text.trim_end()),
            Err(e) => println!("{path}: {e}"),
        }
    }
    ExitCode::SUCCESS
}
