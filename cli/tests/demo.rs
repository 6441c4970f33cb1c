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
    demo::run_to(Cmd::parse_from(argv).args, &mut Vec::new())
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
    for (guard, named, counted) in [
        ("jit", "guard[bounds] (jit)", true),
        ("interpreter", "guard[bounds] (interpreter)", true),
        ("native", "native bounds check", false),
    ] {
        let argv = [
            "sbpf-ring",
            "--producers",
            "2",
            "--iterations",
            "2000",
            "--sq-entries",
            "8",
            "--guard",
            guard,
            "--json",
        ];
        let mut out = Vec::new();
        assert_eq!(
            demo::run_to(Cmd::parse_from(argv).args, &mut out),
            Ok(true),
            "--guard {guard}"
        );
        let summary: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(summary["guard"], named);
        // Two producers, 2000 iterations of five guarded entries, two bad ones each.
        if counted {
            assert!(summary["guard_accepted"].as_u64().unwrap() >= 20_000);
            assert_eq!(summary["guard_rejected"], 4);
        } else {
            assert!(summary["guard_accepted"].is_null());
        }
        assert_eq!(summary["rejected_by_validator"], 4);
    }
}

#[test]
fn demo_refuses_a_bad_ring_size() {
    let err = demo(&["--sq-entries", "3", "--json"]).unwrap_err();
    assert!(err.contains("power of two"), "{err}");
}

/// `demo --bpf`: BPF maps driven through the ring, checked by a BPF program. Needs bpf()
/// (root, as on the CI machine and in the guest); without it, the demo's error says so.
#[test]
fn demo_bpf_maps_verified_by_a_bpf_program() {
    assert_eq!(
        demo(&[
            "--bpf",
            "--producers",
            "3",
            "--iterations",
            "3000",
            "--json"
        ]),
        Ok(true)
    );
}
