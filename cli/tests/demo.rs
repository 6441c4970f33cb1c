//! The main job end to end: the demo's workload on whichever backend the environment
//! selects (the kernel module inside the QEMU harness), every result verified.

use clap::Parser;
use sbpf_ring_cli::demo::{self, DemoArgs};

#[derive(Parser)]
struct Cmd {
    #[command(flatten)]
    args: DemoArgs,
}

fn demo(extra: &[&str]) -> Result<bool, String> {
    let argv = ["sbpf-ring"].iter().chain(extra).copied();
    demo::run(Cmd::parse_from(argv).args)
}

#[test]
fn demo_verifies_every_result() {
    assert_eq!(
        demo(&["--producers", "3", "--iterations", "3000", "--json"]),
        Ok(true)
    );
}

#[test]
fn demo_on_a_tiny_ring() {
    assert_eq!(
        demo(&[
            "--producers",
            "2",
            "--iterations",
            "1000",
            "--sq-entries",
            "2",
            "--json"
        ]),
        Ok(true)
    );
}

#[test]
fn demo_with_each_producer_check() {
    for guard in ["jit", "interpreter", "native"] {
        assert_eq!(
            demo(&[
                "--producers",
                "2",
                "--iterations",
                "2000",
                "--sq-entries",
                "8",
                "--guard",
                guard,
                "--json"
            ]),
            Ok(true),
            "--guard {guard}"
        );
    }
}

#[test]
fn demo_refuses_a_bad_ring_size() {
    let err = demo(&["--sq-entries", "3", "--json"]).unwrap_err();
    assert!(err.contains("power of two"), "{err}");
}
