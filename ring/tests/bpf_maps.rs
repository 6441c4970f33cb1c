//! BPF maps as ring objects (issue 13), on the backend the environment selects: the local
//! backend on the host (mmap for `BPF_F_MMAPABLE` arrays, `bpf()` otherwise), the kernel
//! module in the QEMU guest (`SBPF_RING_BACKEND=kernel`). What the ring writes is checked
//! with `BPF_MAP_LOOKUP_ELEM` and with a BPF program in the kernel ([`bpf::Probe`]).
//!
//! They need `bpf()`: root (or CAP_BPF), as on the CI machine and in the guest. Without it
//! every test fails at once with the kernel's refusal, rather than skipping.
#![cfg(not(miri))]

mod common;

use std::{os::fd::AsFd, sync::Arc, time::Duration};

use sbpf_ring::{
    abi::{MAP_ANY, MAP_EXIST, MAP_NOEXIST, MAX_IO_LEN},
    bpf::{self, map_type, Map, Probe},
    op,
    validate::rights,
    AcceptAll, BackendKind, Completion, CompletionQueue, Error, MapPath, ObjectId, Ring, Sqe,
    SubmitError, Submitter,
};

/// Fails the test with the kernel's answer when bpf() is refused.
fn require_bpf() {
    if let Err(e) = bpf::permitted() {
        panic!("these tests need bpf() (run as root, or with CAP_BPF): {e}");
    }
}

fn ring() -> Ring {
    common::ring(256, 512, 1 << 16)
}

/// Submits one entry and waits for its completion.
fn call(s: &mut Submitter, cq: &mut CompletionQueue, sqe: impl Into<Sqe>) -> Completion {
    let sqe = sqe.into();
    s.submit(sqe)
        .unwrap_or_else(|e| panic!("submit {sqe:?}: {e}"));
    let mut done = Vec::new();
    common::collect(cq, &mut done, 1);
    assert_eq!(done.len(), 1);
    done.pop().unwrap()
}

