//! The `bpf()` system call, for what this crate does with BPF maps: create and inspect
//! maps, update, look up and delete elements (one at a time and in batches), freeze a map,
//! and load and run the small XDP program ([`Probe`]) that reads a map from inside the
//! kernel, proving that what the ring wrote is what BPF programs see.
//!
//! Raw `syscall(SYS_bpf, …)` with `#[repr(C)]` attributes laid out as `union bpf_attr` in
//! `<linux/bpf.h>`: the kernel reads only the first `size` bytes it is given and requires the
//! rest of the attribute it knows to be zero, so each attribute is a zeroed struct with the
//! fields a command uses.
//!
//! Every call needs the kernel's permission: `CAP_BPF` (or root) on most kernels, since
//! `kernel.unprivileged_bpf_disabled` is set by default. A refusal is an `EPERM` error
//! whose message says so ([`permitted`] checks once).

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
};

/// `BPF_MAP_TYPE_*` values this crate names.
pub mod map_type {
    /// `BPF_MAP_TYPE_HASH`.
    pub const HASH: u32 = 1;
    /// `BPF_MAP_TYPE_ARRAY`.
    pub const ARRAY: u32 = 2;
    /// `BPF_MAP_TYPE_PERCPU_HASH` (refused by attach).
    pub const PERCPU_HASH: u32 = 5;
    /// `BPF_MAP_TYPE_PERCPU_ARRAY` (refused by attach).
    pub const PERCPU_ARRAY: u32 = 6;
    /// `BPF_MAP_TYPE_LRU_HASH`.
    pub const LRU_HASH: u32 = 9;
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH` (refused by attach).
    pub const LRU_PERCPU_HASH: u32 = 10;
}

/// `BPF_F_RDONLY` (map creation and `BPF_MAP_GET_FD_BY_ID`): the fd may not write.
pub const F_RDONLY: u32 = 1 << 3;
/// `BPF_F_NO_PREALLOC`: hash maps allocate elements on update.
pub const F_NO_PREALLOC: u32 = 1 << 0;
/// `BPF_F_MMAPABLE`: an array map whose values user space can `mmap`.
pub const F_MMAPABLE: u32 = 1 << 10;

mod cmd {
    pub const MAP_CREATE: i32 = 0;
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    pub const MAP_UPDATE_ELEM: i32 = 2;
    pub const MAP_DELETE_ELEM: i32 = 3;
    pub const PROG_LOAD: i32 = 5;
    pub const PROG_TEST_RUN: i32 = 10;
    pub const MAP_GET_FD_BY_ID: i32 = 14;
    pub const OBJ_GET_INFO_BY_FD: i32 = 15;
    pub const MAP_FREEZE: i32 = 22;
    pub const MAP_UPDATE_BATCH: i32 = 26;
}

/// `bpf(cmd, attr, sizeof *attr)`. Attributes have no implicit padding (the kernel refuses
/// non-zero bytes past the fields it knows, and padding is not guaranteed to be zero).
///
/// # Safety
///
/// `A` is the attribute `cmd` expects, laid out as the kernel's, and every pointer in it is
/// valid for what the command does with it (reads or writes of the sizes it names).
unsafe fn sys_bpf<A>(cmd: i32, attr: &mut A) -> io::Result<i64> {
    // SAFETY: the caller vouches for the attribute; the kernel reads and writes at most
    // `size_of::<A>()` bytes of it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut A,
            std::mem::size_of::<A>() as u32,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        Err(match e.raw_os_error() {
            Some(libc::EPERM) if cmd == cmd::MAP_CREATE || cmd == cmd::PROG_LOAD => io::Error::new(
                e.kind(),
                "bpf() refused (EPERM): it needs CAP_BPF or root \
                 (kernel.unprivileged_bpf_disabled)",
            ),
            _ => e,
        })
    } else {
        Ok(rc)
    }
}

/// Whether this process may use `bpf()`: creates and drops a one-element array map.
pub fn permitted() -> io::Result<()> {
    Map::create(map_type::ARRAY, 4, 8, 1, 0).map(drop)
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
}

#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `struct bpf_map_info`, as far as this crate reads it.
#[repr(C)]
#[derive(Default)]
struct RawMapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
    ifindex: u32,
    btf_vmlinux_value_type_id: u32,
    netns_dev: u64,
    netns_ino: u64,
    btf_id: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    _pad: u32,
    map_extra: u64,
}

/// What the kernel says of a map (`BPF_OBJ_GET_INFO_BY_FD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapInfo {
    /// [`map_type`].
    pub map_type: u32,
    /// The map's id.
    pub id: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Elements.
    pub max_entries: u32,
    /// `BPF_F_*` flags the map was created with.
    pub map_flags: u32,
    /// The BTF type of the value, 0 without BTF.
    pub btf_value_type_id: u32,
}

impl MapInfo {
    /// Bytes between consecutive values of an array map (the value size rounded up to 8).
    pub const fn elem_size(&self) -> u64 {
        (self.value_size as u64 + 7) & !7
    }
}

/// The kernel's description of the map behind `fd`; `EINVAL` if `fd` is not a BPF map.
pub fn map_info(fd: BorrowedFd<'_>) -> io::Result<MapInfo> {
    let mut info = RawMapInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of::<RawMapInfo>() as u32,
        info: &mut info as *mut RawMapInfo as u64,
    };
    // SAFETY: `info` is writable for `info_len` bytes.
    unsafe { sys_bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr)? };
    Ok(MapInfo {
        map_type: info.map_type,
        id: info.id,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        map_flags: info.map_flags,
        btf_value_type_id: info.btf_value_type_id,
    })
}

