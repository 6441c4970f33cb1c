//! BPF maps as ring objects: what [`crate::Ring::attach_bpf_map`] knows of a map, and the
//! local backend's two ways to reach one.
//!
//! - A `BPF_F_MMAPABLE` array is mapped into the process once, at attach; every operation
//!   then works on the map's values directly, the very memory BPF programs read, with the
//!   same atomic accesses the local backend uses on its own objects. A read-only fd (or a
//!   frozen map, which refuses writable mappings) gets a read-only mapping and no write
//!   right.
//! - Every other map goes through one `bpf()` system call per operation, with the key and
//!   the value read from (or written to) the arena in place. READ and WRITE on a
//!   non-mmapable array cost one call per element touched (two for a partial element);
//!   FETCH_ADD64 and CAS64 on it answer `-EOPNOTSUPP`, since BPF offers no atomic
//!   read-modify-write through `bpf()`.
//!
//! The kernel module reaches every map through the map's own operations in the kernel
//! (`kmod/src/bpfmap.c`); [`MapPath`] says which path a map took.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
};

use crate::{
    abi::{opcode, Cqe, Sqe, MAP_NOEXIST, MAX_IO_LEN},
    arena::{copy, SharedMemory},
    bpf::{self, map_type, MapInfo},
    validate::rights,
    Error, ObjectId,
};

/// How operations reach an attached map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapPath {
    /// The kernel module performs them through the map's own operations, in the kernel.
    Kernel,
    /// Local backend: the values are mapped into the process (`BPF_F_MMAPABLE` arrays).
    Mmap,
    /// Local backend: one `bpf()` system call per operation.
    Syscall,
}

/// A BPF map attached to a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfMapObject {
    /// Its object id.
    pub id: ObjectId,
    /// The kernel's description of the map.
    pub info: MapInfo,
    /// [`rights`] bits: READ always, WRITE unless the fd is read-only (or, for the local
    /// backend's mapping, the map is frozen), and MAP.
    pub rights: u32,
    /// Bytes READ, WRITE and the word operations address: `max_entries` values of
    /// [`MapInfo::elem_size`] bytes for arrays, 0 for hash maps.
    pub size: u64,
    /// How operations reach it.
    pub path: MapPath,
}

/// Checks that the map can be an object; the error names why not.
pub(crate) fn check_supported(info: &MapInfo) -> Result<(), Error> {
    match info.map_type {
        map_type::ARRAY => Ok(()),
        map_type::HASH | map_type::LRU_HASH => {
            // MAP_UPDATE carries the key and the value in one arena range of at most
            // MAX_IO_LEN bytes: a hash map whose pair is larger could be attached and never
            // updated. (An array's values stay usable through READ and WRITE.)
            if u64::from(info.key_size) + u64::from(info.value_size) > u64::from(MAX_IO_LEN) {
                return Err(Error::UnsupportedMap(format!(
                    "key ({} bytes) and value ({} bytes) together exceed {MAX_IO_LEN} bytes, \
                     the longest range one entry carries",
                    info.key_size, info.value_size
                )));
            }
            Ok(())
        }
        map_type::PERCPU_ARRAY | map_type::PERCPU_HASH | map_type::LRU_PERCPU_HASH => {
            Err(Error::UnsupportedMap(
                "per-CPU maps hold one value per CPU, which entries cannot address".into(),
            ))
        }
        t => Err(Error::UnsupportedMap(format!(
            "map type {t} (array, hash and LRU hash maps are supported)"
        ))),
    }
}

/// Byte size of the addressable values of `info`'s map.
pub(crate) fn object_size(info: &MapInfo) -> u64 {
    if info.map_type == map_type::ARRAY {
        u64::from(info.max_entries) * info.elem_size()
    } else {
        0
    }
}

/// A map attached to a local ring: a duplicate of the caller's fd (the reference the ring
/// holds), and the values' mapping for mmapable arrays.
#[derive(Debug)]
pub(crate) struct LocalMap {
    fd: OwnedFd,
    pub(crate) object: BpfMapObject,
    /// The values of an mmapable array; writable only with the WRITE right.
    mapping: Option<memmap2::MmapRaw>,
}