fn key(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

fn array(entries: u32, value: u32, flags: u32) -> Map {
    require_bpf();
    Map::create(map_type::ARRAY, 4, value, entries, flags).expect("BPF_MAP_CREATE array")
}

fn expected_path(ring: &Ring, mmapable: bool) -> MapPath {
    match (ring.backend(), mmapable) {
        (BackendKind::Kernel, _) => MapPath::Kernel,
        (_, true) => MapPath::Mmap,
        (_, false) => MapPath::Syscall,
    }
}

#[test]
fn array_values_written_through_the_ring_are_what_a_bpf_program_reads() {
    for flags in [bpf::F_MMAPABLE, 0] {
        let map = array(1024, 8, flags);
        let probe = Probe::load(map.as_fd()).expect("load the probe program");
        let ring = ring();
        let obj = ring.attach_bpf_map(&map).expect("attach");
        let info = ring.bpf_map(obj).expect("a map object");
        assert_eq!(info.path, expected_path(&ring, flags != 0));
        assert_eq!(info.size, 1024 * 8);
        assert_eq!(info.rights, rights::ALL | rights::MAP);
        let mut s = ring.submitter();
        let mut cq = ring.completions().unwrap();

        // Word operations on element 7, bytes on element 9.
        let c = call(
            &mut s,
            &mut cq,
            op::Store64::new(obj, 7 * 8, 0xdead_beef_0123),
        );
        assert!(c.is_ok(), "{c:?}");
        assert_eq!(
            probe.lookup_u64(&key(7), 0).unwrap(),
            Some(0xdead_beef_0123)
        );
        ring.arena().write(0, &0x55aa_u64.to_ne_bytes()).unwrap();
        let c = call(&mut s, &mut cq, op::Write::new(obj, 9 * 8, 0, 8));
        assert_eq!(c.result(), 8);
        assert_eq!(
            map.lookup(&key(9)).unwrap().unwrap(),
            0x55aa_u64.to_ne_bytes()
        );
        let c = call(&mut s, &mut cq, op::Load64::new(obj, 7 * 8));
        assert_eq!(c.value(), 0xdead_beef_0123);
        // A value the kernel wrote is what the ring reads.
        map.update(&key(3), &77u64.to_ne_bytes(), MAP_ANY).unwrap();
        let c = call(&mut s, &mut cq, op::Read::new(obj, 3 * 8, 64, 8));
        assert_eq!(c.result(), 8);
        let mut got = [0u8; 8];
        ring.arena().read(64, &mut got).unwrap();
        assert_eq!(u64::from_ne_bytes(got), 77);

        let c = call(&mut s, &mut cq, op::FetchAdd64::new(obj, 3 * 8, 5));
        if info.path == MapPath::Syscall {
            // bpf() has no atomic read-modify-write.
            assert_eq!(c.result(), -libc::EOPNOTSUPP);
        } else {
            assert!(c.is_ok(), "{c:?}");
            assert_eq!(c.value(), 77);
            assert_eq!(probe.lookup_u64(&key(3), 0).unwrap(), Some(82));
        }

        // Keyed operations on an array: the key is the index.
        ring.arena().write(128, &key(11)).unwrap();
        ring.arena().write(132, &4242u64.to_ne_bytes()).unwrap();
        let c = call(&mut s, &mut cq, op::MapUpdate::new(obj, 128, 12, MAP_ANY));
        assert!(c.is_ok(), "{c:?}");
        assert_eq!(probe.lookup_u64(&key(11), 0).unwrap(), Some(4242));
        let c = call(
            &mut s,
            &mut cq,
            op::MapUpdate::new(obj, 128, 12, MAP_NOEXIST),
        );
        assert_eq!(c.result(), -libc::EEXIST, "array elements always exist");
        let c = call(&mut s, &mut cq, op::MapDelete::new(obj, 128, 4));
        assert_eq!(
            c.result(),
            -libc::EINVAL,
            "array elements cannot be deleted"
        );
        ring.arena().write(128, &key(1024)).unwrap();
        let c = call(&mut s, &mut cq, op::MapUpdate::new(obj, 128, 12, MAP_ANY));
        assert_eq!(c.result(), -libc::E2BIG, "index past the end");
        let c = call(&mut s, &mut cq, op::MapLookup::new(obj, 128, 12));
        assert_eq!(c.result(), -libc::ENOENT);
        // Wrong key plus value length for this map.
        let c = call(&mut s, &mut cq, op::MapLookup::new(obj, 128, 16));
        assert_eq!(c.result(), -libc::EINVAL);
        // Offsets are checked against max_entries x value size.
        let mut raw = ring.submitter_with(AcceptAll);
        let c = call(&mut raw, &mut cq, op::Load64::new(obj, 1024 * 8));
        assert_eq!(c.result(), -libc::EFAULT);
        let c = call(&mut raw, &mut cq, op::Load64::new(obj, 4));
        assert_eq!(c.result(), -libc::EINVAL);
        ring.shutdown();
    }
}

#[test]
fn concurrent_fetch_adds_reach_the_exact_total_a_bpf_program_reads() {
    let map = array(16, 8, bpf::F_MMAPABLE);
    let probe = Probe::load(map.as_fd()).expect("load the probe program");
    let ring = Arc::new(ring());
    let obj = ring.attach_bpf_map(&map).expect("attach");
    if ring.bpf_map(obj).unwrap().path == MapPath::Syscall {
        unreachable!("an mmapable array is mapped");
    }
    let mut cq = ring.completions().unwrap();
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 20_000;
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let mut s = ring.submitter();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let mut e = op::FetchAdd64::new(obj, 5 * 8, t + 1).user_data(i).build();
                    loop {
                        match s.submit(e) {
                            Ok(()) => break,
                            Err(SubmitError::Full(back)) => {
                                e = back;
                                std::thread::yield_now();
                            }
                            Err(err) => panic!("submit: {err}"),
                        }
                    }
                }
            })
        })
        .collect();
    let total = THREADS * PER_THREAD;
    let mut seen = 0u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen < total {
        assert!(std::time::Instant::now() < deadline, "{seen} of {total}");
        let _ = cq.wait(1, Some(Duration::from_millis(50)));
        for c in cq.iter() {
            assert!(c.is_ok(), "{c:?}");
            seen += 1;
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    // Thread t adds t + 1, PER_THREAD times.
    let want = PER_THREAD * (1..=THREADS).sum::<u64>();
    assert_eq!(probe.lookup_u64(&key(5), 0).unwrap(), Some(want));
    assert_eq!(map.lookup(&key(5)).unwrap().unwrap(), want.to_ne_bytes());
    // Neighbours untouched.
    assert_eq!(probe.lookup_u64(&key(4), 0).unwrap(), Some(0));
    assert_eq!(probe.lookup_u64(&key(6), 0).unwrap(), Some(0));
}

#[test]
fn hash_map_updates_and_deletes_are_visible_to_bpf() {
    for ty in [map_type::HASH, map_type::LRU_HASH] {
        require_bpf();
        let map = Map::create(ty, 8, 16, 64, 0).expect("BPF_MAP_CREATE hash");
        let probe = Probe::load(map.as_fd()).expect("load the probe program");
        let ring = ring();
        let obj = ring.attach_bpf_map(&map).expect("attach");
        let info = ring.bpf_map(obj).unwrap();
        assert_eq!(info.size, 0, "hash maps have no byte-addressed values");
        assert_eq!(info.info.key_size, 8);
        assert_eq!(info.info.value_size, 16);
        assert_eq!(info.path, expected_path(&ring, false));
        let mut s = ring.submitter();
        let mut cq = ring.completions().unwrap();
        let arena = ring.arena();
        let k = 0x1234_5678_9abc_u64.to_ne_bytes();
        let v: Vec<u8> = (1..=16).collect();
        arena.write(0, &k).unwrap();
        arena.write(8, &v).unwrap();

        let c = call(&mut s, &mut cq, op::MapUpdate::new(obj, 0, 24, MAP_EXIST));
        assert_eq!(c.result(), -libc::ENOENT, "EXIST on an absent key");
        let c = call(&mut s, &mut cq, op::MapUpdate::new(obj, 0, 24, MAP_NOEXIST));
        assert!(c.is_ok(), "{c:?}");
        assert_eq!(map.lookup(&k).unwrap().as_deref(), Some(&v[..]));
        assert_eq!(probe.lookup(&k).unwrap().as_deref(), Some(&v[..]));
        let c = call(&mut s, &mut cq, op::MapUpdate::new(obj, 0, 24, MAP_NOEXIST));
        assert_eq!(c.result(), -libc::EEXIST);

        // An element the kernel wrote, looked up through the ring.
        let k2 = 7u64.to_ne_bytes();
        let v2 = [9u8; 16];
        map.update(&k2, &v2, MAP_ANY).unwrap();
        arena.write(64, &k2).unwrap();
        let c = call(&mut s, &mut cq, op::MapLookup::new(obj, 64, 24));
        assert_eq!(c.result(), 16);
        let mut got = [0u8; 16];
        arena.read(72, &mut got).unwrap();
        assert_eq!(got, v2);

        let c = call(&mut s, &mut cq, op::MapDelete::new(obj, 0, 8));
        assert!(c.is_ok(), "{c:?}");
        assert_eq!(map.lookup(&k).unwrap(), None);
        assert_eq!(probe.lookup(&k).unwrap(), None);
        let c = call(&mut s, &mut cq, op::MapDelete::new(obj, 0, 8));
        assert_eq!(c.result(), -libc::ENOENT);
        let c = call(&mut s, &mut cq, op::MapLookup::new(obj, 0, 24));
        assert_eq!(c.result(), -libc::ENOENT);

        // Byte-addressed operations have nothing to address in a hash map: the validator
        // refuses them, and so does the consumer.
        assert!(matches!(
            s.submit(op::Load64::new(obj, 0).build()),
            Err(SubmitError::Rejected { .. })
        ));
        let mut raw = ring.submitter_with(AcceptAll);
        let c = call(&mut raw, &mut cq, op::Load64::new(obj, 0));
        assert_eq!(c.result(), -libc::EFAULT);
        // Wrong lengths and flags.
        let c = call(&mut raw, &mut cq, op::MapUpdate::new(obj, 0, 23, MAP_ANY));
        assert_eq!(c.result(), -libc::EINVAL);
        let c = call(&mut raw, &mut cq, op::MapUpdate::new(obj, 0, 24, 3));
        assert_eq!(c.result(), -libc::EINVAL, "unknown update flags");

        // Fill it: a full hash answers E2BIG (LRU evicts instead).
        let mut last = 0;
        for i in 0..65u64 {
            arena.write(0, &(1000 + i).to_ne_bytes()).unwrap();
            last = call(&mut s, &mut cq, op::MapUpdate::new(obj, 0, 24, MAP_ANY)).result();
        }
        if ty == map_type::HASH {
            assert_eq!(last, -libc::E2BIG);
        } else {
            assert_eq!(last, 0);
        }
        ring.shutdown();
    }
}

#[test]
fn map_ops_on_a_plain_object_are_refused() {
    require_bpf();
    let ring = ring();
    let obj = ring.create_object(64).unwrap();
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    assert!(matches!(
        s.submit(op::MapLookup::new(obj, 0, 8).build()),
        Err(SubmitError::Rejected { .. })
    ));
    let mut raw = ring.submitter_with(AcceptAll);
    let c = call(&mut raw, &mut cq, op::MapLookup::new(obj, 0, 8));
    assert_eq!(c.result(), -libc::EOPNOTSUPP);
}

#[test]
fn a_read_only_fd_allows_no_writes() {
    for flags in [bpf::F_MMAPABLE, 0] {
        let map = array(8, 8, flags);
        map.update(&key(2), &5u64.to_ne_bytes(), MAP_ANY).unwrap();
        let ro = map
            .open_read_only()
            .expect("BPF_MAP_GET_FD_BY_ID read-only");
        let ring = ring();
        let obj = ring.attach_bpf_map(&ro).expect("attach read-only");
        let info = ring.bpf_map(obj).unwrap();
        assert_eq!(info.rights, rights::READ | rights::MAP);
        let mut s = ring.submitter();
        let mut cq = ring.completions().unwrap();
        // Reads work.
        let c = call(&mut s, &mut cq, op::Load64::new(obj, 16));
        assert_eq!(c.value(), 5);
        // The producer's validator refuses writes early...
        for e in [
            op::Store64::new(obj, 16, 1).build(),
            op::FetchAdd64::new(obj, 16, 1).build(),
            op::MapUpdate::new(obj, 0, 12, MAP_ANY).build(),
        ] {
            assert!(
                matches!(s.submit(e), Err(SubmitError::Rejected { .. })),
                "{e:?}"
            );
        }
        // ...and the consumer refuses what skips it.
        let mut raw = ring.submitter_with(AcceptAll);
        for e in [
            op::Store64::new(obj, 16, 1).build(),
            op::Write::new(obj, 16, 0, 8).build(),
            op::Cas64::new(obj, 16, 5, 6).build(),
            op::MapUpdate::new(obj, 0, 12, MAP_ANY).build(),
        ] {
            let c = call(&mut raw, &mut cq, e);
            assert_eq!(c.result(), -libc::EPERM, "{e:?}");
        }
        assert_eq!(map.lookup(&key(2)).unwrap().unwrap(), 5u64.to_ne_bytes());
    }
}

#[test]
fn a_frozen_map_allows_no_writes() {
    for (ty, flags) in [
        (map_type::ARRAY, bpf::F_MMAPABLE),
        (map_type::ARRAY, 0),
        (map_type::HASH, 0),
    ] {
        require_bpf();
        let map = Map::create(ty, 4, 8, 8, flags).unwrap();
        map.update(&key(1), &3u64.to_ne_bytes(), MAP_ANY).unwrap();
        map.freeze().expect("BPF_MAP_FREEZE");
        let ring = ring();
        let obj = ring.attach_bpf_map(&map).expect("attach");
        let mut raw = ring.submitter_with(AcceptAll);
        let mut cq = ring.completions().unwrap();
        ring.arena().write(0, &key(1)).unwrap();
        ring.arena().write(4, &9u64.to_ne_bytes()).unwrap();
        let c = call(&mut raw, &mut cq, op::MapUpdate::new(obj, 0, 12, MAP_ANY));
        assert_eq!(c.result(), -libc::EPERM, "type {ty} flags {flags:#x}");
        if ty == map_type::ARRAY {
            let c = call(&mut raw, &mut cq, op::Store64::new(obj, 8, 9));
            assert_eq!(c.result(), -libc::EPERM);
        }
        let c = call(&mut raw, &mut cq, op::MapLookup::new(obj, 0, 12));
        assert_eq!(c.result(), 8, "reads still work");
        assert_eq!(map.lookup(&key(1)).unwrap().unwrap(), 3u64.to_ne_bytes());
    }
}

#[test]
fn unsupported_maps_and_fds_are_refused_at_attach() {
    require_bpf();
    let ring = ring();
    for ty in [
        map_type::PERCPU_ARRAY,
        map_type::PERCPU_HASH,
        map_type::LRU_PERCPU_HASH,
    ] {
        let map = Map::create(ty, 4, 8, 4, 0).unwrap();
        let e = ring.attach_bpf_map(&map).unwrap_err();
        assert!(matches!(e, Error::UnsupportedMap(_)), "type {ty}: {e}");
        assert!(e.to_string().contains("per-CPU"), "{e}");
    }
    // BPF_MAP_TYPE_QUEUE (22): no keys, not addressable.
    let queue = Map::create(22, 0, 8, 4, 0).unwrap();
    assert!(matches!(
        ring.attach_bpf_map(&queue),
        Err(Error::UnsupportedMap(_))
    ));
    // A hash map whose key and value together exceed one entry's range: never updatable.
    let big = MAX_IO_LEN;
    let hash = Map::create(map_type::HASH, 4, big, 1, bpf::F_NO_PREALLOC).unwrap();
    let e = ring.attach_bpf_map(&hash).unwrap_err();
    assert!(matches!(e, Error::UnsupportedMap(_)), "{e}");
    assert!(e.to_string().contains("together exceed"), "{e}");
    // An array of such values is still read and written through READ/WRITE.
    let array = Map::create(map_type::ARRAY, 4, big, 1, 0).unwrap();
    let id = ring.attach_bpf_map(&array).unwrap();
    ring.detach_object(id).unwrap();
    let not_a_map = std::fs::File::open("/dev/null").unwrap();
    let e = ring.attach_bpf_map(&not_a_map).unwrap_err();
    assert!(e.to_string().contains("not a BPF map"), "{e}");
    assert!(ring.limits().objects().is_empty(), "nothing half-attached");
}

#[test]
fn the_ring_holds_the_map_after_the_fd_is_closed_and_lets_go_on_detach() {
    let map = array(4, 8, 0);
    let probe = Probe::load(map.as_fd()).unwrap();
    let ring = ring();
    let obj = ring.attach_bpf_map(&map).unwrap();
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    // Entries in flight while the caller's fd goes away.
    for i in 0..64u64 {
        s.submit(op::Store64::new(obj, 8, i).user_data(i).build())
            .unwrap();
    }
    drop(map);
    let mut done = Vec::new();
    common::collect(&mut cq, &mut done, 64);
    assert!(done.iter().all(|c| c.is_ok()), "{done:?}");
    // The probe holds its own reference to the map, and sees the last store.
    assert_eq!(probe.lookup_u64(&key(1), 0).unwrap(), Some(63));
    let c = call(&mut s, &mut cq, op::Store64::new(obj, 16, 99));
    assert!(c.is_ok());
    assert_eq!(probe.lookup_u64(&key(2), 0).unwrap(), Some(99));
    ring.detach_object(obj).unwrap();
    assert!(ring.bpf_map(obj).is_none());
    let mut raw = ring.submitter_with(AcceptAll);
    let c = call(&mut raw, &mut cq, op::Store64::new(obj, 16, 1));
    assert_eq!(c.result(), -libc::ENOENT, "detached");
    assert_eq!(probe.lookup_u64(&key(2), 0).unwrap(), Some(99));
}

#[test]
fn object_ids_of_maps_are_their_own() {
    let a = array(4, 8, bpf::F_MMAPABLE);
    let b = array(4, 8, bpf::F_MMAPABLE);
    let ring = ring();
    let plain = ring.create_object(8).unwrap();
    let ia = ring.attach_bpf_map(&a).unwrap();
    let ib = ring.attach_bpf_map(&b).unwrap();
    let ids = [plain, ia, ib];
    assert!(ids
        .iter()
        .all(|&x| ids.iter().filter(|&&y| y == x).count() == 1));
    assert_ne!(ia, ObjectId(0));
    let mut s = ring.submitter();
    let mut cq = ring.completions().unwrap();
    call(&mut s, &mut cq, op::Store64::new(ia, 0, 1));
    call(&mut s, &mut cq, op::Store64::new(ib, 0, 2));
    assert_eq!(a.lookup(&key(0)).unwrap().unwrap(), 1u64.to_ne_bytes());
    assert_eq!(b.lookup(&key(0)).unwrap().unwrap(), 2u64.to_ne_bytes());
}