/// `BPF_MAP_UPDATE_ELEM` with the key and the value behind raw pointers.
///
/// # Safety
///
/// `key` is readable for the map's key size and `value` for its value size (the kernel
/// copies them; concurrent writers can tear them, nothing worse).
pub(crate) unsafe fn update_raw(
    fd: RawFd,
    key: *const u8,
    value: *const u8,
    flags: u64,
) -> io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: fd as u32,
        key: key as u64,
        value: value as u64,
        flags,
        ..ElemAttr::default()
    };
    // SAFETY: the caller vouches for both pointers.
    unsafe { sys_bpf(cmd::MAP_UPDATE_ELEM, &mut attr).map(drop) }
}

/// `BPF_MAP_LOOKUP_ELEM` into `value`.
///
/// # Safety
///
/// `key` is readable for the map's key size and `value` writable for its value size.
pub(crate) unsafe fn lookup_raw(fd: RawFd, key: *const u8, value: *mut u8) -> io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: fd as u32,
        key: key as u64,
        value: value as u64,
        ..ElemAttr::default()
    };
    // SAFETY: the caller vouches for both pointers.
    unsafe { sys_bpf(cmd::MAP_LOOKUP_ELEM, &mut attr).map(drop) }
}

/// `BPF_MAP_DELETE_ELEM`.
///
/// # Safety
///
/// `key` is readable for the map's key size.
pub(crate) unsafe fn delete_raw(fd: RawFd, key: *const u8) -> io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: fd as u32,
        key: key as u64,
        ..ElemAttr::default()
    };
    // SAFETY: the caller vouches for the pointer.
    unsafe { sys_bpf(cmd::MAP_DELETE_ELEM, &mut attr).map(drop) }
}

