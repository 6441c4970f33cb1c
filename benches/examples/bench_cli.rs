//! `cli/src/bench.rs` compiled against this crate, so the CLI wrapper is built and run from
//! here too: `cargo run -p sbpf-benches --release --example bench_cli -- --quick`.

use clap::Parser;

#[path = "../../cli/src/bench.rs"]
mod bench;

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    args: bench::BenchArgs,
}

fn main() -> std::process::ExitCode {
    bench::run(Cli::parse().args)
}
