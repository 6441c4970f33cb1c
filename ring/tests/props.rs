//! Properties: random mixes of operations from 1 to 4 producer threads on rings of 2 to
//! 4096 entries; every accepted submission completes exactly once with the result a
//! sequential model of its producer predicts. And the million-request stress test.

mod common;

use std::{collections::HashMap, sync::Arc, thread};

use common::{collect, ring, scaled};
use proptest::prelude::*;
use sbpf_ring::{op, Completion, ObjectId, Sqe, SubmitError, Submitter};

/// Bytes of object (and arena) each producer owns.
const REGION: u64 = 512;
/// Arena bytes reserved per operation, so READ results stay until checked.
const SLOT: u64 = 64;

#[derive(Clone, Debug)]
enum Op {
    Nop,
    Write { off: u64, len: u32, seed: u8 },
    Read { off: u64, len: u32 },
    Load { word: u64 },
    Store { word: u64, val: u64 },
    FetchAdd { word: u64, val: u64 },
    Cas { word: u64, expected: u64, new: u64 },
    Misaligned { off: u64 },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let word = 0u64..REGION / 8;
    let small = 0u64..4;
    prop_oneof![
        Just(Op::Nop),
        (0u64..REGION - 1, 1u32..=SLOT as u32, any::<u8>()).prop_map(|(off, len, seed)| {
            Op::Write {
                off: off.min(REGION - len as u64),
                len,
                seed,
            }
        }),
        (0u64..REGION - 1, 1u32..=SLOT as u32).prop_map(|(off, len)| Op::Read {
            off: off.min(REGION - len as u64),
            len
        }),
        word.clone().prop_map(|word| Op::Load { word }),
        (word.clone(), any::<u64>()).prop_map(|(word, val)| Op::Store { word, val }),
        (word.clone(), any::<u64>()).prop_map(|(word, val)| Op::FetchAdd { word, val }),
        (word, small.clone(), small).prop_map(|(word, expected, new)| Op::Cas {
            word,
            expected,
            new
        }),
        (0u64..REGION - 8).prop_map(|off| Op::Misaligned { off: off | 1 }),
    ]
}

/// The expected completion of `op` against `mem` (the producer's region), applied.
fn model(op: &Op, mem: &mut [u8]) -> (i32, u64, Option<Vec<u8>>) {
    let word = |mem: &[u8], w: u64| {
        u64::from_ne_bytes(mem[w as usize * 8..w as usize * 8 + 8].try_into().unwrap())
    };
    let set = |mem: &mut [u8], w: u64, v: u64| {
        mem[w as usize * 8..w as usize * 8 + 8].copy_from_slice(&v.to_ne_bytes())
    };
    match *op {
        Op::Nop => (0, 0, None),
        Op::Write { off, len, seed } => {
            mem[off as usize..(off + len as u64) as usize].copy_from_slice(&payload(seed, len));
            (len as i32, 0, None)
        }
        Op::Read { off, len } => (
            len as i32,
            0,
            Some(mem[off as usize..(off + len as u64) as usize].to_vec()),
        ),
        Op::Load { word: w } => (0, word(mem, w), None),
        Op::Store { word: w, val } => {
            set(mem, w, val);
            (0, 0, None)
        }
        Op::FetchAdd { word: w, val } => {
            let old = word(mem, w);
            set(mem, w, old.wrapping_add(val));
            (0, old, None)
        }
        Op::Cas {
            word: w,
            expected,
            new,
        } => {
            let old = word(mem, w);
            if old == expected {
                set(mem, w, new);
                (1, old, None)
            } else {
                (0, old, None)
            }
        }
        Op::Misaligned { .. } => (-libc::EINVAL, 0, None),
    }
}

