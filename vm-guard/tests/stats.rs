//! `GuardStats`: the totals of a guard over every copy made of it, across threads, through
//! producer handles, and after copies are dropped.

use sbpf_guard::{builtin::code, Engine, Guard, Stage};
use sbpf_ring::{
    abi::{opcode, Sqe},
    op,
    validate::{Limits, ObjectLimit, Validator},
    Ring, SubmitError,
};

fn limits() -> Limits {
    let mut l = Limits::new(4096);
    l.push(ObjectLimit::new(1, 64));
    l
}

fn entry(op: u8) -> Sqe {
    Sqe {
        opcode: op,
        obj_id: 1,
        ..Sqe::default()
    }
}

#[test]
fn totals_add_up_every_copy_on_every_thread() {
    let guard = Guard::new([Stage::bounds(Engine::Jit), Stage::read_only(Engine::Jit)]);
    let stats = guard.stats();
    assert_eq!(stats.copies(), 1);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let mut copy = guard.clone_box();
            std::thread::spawn(move || {
                let l = limits();
                for _ in 0..1000 + t {
                    copy.validate(&entry(opcode::LOAD64), &l).unwrap();
                }
                for _ in 0..10 * (t + 1) {
                    copy.validate(&entry(opcode::STORE64), &l).unwrap_err();
                }
                // Object 2 is not attached: the first stage refuses it.
                let missing = Sqe {
                    obj_id: 2,
                    ..entry(opcode::LOAD64)
                };
                copy.validate(&missing, &l).unwrap_err();
                // Half the copies die before the totals are read, half after.
                if t % 2 == 0 {
                    drop(copy);
                    None
                } else {
                    Some(copy)
                }
            })
        })
        .collect();
    let kept: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(stats.copies(), 3, "the original and two live copies");
    let totals = stats.totals();
    assert_eq!(totals.accepted(), 4000 + 6);
    assert_eq!(totals.rejected(code::NOT_READ_ONLY), 10 + 20 + 30 + 40);
    assert_eq!(totals.rejected_total(), 100 + 4);
    assert_eq!(totals.by_stage(), &[4, 100]);
    assert_eq!(
        guard.counters().accepted(),
        0,
        "the original ran nothing itself"
    );
    drop(kept);
    assert_eq!(stats.copies(), 1);
    assert_eq!(stats.totals(), totals, "dropped copies keep their counts");
}

#[test]
fn stats_follow_a_guard_into_producer_handles() {
    let ring = Ring::builder()
        .sq_entries(64)
        .arena_size(4096)
        .build()
        .unwrap();
    let table = ring.create_object(64).unwrap();
    let guard = Guard::new([Stage::read_only(Engine::Jit)]);
    let stats = guard.stats();
    let producer = ring.submitter_with(guard);
    let mut cq = ring.completions().unwrap();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let mut p = producer.clone();
            std::thread::spawn(move || {
                for i in 0..8 {
                    p.submit(op::Load64::new(table, 0).user_data(i).build())
                        .unwrap();
                }
                match p.submit(op::Store64::new(table, 0, 1).build()) {
                    Err(SubmitError::Rejected { rejection, .. }) => {
                        assert_eq!(rejection.code, code::NOT_READ_ONLY)
                    }
                    other => panic!("a store passed a read-only guard: {other:?}"),
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    cq.wait(24, None).unwrap();
    assert_eq!(cq.iter().filter(|c| c.is_ok()).count(), 24);
    let totals = stats.totals();
    assert_eq!(totals.accepted(), 24);
    assert_eq!(totals.rejected(code::NOT_READ_ONLY), 3);
    assert_eq!(ring.stats().submitted, 24, "refused entries took no slot");
}
