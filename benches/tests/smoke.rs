//! Every case family runs under a tiny budget and produces numbers (io_uring may be refused
//! in a sandbox, and then says so), and the report pairs cases with their baselines.

use sbpf_benches::{
    report::{ratios, run_all, Options},
    Budget,
};

#[test]
fn every_family_measures_and_pairs() {
    let mut opts = Options::new(true);
    opts.budget = Budget::SMOKE;
    opts.filter = Some("b8".into());
    opts.kmod_results = None;
    let mut report = run_all(opts);
    for name in [
        "ring/nop/b8",
        "ring/read64/b8",
        "ring/write64/b8",
        "ring/fetch_add/b8",
    ] {
        let c = report.cases.iter().find(|c| c.name == name).expect(name);
        assert!(
            c.measured() && c.p50_ns > 0 && c.p99_ns >= c.p50_ns,
            "{c:?}"
        );
        assert!(!c.note.contains("FAILED"), "{c:?}");
    }
    let uring = report
        .cases
        .iter()
        .find(|c| c.name == "io_uring/nop/b8")
        .expect("io_uring");
    assert!(uring.measured() || uring.note.starts_with("not measured"));

    let mut opts = Options::new(true);
    opts.budget = Budget::SMOKE;
    opts.filter = Some("64".into());
    let more = run_all(opts);
    report.cases.extend(more.cases);
    let r = ratios(&report.cases);
    let pair = r
        .iter()
        .find(|r| r.case == "ring/raw/entry64" && r.baseline == "rtrb/entry64")
        .expect("raw vs rtrb");
    assert!(pair.ratio > 0.0 && pair.target == Some(1.0));
    assert!(r
        .iter()
        .any(|r| r.case == "ring/read64/b8" && r.baseline == "syscall/pread64"));
    let kmod = report
        .cases
        .iter()
        .find(|c| c.name == "kmod/ioctl/read64")
        .expect("kmod row");
    assert!(!kmod.measured() && kmod.note.contains("emulated"));
}
