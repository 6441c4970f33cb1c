//! `sbpf-ring guard verify` on a C guard the verifier refuses: the rejection names the C
//! source line of the failing instruction (from the object's BTF line info). Needs clang,
//! and fails without it (`scripts/test.sh` installs it).

use std::process::Command;

#[test]
fn a_rejected_c_guard_points_at_its_source_line() {
    let dir = std::env::temp_dir().join(format!("sbpf-cli-guard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("unchecked.c");
    // Indexes objects[] by the entry's own object id, unchecked: out of bounds for id >= 8.
    std::fs::write(
        &src,
        "#include \"sbpf_guard.h\"\n\
         __attribute__((section(\"sbpf_guard\"), used))\n\
         sbpf_u64 guard(const struct sbpf_guard_ctx *ctx)\n\
         {\n\
         \treturn ctx->objects[ctx->sqe.obj_id].size > 4096;\n\
         }\n",
    )
    .unwrap();
    let obj = dir.join("unchecked.o");
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm-guard/include");
    let status = Command::new("clang")
        .args(["-target", "bpf", "-O2", "-g", "-c"])
        .arg(&src)
        .args(["-I", include, "-o"])
        .arg(&obj)
        .status()
        .expect("clang is required (scripts/test.sh installs it)");
    assert!(status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_sbpf-ring"))
        .args(["guard", "verify"])
        .arg(&obj)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("[out-of-bounds]") || stdout.contains("[pointer-unbounded]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("unchecked.c:5: return ctx->objects[ctx->sqe.obj_id].size > 4096;"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