/// A BPF map this process owns an fd of.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    info: MapInfo,
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Map {
    /// `BPF_MAP_CREATE` without BTF.
    pub fn create(
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
    ) -> io::Result<Map> {
        let mut attr = MapCreateAttr {
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags,
            ..MapCreateAttr::default()
        };
        // SAFETY: the attribute holds no pointer.
        let fd = unsafe { sys_bpf(cmd::MAP_CREATE, &mut attr)? };
        // SAFETY: the kernel returned a new fd that nothing else owns.
        Map::from_fd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    /// Takes an fd of an existing map; `EINVAL` if it is not a map.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Map> {
        let info = map_info(fd.as_fd())?;
        Ok(Map { fd, info })
    }

    /// A new fd of this map opened with `BPF_F_RDONLY` (`BPF_MAP_GET_FD_BY_ID`, which needs
    /// `CAP_SYS_ADMIN`).
    pub fn open_read_only(&self) -> io::Result<Map> {
        let mut attr = GetFdAttr {
            id: self.info.id,
            next_id: 0,
            open_flags: F_RDONLY,
        };
        // SAFETY: the attribute holds no pointer.
        let fd = unsafe { sys_bpf(cmd::MAP_GET_FD_BY_ID, &mut attr)? };
        // SAFETY: a new fd that nothing else owns.
        Map::from_fd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    /// The kernel's description of the map.
    pub fn info(&self) -> MapInfo {
        self.info
    }

    fn check(&self, key: &[u8], value: Option<usize>) -> io::Result<()> {
        let bad = key.len() != self.info.key_size as usize
            || value.is_some_and(|v| v != self.info.value_size as usize);
        if bad {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "key or value of the wrong size for this map",
            ));
        }
        Ok(())
    }

    /// `BPF_MAP_UPDATE_ELEM`: one system call.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
        self.check(key, Some(value.len()))?;
        // SAFETY: both slices have the map's sizes (checked).
        unsafe { update_raw(self.fd.as_raw_fd(), key.as_ptr(), value.as_ptr(), flags) }
    }

    /// `BPF_MAP_LOOKUP_ELEM`: the value, or `None` when there is no such element.
    pub fn lookup(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.check(key, None)?;
        let mut value = vec![0u8; self.info.value_size as usize];
        // SAFETY: `key` has the key size (checked), `value` the value size.
        match unsafe { lookup_raw(self.fd.as_raw_fd(), key.as_ptr(), value.as_mut_ptr()) } {
            Ok(()) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `BPF_MAP_DELETE_ELEM`: whether the element existed.
    pub fn delete(&self, key: &[u8]) -> io::Result<bool> {
        self.check(key, None)?;
        // SAFETY: `key` has the key size (checked).
        match unsafe { delete_raw(self.fd.as_raw_fd(), key.as_ptr()) } {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `BPF_MAP_UPDATE_BATCH`: `keys` and `values` hold the same number of elements, packed;
    /// returns how many the kernel updated.
    pub fn update_batch(&self, keys: &[u8], values: &[u8], flags: u64) -> io::Result<u32> {
        let (k, v) = (self.info.key_size as usize, self.info.value_size as usize);
        let count = keys.len() / k;
        if keys.len() % k != 0 || values.len() != count * v {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "keys and values do not hold the same number of elements",
            ));
        }
        let mut attr = BatchAttr {
            keys: keys.as_ptr() as u64,
            values: values.as_ptr() as u64,
            count: count as u32,
            map_fd: self.fd.as_raw_fd() as u32,
            elem_flags: flags,
            ..BatchAttr::default()
        };
        // SAFETY: `keys` and `values` hold `count` elements of the map's sizes (checked).
        unsafe { sys_bpf(cmd::MAP_UPDATE_BATCH, &mut attr)? };
        Ok(attr.count)
    }

    /// `BPF_MAP_FREEZE`: from now on, no system call may write the map (BPF programs still
    /// may). Fails with `EBUSY` while a writable mapping of it exists.
    pub fn freeze(&self) -> io::Result<()> {
        let mut attr = [self.fd.as_raw_fd() as u32, 0];
        // SAFETY: the attribute holds no pointer.
        unsafe { sys_bpf(cmd::MAP_FREEZE, &mut attr).map(drop) }
    }
}

/// One BPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// The opcodes the probe uses (`<linux/bpf.h>` class | size | mode).
const LDX_W: u8 = 0x61;
const LDX_DW: u8 = 0x79;
const LDX_B: u8 = 0x71;
const STX_DW: u8 = 0x7b;
const STX_B: u8 = 0x73;
const ST_W: u8 = 0x62;
const MOV64_REG: u8 = 0xbf;
const MOV64_IMM: u8 = 0xb7;
const ADD64_IMM: u8 = 0x07;
const JGT_REG: u8 = 0x2d;
const JEQ_IMM: u8 = 0x15;
const LD_IMM64: u8 = 0x18;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const PSEUDO_MAP_FD: u8 = 1;
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const PROG_TYPE_XDP: u32 = 6;
const XDP_PASS: i32 = 2;

/// Packet offset of the probe's status word: 1 found, 2 absent.
const STATUS_OFF: usize = 0;
/// Packet offset of the key.
const KEY_OFF: usize = 16;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    /// Explicit, so that it is zero: the kernel refuses non-zero bytes past the fields it
    /// knows.
    _pad: u32,
}

