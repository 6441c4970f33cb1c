//! `SBPF_RING_BACKEND` names the backend or is refused; a test binary of its own, since it
//! changes the process environment that other tests read.

use sbpf_ring::{BackendKind, Error, Ring};

#[test]
fn an_unknown_backend_name_is_an_error() {
    let before = std::env::var_os("SBPF_RING_BACKEND");
    std::env::set_var("SBPF_RING_BACKEND", "kernal");
    let r = Ring::builder().sq_entries(8).arena_size(4096).build();
    match r {
        Err(e @ Error::UnknownBackend(_)) => {
            assert!(e.to_string().contains("\"kernal\""), "{e}");
        }
        other => panic!("{other:?}"),
    }
    std::env::set_var("SBPF_RING_BACKEND", "local");
    let ring = Ring::builder()
        .sq_entries(8)
        .arena_size(4096)
        .build()
        .unwrap();
    assert_eq!(ring.backend(), BackendKind::Local);
    match before {
        Some(v) => std::env::set_var("SBPF_RING_BACKEND", v),
        None => std::env::remove_var("SBPF_RING_BACKEND"),
    }
}