fn payload(seed: u8, len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

fn user_data(producer: usize, index: usize) -> u64 {
    ((producer as u64) << 32) | index as u64
}

/// The entry for `op` of `producer` at `index`, with its arena slot.
fn entry(obj: ObjectId, producer: usize, ops: usize, index: usize, op: &Op) -> Sqe {
    let base = producer as u64 * REGION;
    let slot = (producer * ops + index) as u64 * SLOT;
    let sqe = match *op {
        Op::Nop => op::Nop::new().build(),
        Op::Write { off, len, .. } => op::Write::new(obj, base + off, slot, len).build(),
        Op::Read { off, len } => op::Read::new(obj, base + off, slot, len).build(),
        Op::Load { word } => op::Load64::new(obj, base + word * 8).build(),
        Op::Store { word, val } => op::Store64::new(obj, base + word * 8, val).build(),
        Op::FetchAdd { word, val } => op::FetchAdd64::new(obj, base + word * 8, val).build(),
        Op::Cas {
            word,
            expected,
            new,
        } => op::Cas64::new(obj, base + word * 8, expected, new).build(),
        Op::Misaligned { off } => op::Load64::new(obj, base + off).build(),
    };
    Sqe {
        user_data: user_data(producer, index),
        ..sqe
    }
}

fn submit_spinning(s: &mut Submitter, mut sqe: Sqe) {
    loop {
        match s.submit(sqe) {
            Ok(()) => return,
            Err(SubmitError::Full(e)) => {
                sqe = e;
                thread::yield_now();
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn check_mix(sq_log2: u32, programs: Vec<Vec<Op>>) {
    let producers = programs.len();
    let ops = programs.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let sq = 1u32 << sq_log2;
    let arena = ((producers * ops) as u64 * SLOT).next_multiple_of(4096);
    let ring = ring(sq, sq.max(2), arena);
    let obj = ring.create_object(REGION * producers as u64).unwrap();
    let mut cq = ring.completions().unwrap();
    let programs = Arc::new(programs);
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            // Entries must pass the consumer's checks, not the producer's: the misaligned
            // ones test the consumer.
            let mut s = ring.submitter_with(sbpf_ring::AcceptAll);
            let arena = ring.arena();
            let programs = Arc::clone(&programs);
            thread::spawn(move || {
                for (i, op) in programs[p].iter().enumerate() {
                    if let Op::Write { len, seed, .. } = *op {
                        arena
                            .write((p * ops + i) as u64 * SLOT, &payload(seed, len))
                            .unwrap();
                    }
                    submit_spinning(&mut s, entry(obj, p, ops, i, op));
                }
            })
        })
        .collect();
    let total: usize = programs.iter().map(Vec::len).sum();
    let mut done: Vec<Completion> = Vec::new();
    collect(&mut cq, &mut done, total);
    for t in threads {
        t.join().unwrap();
    }
    let by_id: HashMap<u64, Completion> = done.iter().map(|c| (c.user_data(), *c)).collect();
    assert_eq!(by_id.len(), total, "a completion arrived twice");
    let arena_view = ring.arena();
    for (p, program) in programs.iter().enumerate() {
        let mut mem = vec![0u8; REGION as usize];
        for (i, op) in program.iter().enumerate() {
            let c = by_id
                .get(&user_data(p, i))
                .unwrap_or_else(|| panic!("no completion for {p}/{i}"));
            let (res, value, read) = model(op, &mut mem);
            assert_eq!(
                (c.result(), c.value()),
                (res, value),
                "producer {p} op {i}: {op:?}"
            );
            if let Some(bytes) = read {
                let mut got = vec![0; bytes.len()];
                arena_view
                    .read((p * ops + i) as u64 * SLOT, &mut got)
                    .unwrap();
                assert_eq!(got, bytes, "producer {p} op {i}: READ data");
            }
        }
    }
    let stats = ring.stats();
    assert_eq!(stats.completed, total as u64);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 48 },
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn random_mixes_complete_exactly_once_with_the_right_results(
        sq_log2 in 1u32..=12,
        programs in proptest::collection::vec(
            proptest::collection::vec(op_strategy(), 1..if cfg!(miri) { 6 } else { 120 }),
            1..=4,
        ),
    ) {
        check_mix(sq_log2, programs);
    }
}

#[test]
fn small_rings_wrap_many_times() {
    // Two entries, four producers, hundreds of laps.
    let programs: Vec<Vec<Op>> = (0..4)
        .map(|p| {
            (0..scaled(300))
                .map(|i| Op::FetchAdd {
                    word: (i % 4) as u64,
                    val: p as u64 + 1,
                })
                .collect()
        })
        .collect();
    check_mix(1, programs);
}

#[test]
#[cfg_attr(miri, ignore = "a million requests")]
fn stress_four_producers_a_million_requests_exactly_once() {
    const PRODUCERS: u64 = 4;
    let per = 250_000u64;
    let ring = ring(1024, 2048, 4096);
    let obj = ring.create_object(64).unwrap();
    let mut cq = ring.completions().unwrap();
    let threads: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut s = ring.submitter();
            thread::spawn(move || {
                let mut batch = Vec::with_capacity(32);
                let mut i = 0;
                while i < per {
                    batch.clear();
                    batch.extend((i..(i + 32).min(per)).map(|k| {
                        op::FetchAdd64::new(obj, 8 * p, 1)
                            .user_data((p << 32) | k)
                            .build()
                    }));
                    let mut sent = 0;
                    while sent < batch.len() {
                        match s.submit_batch(&batch[sent..]) {
                            Ok(n) => sent += n,
                            Err(sbpf_ring::BatchError::Full) => thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                    i += batch.len() as u64;
                }
            })
        })
        .collect();
    let total = (PRODUCERS * per) as usize;
    let mut seen = vec![false; total];
    let mut olds = vec![vec![false; per as usize]; PRODUCERS as usize];
    let mut count = 0;
    while count < total {
        cq.wait(1, Some(std::time::Duration::from_secs(10)))
            .expect("completions stalled");
        for c in cq.iter() {
            let (p, k) = (
                (c.user_data() >> 32) as usize,
                (c.user_data() & 0xffff_ffff) as usize,
            );
            let idx = p * per as usize + k;
            assert!(!seen[idx], "user_data {p}/{k} completed twice");
            seen[idx] = true;
            assert_eq!(c.result(), 0);
            // Each producer's counter sees every old value 0..per exactly once.
            let old = c.value() as usize;
            assert!(
                old < per as usize && !olds[p][old],
                "producer {p}: old value {old} repeated"
            );
            olds[p][old] = true;
            count += 1;
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    assert!(seen.iter().all(|&s| s));
    assert_eq!(ring.stats().completed, total as u64);
}
