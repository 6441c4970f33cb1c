//! A producer whose entries pass an eBPF guard first: the built-in read-only guard under the
//! JIT refuses a store at the producer, with a reason, before it takes a slot.
//! `cargo run -p sbpf-examples --example guarded`.

use sbpf_guard::{Engine, Guard, Stage};
use sbpf_ring::{op, Ring, SubmitError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ring = Ring::builder().sq_entries(64).arena_size(4096).build()?;
    let table = ring.create_object(4096)?;
    let mut completions = ring.completions()?;
    let guard = Guard::new([Stage::bounds(Engine::Jit), Stage::read_only(Engine::Jit)]);
    // The guard moves into the handle; its stats stay readable here.
    let stats = guard.stats();
    let mut reader = ring.submitter_with(guard);

    reader.submit(op::Load64::new(table, 0).user_data(1).build())?;
    match reader.submit(op::Store64::new(table, 0, 7).user_data(2).build()) {
        Err(SubmitError::Rejected {
            stage, rejection, ..
        }) => println!("refused by {stage}: {rejection}"),
        other => panic!("a read-only guard let a store through: {other:?}"),
    }
    completions.wait(1, None)?;
    let c = completions.pop().expect("one completion");
    println!("LOAD64 -> {} (result {})", c.value(), c.result());
    assert_eq!(ring.stats().submitted, 1, "the refused store took no slot");
    let totals = stats.totals();
    println!(
        "guard: {} accepted, {} refused",
        totals.accepted(),
        totals.rejected_total()
    );
    assert_eq!((totals.accepted(), totals.rejected_total()), (1, 1));
    Ok(())
}