/// A BPF program in the kernel that looks one map up, as XDP, tc or tracing programs do:
/// `bpf_map_lookup_elem` on the key it finds in its packet, the value copied back into the
/// packet. Run with `BPF_PROG_TEST_RUN`, it tells what a BPF program sees in the map, which
/// is the proof that writes through the ring reach the memory the kernel uses.
#[derive(Debug)]
pub struct Probe {
    prog: OwnedFd,
    key_size: usize,
    value_size: usize,
    value_off: usize,
    packet_len: usize,
}

/// Largest value a [`Probe`] copies.
pub const PROBE_MAX_VALUE: u32 = 1024;

impl Probe {
    /// Loads the program for `map` (its key and value sizes are fixed into it).
    pub fn load(map: BorrowedFd<'_>) -> io::Result<Probe> {
        let info = map_info(map)?;
        if info.value_size > PROBE_MAX_VALUE || info.key_size > 512 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the probe reads values up to 1024 bytes and keys up to 512",
            ));
        }
        let (k, v) = (info.key_size as usize, info.value_size as usize);
        let value_off = KEY_OFF + k.next_multiple_of(8);
        let packet_len = (value_off + v.next_multiple_of(8)).max(64);
        let mut p = vec![
            insn(LDX_W, 6, 1, 0, 0), // r6 = ctx->data
            insn(LDX_W, 7, 1, 4, 0), // r7 = ctx->data_end
            insn(MOV64_REG, 2, 6, 0, 0),
            insn(ADD64_IMM, 2, 0, 0, packet_len as i32),
            insn(JGT_REG, 2, 7, 0, 0), // patched: to `short`
            insn(LD_IMM64, 1, PSEUDO_MAP_FD, 0, map.as_raw_fd()),
            insn(0, 0, 0, 0, 0),
            insn(MOV64_REG, 2, 6, 0, 0),
            insn(ADD64_IMM, 2, 0, 0, KEY_OFF as i32),
            insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM),
            insn(JEQ_IMM, 0, 0, 0, 0), // patched: to `absent`
        ];
        let mut c = 0;
        while c + 8 <= v {
            p.push(insn(LDX_DW, 1, 0, c as i16, 0));
            p.push(insn(STX_DW, 6, 1, (value_off + c) as i16, 0));
            c += 8;
        }
        while c < v {
            p.push(insn(LDX_B, 1, 0, c as i16, 0));
            p.push(insn(STX_B, 6, 1, (value_off + c) as i16, 0));
            c += 1;
        }
        p.push(insn(ST_W, 6, 0, STATUS_OFF as i16, 1));
        p.push(insn(MOV64_IMM, 0, 0, 0, XDP_PASS));
        p.push(insn(EXIT, 0, 0, 0, 0));
        let absent = p.len();
        p.push(insn(ST_W, 6, 0, STATUS_OFF as i16, 2));
        p.push(insn(MOV64_IMM, 0, 0, 0, XDP_PASS));
        p.push(insn(EXIT, 0, 0, 0, 0));
        let short = p.len();
        p.push(insn(MOV64_IMM, 0, 0, 0, 0));
        p.push(insn(EXIT, 0, 0, 0, 0));
        p[4].off = (short - 5) as i16;
        p[10].off = (absent - 11) as i16;

        let license = c"GPL";
        let mut log = vec![0u8; 1 << 16];
        let mut attr = ProgLoadAttr {
            prog_type: PROG_TYPE_XDP,
            insn_cnt: p.len() as u32,
            insns: p.as_ptr() as u64,
            license: license.as_ptr() as u64,
            ..ProgLoadAttr::default()
        };
        attr.prog_name[..10].copy_from_slice(b"sbpf_probe");
        // SAFETY: `insns` holds `insn_cnt` instructions and `license` is a C string, both
        // alive across the call.
        let fd = match unsafe { sys_bpf(cmd::PROG_LOAD, &mut attr) } {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Err(e),
            Err(_) => {
                // Once more with the verifier's log, for the error message.
                attr.log_level = 1;
                attr.log_size = log.len() as u32;
                attr.log_buf = log.as_mut_ptr() as u64;
                // SAFETY: as above, and `log_buf` is writable for `log_size` bytes.
                match unsafe { sys_bpf(cmd::PROG_LOAD, &mut attr) } {
                    Ok(fd) => fd,
                    Err(e) => {
                        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                        return Err(io::Error::new(
                            e.kind(),
                            format!(
                                "BPF_PROG_LOAD of the probe: {e}: {}",
                                String::from_utf8_lossy(&log[..end])
                            ),
                        ));
                    }
                }
            }
        };
        Ok(Probe {
            // SAFETY: a new fd that nothing else owns.
            prog: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
            key_size: k,
            value_size: v,
            value_off,
            packet_len,
        })
    }

    /// Runs the program once (`BPF_PROG_TEST_RUN`) on `key`: the value it found, or `None`
    /// when the map has no such element.
    pub fn lookup(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        if key.len() != self.key_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "key of the wrong size for this probe",
            ));
        }
        let mut packet = vec![0u8; self.packet_len];
        packet[KEY_OFF..KEY_OFF + key.len()].copy_from_slice(key);
        let mut out = vec![0u8; self.packet_len + 256];
        let mut attr = TestRunAttr {
            prog_fd: self.prog.as_raw_fd() as u32,
            data_size_in: packet.len() as u32,
            data_size_out: out.len() as u32,
            data_in: packet.as_ptr() as u64,
            data_out: out.as_mut_ptr() as u64,
            repeat: 1,
            ..TestRunAttr::default()
        };
        // SAFETY: `data_in` is readable for `data_size_in` bytes and `data_out` writable for
        // `data_size_out`.
        unsafe { sys_bpf(cmd::PROG_TEST_RUN, &mut attr)? };
        if attr.retval != XDP_PASS as u32 || (attr.data_size_out as usize) < self.packet_len {
            return Err(io::Error::other(format!(
                "the probe returned {} with {} bytes",
                attr.retval, attr.data_size_out
            )));
        }
        let status = u32::from_ne_bytes(out[STATUS_OFF..STATUS_OFF + 4].try_into().unwrap());
        match status {
            1 => Ok(Some(
                out[self.value_off..self.value_off + self.value_size].to_vec(),
            )),
            2 => Ok(None),
            s => Err(io::Error::other(format!("the probe left status {s}"))),
        }
    }

    /// The 64-bit word at `off` of the value under `key`, as the program sees it.
    pub fn lookup_u64(&self, key: &[u8], off: usize) -> io::Result<Option<u64>> {
        Ok(self
            .lookup(key)?
            .map(|v| u64::from_ne_bytes(v[off..off + 8].try_into().unwrap())))
    }
}
