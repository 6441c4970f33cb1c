//! The kernel backend: `/dev/sbpf_ring` from the module in `kmod/`.

use std::{
    fs::{File, OpenOptions},
    io,
    os::fd::{AsRawFd, BorrowedFd},
    path::Path,
    time::Duration,
};

use crate::{
    abi::{self, ioctl, Enter, MapAttach, ObjectArg, Params, Stats, SyncOp},
    bpf::MapInfo,
    bpfmap::{BpfMapObject, MapPath},
    region::{Bytes, RingRegion},
    Cqe, Error, ObjectId, Sqe,
};

/// Where the module's device appears.
pub const DEVICE: &str = "/dev/sbpf_ring";

/// Whether the kernel module's device exists.
pub fn available() -> bool {
    Path::new(DEVICE).exists()
}

/// An open device file with its ring set up.
#[derive(Debug)]
pub(crate) struct Kernel {
    file: File,
    sqpoll: bool,
}

/// Issues `request` on `fd` with `arg`, mapping -1 to the errno.
fn ioctl_arg<T>(file: &File, request: u32, arg: &mut T) -> io::Result<i32> {
    // SAFETY: `request` is one of this device's ioctls, whose argument type is `T` (the ABI
    // sizes are encoded in the request numbers), and `arg` is valid for reads and writes.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request as _, arg as *mut T) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Kernel {
    /// Opens the device, sets the ring up, and maps the ring region and the arena.
    pub(crate) fn open(params: &mut Params) -> Result<(Kernel, RingRegion, Bytes), Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(DEVICE)
            .map_err(|e| Error::Io(io::Error::new(e.kind(), format!("{DEVICE}: {e}"))))?;
        ioctl_arg(&file, ioctl::SETUP, params).map_err(|e| Error::setup("SETUP ioctl", e))?;
        let ring_len =
            usize::try_from(params.ring_size).map_err(|_| Error::InvalidArgument("ring size"))?;
        let ring = Bytes::map_device(&file, abi::OFF_RING, ring_len)
            .map_err(|e| Error::setup("mmap of the ring", e))?;
        let region = RingRegion::new(ring, params).map_err(|e| Error::setup("ring offsets", e))?;
        let arena_len =
            usize::try_from(params.arena_size).map_err(|_| Error::InvalidArgument("arena size"))?;
        let arena = Bytes::map_device(&file, abi::OFF_ARENA, arena_len)
            .map_err(|e| Error::setup("mmap of the arena", e))?;
        let sqpoll = params.flags & abi::SETUP_SQPOLL != 0;
        Ok((Kernel { file, sqpoll }, region, arena))
    }

    pub(crate) fn sqpoll(&self) -> bool {
        self.sqpoll
    }

    /// ENTER: consume up to `to_submit` inline (no poller), wake the poller, and/or wait
    /// for `min_complete` completions.
    pub(crate) fn enter(
        &self,
        to_submit: u32,
        min_complete: u32,
        flags: u32,
        timeout: Option<Duration>,
    ) -> io::Result<u32> {
        let mut arg = Enter {
            to_submit,
            min_complete,
            flags,
            resv: 0,
            timeout_ns: timeout.map_or(0, |t| t.as_nanos().clamp(1, u64::MAX as u128) as u64),
        };
        ioctl_arg(&self.file, ioctl::ENTER, &mut arg).map(|n| n as u32)
    }

    /// Wakes a sleeping poller.
    pub(crate) fn wake(&self) {
        // A failed wake-up changes nothing the caller can act on; the next one retries.
        let _ = self.enter(0, 0, abi::ENTER_SQ_WAKEUP, None);
    }

    /// SHUTDOWN: the module consumes nothing more of this ring, stops its poller and wakes
    /// every thread waiting in ENTER or `poll()`.
    pub(crate) fn shutdown(&self) -> io::Result<()> {
        // SAFETY: SHUTDOWN takes no argument.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), ioctl::SHUTDOWN as _, 0) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn object_ioctl(&self, request: u32, id: u32, size: u64) -> Result<ObjectArg, Error> {
        let mut arg = ObjectArg { id, flags: 0, size };
        ioctl_arg(&self.file, request, &mut arg).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Error::UnknownObject(ObjectId(id)),
            _ => Error::Io(e),
        })?;
        Ok(arg)
    }

    pub(crate) fn create_object(&self, size: u64) -> Result<ObjectId, Error> {
        self.object_ioctl(ioctl::OBJ_CREATE, 0, size)
            .map(|a| ObjectId(a.id))
    }

    pub(crate) fn attach_object(&self, id: ObjectId) -> Result<u64, Error> {
        self.object_ioctl(ioctl::OBJ_ATTACH, id.0, 0)
            .map(|a| a.size)
    }

    pub(crate) fn detach_object(&self, id: ObjectId) -> Result<(), Error> {
        self.object_ioctl(ioctl::OBJ_DETACH, id.0, 0).map(|_| ())
    }

    pub(crate) fn select_object(&self, id: ObjectId) -> Result<(), Error> {
        self.object_ioctl(ioctl::OBJ_SELECT, id.0, 0).map(|_| ())
    }

    /// MAP_ATTACH: the module takes a reference on the map behind `fd`.
    pub(crate) fn attach_bpf_map(&self, fd: BorrowedFd<'_>) -> Result<BpfMapObject, Error> {
        let mut arg = MapAttach {
            fd: fd.as_raw_fd(),
            ..MapAttach::default()
        };
        ioctl_arg(&self.file, ioctl::MAP_ATTACH, &mut arg).map_err(|e| match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => Error::UnsupportedMap(
                "the module refuses this map: per-CPU or other unsupported type, values \
                 with spin locks, timers or kernel pointers, or a hash map whose key and \
                 value together exceed one entry's range (MAX_IO_LEN)"
                    .into(),
            ),
            Some(libc::EBADF) | Some(libc::EINVAL) => Error::Bpf {
                what: "not a BPF map fd",
                source: e,
            },
            Some(libc::ENOTTY) => Error::Bpf {
                what: "the loaded module predates MAP_ATTACH",
                source: e,
            },
            Some(libc::ENOSPC) => Error::TooManyObjects(crate::validate::MAX_LIMIT_OBJECTS),
            _ => Error::Bpf {
                what: "MAP_ATTACH ioctl",
                source: e,
            },
        })?;
        // The module answers the shape; the map's id and flags come from bpf() when this
        // process may ask.
        let info = crate::bpf::map_info(fd).unwrap_or(MapInfo {
            map_type: arg.map_type,
            id: 0,
            key_size: arg.key_size,
            value_size: arg.value_size,
            max_entries: arg.max_entries,
            map_flags: 0,
            btf_value_type_id: 0,
        });
        Ok(BpfMapObject {
            id: ObjectId(arg.id),
            info,
            rights: arg.rights,
            size: arg.size,
            path: MapPath::Kernel,
        })
    }

    pub(crate) fn sync_op(&self, sqe: &Sqe) -> io::Result<Cqe> {
        let mut op = SyncOp {
            sqe: *sqe,
            cqe: Cqe::default(),
        };
        ioctl_arg(&self.file, ioctl::SYNC_OP, &mut op)?;
        Ok(op.cqe)
    }

    pub(crate) fn stats(&self) -> io::Result<Stats> {
        let mut stats = Stats::default();
        ioctl_arg(&self.file, ioctl::STATS, &mut stats)?;
        Ok(stats)
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}