impl LocalMap {
    /// Takes a reference on the map behind `fd` and maps its values if it can.
    pub(crate) fn attach(fd: BorrowedFd<'_>, id: u32) -> Result<LocalMap, Error> {
        let info = bpf::map_info(fd).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::EBADF) => Error::Bpf {
                what: "not a BPF map fd",
                source: e,
            },
            _ => Error::Bpf {
                what: "BPF_OBJ_GET_INFO_BY_FD",
                source: e,
            },
        })?;
        check_supported(&info)?;
        // The fd's open mode is the permission BPF gives this process over the map.
        // SAFETY: F_GETFL reads the flags of an fd the caller lent us.
        let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        if fl < 0 {
            return Err(Error::Io(io::Error::last_os_error()));
        }
        let mut rights = rights::MAP;
        match fl & libc::O_ACCMODE {
            libc::O_RDONLY => rights |= rights::READ,
            libc::O_WRONLY => rights |= rights::WRITE,
            _ => rights |= rights::READ | rights::WRITE,
        }
        let fd = fd.try_clone_to_owned()?;
        let size = object_size(&info);
        let mut mapping = None;
        if info.map_type == map_type::ARRAY && info.map_flags & bpf::F_MMAPABLE != 0 {
            let len = usize::try_from(size)
                .map_err(|_| Error::InvalidArgument("map too large"))?
                .next_multiple_of(page_size());
            let opts = {
                let mut o = memmap2::MmapOptions::new();
                o.len(len);
                o
            };
            let raw = fd.as_raw_fd();
            mapping = if rights & rights::WRITE != 0 {
                match opts.map_raw(raw) {
                    Ok(m) => Some(m),
                    // A frozen map refuses writable mappings: it is read-only to us too.
                    Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                        rights &= !rights::WRITE;
                        opts.map_raw_read_only(raw).ok()
                    }
                    // E.g. values with spin locks or timers: the kernel refuses to map
                    // them, and its bpf() path handles them.
                    Err(_) => None,
                }
            } else {
                opts.map_raw_read_only(raw).ok()
            };
        }
        let path = if mapping.is_some() {
            MapPath::Mmap
        } else {
            MapPath::Syscall
        };
        Ok(LocalMap {
            fd,
            object: BpfMapObject {
                id: ObjectId(id),
                info,
                rights,
                size,
                path,
            },
            mapping,
        })
    }

    /// The values' first byte, when they are mapped.
    pub(crate) fn values(&self) -> Option<*mut u8> {
        self.mapping.as_ref().map(|m| m.as_mut_ptr())
    }

    /// Performs a validated entry that the mapping cannot serve: the MAP_* opcodes, and
    /// every opcode on a map without a mapping. Rights were checked by the caller.
    pub(crate) fn execute(&self, sqe: &Sqe, arena: &SharedMemory, cqe: &mut Cqe) {
        cqe.res = match self.perform(sqe, arena, cqe) {
            Ok(res) => res,
            Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
        };
    }

    fn perform(&self, sqe: &Sqe, arena: &SharedMemory, cqe: &mut Cqe) -> io::Result<i32> {
        let info = &self.object.info;
        let (k, v) = (info.key_size as usize, info.value_size as usize);
        let einval = || io::Error::from_raw_os_error(libc::EINVAL);
        match sqe.opcode {
            opcode::MAP_UPDATE | opcode::MAP_LOOKUP | opcode::MAP_DELETE => {
                let want = if sqe.opcode == opcode::MAP_DELETE {
                    k
                } else {
                    k + v
                };
                if sqe.len as usize != want {
                    return Err(einval());
                }
                // `check_entry` bounded the range to the arena.
                let key = arena.range(sqe.arena_off, want).map_err(|_| einval())?;
                // SAFETY: `key + k` is inside the validated range.
                let value = unsafe { key.add(k) };
                if let Some(base) = self.values() {
                    return self.array_keyed(sqe, base, key, value);
                }
                let fd = self.fd.as_raw_fd();
                // SAFETY: the key (and value) lie in the arena range validated above, of
                // the sizes the map has; the kernel copies them in or out.
                unsafe {
                    match sqe.opcode {
                        opcode::MAP_UPDATE => bpf::update_raw(fd, key, value, sqe.val).map(|_| 0),
                        opcode::MAP_LOOKUP => bpf::lookup_raw(fd, key, value).map(|_| v as i32),
                        _ => bpf::delete_raw(fd, key).map(|_| 0),
                    }
                }
            }
            opcode::READ | opcode::WRITE | opcode::LOAD64 | opcode::STORE64 => {
                self.array_bytes(sqe, arena, cqe)
            }
            _ => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        }
    }

    /// MAP_* on a mapped array, with BPF's array semantics: the key is a `u32` index,
    /// NOEXIST answers `-EEXIST`, an index past the end `-E2BIG` (update) or `-ENOENT`
    /// (lookup), and elements cannot be deleted (`-EINVAL`).
    fn array_keyed(
        &self,
        sqe: &Sqe,
        base: *mut u8,
        key: *mut u8,
        value: *mut u8,
    ) -> io::Result<i32> {
        let info = &self.object.info;
        let err = |e| Err(io::Error::from_raw_os_error(e));
        let mut index = [0u8; 4];
        // SAFETY: the key (4 bytes: an array's key size) is in the arena, a shared side.
        unsafe { copy::<true, false>(index.as_mut_ptr(), key, 4) };
        let index = u32::from_ne_bytes(index);
        let v = info.value_size as usize;
        // Computed without `unsafe`; used only once the index is known to be below
        // max_entries, where it names a value inside the mapping.
        let elem = || base.wrapping_add(index as usize * info.elem_size() as usize);
        match sqe.opcode {
            opcode::MAP_UPDATE if index >= info.max_entries => err(libc::E2BIG),
            opcode::MAP_UPDATE if sqe.val == MAP_NOEXIST => err(libc::EEXIST),
            opcode::MAP_UPDATE => {
                // SAFETY: both ranges are in bounds, and both are shared memory accessed
                // only atomically from this process.
                unsafe { copy::<true, true>(elem(), value, v) };
                Ok(0)
            }
            opcode::MAP_LOOKUP if index >= info.max_entries => err(libc::ENOENT),
            opcode::MAP_LOOKUP => {
                // SAFETY: as above.
                unsafe { copy::<true, true>(value, elem(), v) };
                Ok(v as i32)
            }
            _ => err(libc::EINVAL),
        }
    }

    /// READ, WRITE, LOAD64 and STORE64 on an array reached through `bpf()`: one lookup per
    /// element touched, and one update per element written.
    fn array_bytes(&self, sqe: &Sqe, arena: &SharedMemory, cqe: &mut Cqe) -> io::Result<i32> {
        let info = &self.object.info;
        let elem = info.elem_size();
        let v = info.value_size as u64;
        let fd = self.fd.as_raw_fd();
        let (len, write) = match sqe.opcode {
            opcode::READ => (u64::from(sqe.len), false),
            opcode::WRITE => (u64::from(sqe.len), true),
            opcode::LOAD64 => (8, false),
            _ => (8, true),
        };
        // Bytes of the entry's own data (the arena range, or the entry's word).
        let mut word = sqe.val.to_ne_bytes();
        let mut buf = vec![0u8; elem as usize];
        let mut done = 0u64;
        while done < len {
            let off = sqe.obj_off + done;
            let index = (off / elem) as u32;
            let in_elem = off % elem;
            let n = (elem - in_elem).min(len - done);
            let key = index.to_ne_bytes();
            // SAFETY: `key` is 4 bytes (an array's key size), `buf` holds a whole element.
            unsafe { bpf::lookup_raw(fd, key.as_ptr(), buf.as_mut_ptr())? };
            let range = in_elem as usize..(in_elem + n) as usize;
            if write {
                if in_elem + n > v {
                    // The padding after a value is not the map's to store.
                    return Err(io::Error::from_raw_os_error(libc::EFAULT));
                }
                if sqe.opcode == opcode::WRITE {
                    arena
                        .read(sqe.arena_off + done, &mut buf[range])
                        .map_err(|_| io::Error::from_raw_os_error(libc::EFAULT))?;
                } else {
                    buf[range].copy_from_slice(&word[done as usize..(done + n) as usize]);
                }
                // SAFETY: as for the lookup.
                unsafe { bpf::update_raw(fd, key.as_ptr(), buf.as_ptr(), 0)? };
            } else if sqe.opcode == opcode::READ {
                arena
                    .write(sqe.arena_off + done, &buf[range])
                    .map_err(|_| io::Error::from_raw_os_error(libc::EFAULT))?;
            } else {
                word[done as usize..(done + n) as usize].copy_from_slice(&buf[range]);
            }
            done += n;
        }
        if sqe.opcode == opcode::LOAD64 {
            cqe.value = u64::from_ne_bytes(word);
        }
        Ok(match sqe.opcode {
            opcode::READ | opcode::WRITE => sqe.len as i32,
            _ => 0,
        })
    }
}

impl AsFd for LocalMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}
