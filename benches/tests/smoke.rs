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

fn case(ops: f64, p50: u64, note: &str) -> sbpf_benches::CaseResult {
    sbpf_benches::CaseResult {
        name: "c".into(),
        ops_per_sec: ops,
        p50_ns: p50,
        p99_ns: p50 * 2,
        batch: 1,
        note: note.into(),
        samples: Vec::new(),
        round_ops_per_sec: Vec::new(),
    }
}

#[test]
fn a_case_reports_its_median_round() {
    use sbpf_benches::report::median_round;
    let m = median_round(vec![
        case(3e6, 30, "x"),
        case(1e6, 10, "x"),
        case(2e6, 20, "x"),
    ])
    .unwrap();
    assert_eq!(
        (m.ops_per_sec, m.p50_ns),
        (2e6, 20),
        "the whole median round"
    );
    assert!(
        m.note
            .ends_with("median of 3 rounds (3.00 M, 1.00 M, 2.00 M/s)"),
        "{}",
        m.note
    );
    // A failure in any round stays visible.
    let m = median_round(vec![
        case(1e6, 10, "x"),
        case(2e6, 20, "x; 3 FAILED completions"),
        case(5e5, 5, "x"),
    ])
    .unwrap();
    assert_eq!(m.ops_per_sec, 1e6);
    assert!(m.note.contains("FAILED"), "{}", m.note);
    // An even count takes the lower middle; one round is reported as it is.
    assert_eq!(
        median_round(vec![case(4.0, 1, ""), case(1.0, 1, "")])
            .unwrap()
            .ops_per_sec,
        1.0
    );
    assert_eq!(median_round(vec![case(7.0, 1, "y")]).unwrap().note, "y");
    assert!(median_round(Vec::new()).is_none());
}

#[test]
fn a_full_run_reports_median_rounds() {
    let mut opts = Options::new(true);
    opts.budget = Budget::SMOKE;
    opts.filter = Some("ring/nop/b8".into());
    opts.kmod_results = None;
    opts.rounds = 2;
    let report = run_all(opts);
    assert_eq!(report.rounds, 2);
    let c = &report.cases[0];
    assert_eq!(c.name, "ring/nop/b8");
    assert!(
        c.measured() && c.note.contains("median of 2 rounds"),
        "{c:?}"
    );
}

#[test]
fn rounds_go_round_robin_and_ratios_pair_rounds() {
    use sbpf_benches::report::{median_round, run_rounds};
    use std::cell::RefCell;
    let order = RefCell::new(Vec::new());
    // Case "a" runs at 10, 20, 30 ops/s in its three rounds; "b" at 5, 40, 25.
    let make = |name: &'static str, ops: [f64; 3]| {
        let order = &order;
        move |_: &Budget| {
            let round = order.borrow().iter().filter(|n| **n == name).count();
            order.borrow_mut().push(name);
            case(ops[round], 1, name)
        }
    };
    let cases = [
        ("a".to_string(), make("a", [10.0, 20.0, 30.0])),
        ("b".to_string(), make("b", [5.0, 40.0, 25.0])),
    ];
    let rounds = run_rounds(&cases, 3, &Budget::SMOKE, false);
    assert_eq!(*order.borrow(), ["a", "b", "a", "b", "a", "b"]);
    let mut results: Vec<_> = rounds.into_iter().filter_map(median_round).collect();
    assert_eq!(results[0].round_ops_per_sec, [10.0, 20.0, 30.0]);
    assert_eq!(
        (results[0].ops_per_sec, results[1].ops_per_sec),
        (20.0, 25.0)
    );
    // Pair them under the names of a real pair: the ratio is the median of 10/5, 20/40 and
    // 30/25 (1.2, target met), not the ratio of the medians (20/25, missed).
    results[0].name = "ring/raw/entry64".into();
    results[1].name = "rtrb/entry64".into();
    let r = ratios(&results);
    let pair = r.iter().find(|r| r.baseline == "rtrb/entry64").unwrap();
    assert_eq!(pair.per_round, [2.0, 0.5, 1.2]);
    assert_eq!(pair.ratio, 1.2);
    assert_eq!(pair.met, Some(true));
    // A round that measured nothing (an unavailable baseline) is no ratio: the medians are
    // compared instead.
    results[1].round_ops_per_sec[0] = 0.0;
    let r = ratios(&results);
    let pair = r.iter().find(|r| r.baseline == "rtrb/entry64").unwrap();
    assert!(pair.per_round.is_empty());
    assert_eq!(pair.ratio, 20.0 / 25.0);
}
