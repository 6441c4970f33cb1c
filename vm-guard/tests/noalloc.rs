//! The accepting path of a JIT-compiled guard does not allocate (a counting global allocator
//! watches it); the interpreter's does, once per stage, because rbpf 0.4.1 allocates its
//! stack on every run — which is why the JIT is the default where it exists.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use sbpf_guard::{Engine, Guard, Stage};
use sbpf_ring::{
    abi::{opcode, Sqe},
    validate::{Limits, ObjectLimit, Validator},
};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts (in a thread-local that itself never
// allocates: a const-initialized `Cell`).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

fn setup(engine: Engine) -> (Guard, Limits, Vec<Sqe>) {
    let guard = Guard::new([
        Stage::bounds(engine),
        Stage::opcode_allowlist(0b1111, engine),
        Stage::read_only(engine),
        Stage::object_allowlist(&[1, 2], engine),
    ]);
    let mut limits = Limits::new(1 << 20);
    limits.push(ObjectLimit::new(1, 4096));
    limits.push(ObjectLimit::new(2, 64));
    let entries = vec![
        Sqe::default(),
        Sqe {
            opcode: opcode::READ,
            obj_id: 1,
            obj_off: 64,
            arena_off: 128,
            len: 256,
            ..Sqe::default()
        },
        Sqe {
            opcode: opcode::LOAD64,
            obj_id: 2,
            obj_off: 56,
            ..Sqe::default()
        },
    ];
    (guard, limits, entries)
}

#[test]
fn jit_accepting_path_does_not_allocate() {
    let (mut guard, limits, entries) = setup(Engine::Jit);
    assert!(guard
        .stages()
        .iter()
        .all(|s| s.program().engine() == Engine::Jit));
    // Warm up (first-use work of the test harness, not of the guard).
    for e in &entries {
        guard.validate(e, &limits).unwrap();
    }
    let n = allocations(|| {
        for _ in 0..1000 {
            for e in &entries {
                guard.validate(e, &limits).unwrap();
            }
        }
    });
    assert_eq!(n, 0, "{n} allocations on 3000 accepted entries");
    assert_eq!(guard.counters().accepted(), 3003);
}

#[test]
fn interpreter_allocates_its_stack_per_run() {
    let (mut guard, limits, entries) = setup(Engine::Interpreter);
    guard.validate(&entries[0], &limits).unwrap();
    let n = allocations(|| guard.validate(&entries[1], &limits).unwrap());
    assert_eq!(
        n, 4,
        "one stack per stage and run; if rbpf stops allocating, update the docs"
    );
}
