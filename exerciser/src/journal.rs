//! Ground truth as JSON Lines: one record per system call the exerciser
//! makes on VFIO (and on the device regions and eventfds), one per step
//! outcome, a header first and a summary last.

use std::{fs::File, io::Write};

use serde_json::{json, Value};

/// CLOCK_MONOTONIC in nanoseconds (the clock kernel tracing uses).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The outcome of one timed system call.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub ret: i64,
    pub errno: i32,
    pub t_before_ns: u64,
    pub t_after_ns: u64,
}

impl Timed {
    pub fn ok(&self) -> bool {
        self.ret >= 0
    }
}

/// Runs a raw system call wrapper, timing it and capturing errno.
pub fn timed(f: impl FnOnce() -> i64) -> Timed {
    let t_before_ns = monotonic_ns();
    let ret = f();
    let errno = if ret < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    };
    let t_after_ns = monotonic_ns();
    Timed {
        ret,
        errno,
        t_before_ns,
        t_after_ns,
    }
}

pub fn errno_name(e: i32) -> &'static str {
    match e {
        0 => "",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ENOTTY => "ENOTTY",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => "E?",
    }
}

pub struct Journal {
    out: Option<File>,
    seq: u64,
}

impl Journal {
    pub fn new(out: Option<File>) -> Self {
        Journal { out, seq: 0 }
    }

    pub fn write(&mut self, mut v: Value) {
        self.seq += 1;
        if let Value::Object(m) = &mut v {
            m.insert("seq".into(), json!(self.seq));
        }
        if let Some(f) = &mut self.out {
            // Line-at-a-time and synced by the caller at the end: a crash
            // mid-run still leaves every finished record readable.
            let _ = writeln!(f, "{v}");
        }
    }

    /// One system call record. `call` is the syscall ("ioctl", "open",
    /// "pwrite", ...); `ioctl` carries (name, cmd) for ioctls.
    #[expect(clippy::too_many_arguments, reason = "one flat record")]
    pub fn call(
        &mut self,
        step: &str,
        call: &str,
        ioctl: Option<(&str, u32)>,
        fd: i32,
        args: Value,
        t: &Timed,
        out: Value,
    ) {
        let mut v = json!({
            "type": "call",
            "step": step,
            "call": call,
            "fd": fd,
            "args": args,
            "ret": t.ret,
            "errno": t.errno,
            "errno_name": errno_name(t.errno),
            "t_before_ns": t.t_before_ns,
            "t_after_ns": t.t_after_ns,
            "out": out,
        });
        if let Some((name, cmd)) = ioctl {
            v["ioctl"] = json!(name);
            v["cmd"] = json!(cmd);
            v["cmd_hex"] = json!(format!("{cmd:#x}"));
        }
        self.write(v);
    }

    pub fn sync(&mut self) {
        if let Some(f) = &mut self.out {
            let _ = f.flush();
            let _ = f.sync_all();
        }
    }
}

/// `0x...` rendering for addresses in records (JSON numbers lose u64
/// precision in many readers, so addresses are written both ways).
pub fn hex(v: u64) -> String {
    format!("{v:#x}")
}
