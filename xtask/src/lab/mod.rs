//! The VM lab: boots real Debian 6.12 kernels in QEMU with VFIO passthrough
//! and virtio-iommu, runs the exerciser (and optionally vfio-trace) inside,
//! and judges the run against QEMU's own trace log.
//!
//! `cargo xtask lab --list`, `cargo xtask lab <scenario>`; artifacts go to
//! `target/lab/<scenario>/` (console.log, exerciser.jsonl, qemu-trace.log,
//! dmesg.txt, summary.json, ...). Downloads and built initramfs images are
//! cached machine-wide in `~/.cache/vfio-trace/lab/`.

mod accel;
pub mod applies;
pub mod bench;
mod console;
mod debs;
mod init;
mod initramfs;
mod judge;
pub mod kernels;
mod kfault;
mod kheaders;
pub mod live_test;
pub mod matrix;
mod matrix_doc;
pub(crate) mod oracle;
mod qemu;
mod rules;
mod scenarios;
pub mod soak;
mod vmm_fault;
mod vsock;

use std::{
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context, Result};

use crate::step::{self, cmd, step, workspace_root};

#[derive(clap::Args, Debug, Clone)]
pub struct LabArgs {
    /// Scenario to run (see --list).
    pub scenario: Option<String>,
    /// List the scenarios.
    #[arg(long)]
    pub list: bool,
    /// The Debian kernel the VMs boot: 6.1, 6.12, 7.2 (pinned exact
    /// versions, see --kernels), newest (the newest kernel in Debian
    /// unstable today), or an exact Debian ABI (6.1.0-50, 6.12.95+deb12,
    /// 7.2.13+deb14). Default: $VFIO_TRACE_LAB_KERNEL, else 6.12.
    #[arg(long)]
    pub kernel: Option<String>,
    /// The kernel of the guest level (nested L2); default: --kernel.
    #[arg(long)]
    pub guest_kernel: Option<String>,
    /// List the pinned kernels (what 6.1 / 6.12 / 7.2 mean, what CI boots).
    #[arg(long)]
    pub list_kernels: bool,
    /// matrix: the kernels to run (comma-separated --kernel values;
    /// default: every pinned kernel).
    #[arg(long)]
    pub kernels: Option<String>,
    /// matrix: the scenarios to run (comma-separated; default: all).
    #[arg(long)]
    pub scenarios: Option<String>,
    /// matrix: run nothing, write docs/compatibility.md again from the runs
    /// kept in target/lab/matrix/.
    #[arg(long)]
    pub doc_only: bool,
    /// matrix: a static vfio-trace for the arm64 VMs (--tracer is the
    /// x86_64 one); built when not given.
    #[arg(long)]
    pub tracer_arm64: Option<PathBuf>,
    /// Only build the lab's fault module against --kernel's headers for
    /// this architecture (amd64 or arm64), no VM.
    #[arg(long, value_name = "ARCH")]
    pub build_fault_module: Option<String>,
    /// A static `vfio-trace` binary for the guest's architecture: copied
    /// into the VM and run in the background around the exerciser.
    /// Also taken from $VFIO_TRACE_LAB_TRACER.
    #[arg(long)]
    pub tracer: Option<PathBuf>,
    /// Arguments for vfio-trace inside the VM; `$LAB_OUT` is the VM's
    /// results directory (collected into target/lab/<scenario>/),
    /// `$LAB_NODE` the level's node name (guest; l1 and l2 when nested).
    #[arg(long, default_value = "record -o $LAB_OUT/trace.vft --node $LAB_NODE")]
    pub tracer_args: String,
    /// Seconds /init waits, after vfio-trace said it is ready (`recording
    /// to`: probes attached; an agent's `connected to`), before the exerciser.
    #[arg(long, default_value_t = 1)]
    pub tracer_settle: u32,
    /// Exerciser steps to run (comma-separated; default: all default steps).
    #[arg(long)]
    pub steps: Option<String>,
    /// Extra exerciser arguments, e.g. `--loop 1000` (a MAP/UNMAP benchmark
    /// in the VM: the verdict then reports ns/pair and skips the oracle).
    #[arg(long, allow_hyphen_values = true)]
    pub exerciser_args: Option<String>,
    /// With --tracer: skip the fault pass (the second boot that runs each
    /// fault step and checks vfio-trace reports exactly its rule).
    #[arg(long)]
    pub no_faults: bool,
    /// Hard timeout in seconds (default: the scenario's own).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// nested only: the whole chain live on this terminal. vfio-trace here
    /// is the aggregator and terminal UI; agents in L1 (host probes) and L2
    /// (guest probes) stream to it over virtio-serial while the exerciser
    /// loops in L2 with periodic fault steps; `q` quits and stops the VMs.
    /// Runs `setup` and builds the static vfio-trace when --tracer is not
    /// given. Artifacts in target/lab/nested-live/.
    #[arg(long)]
    pub live: bool,
    /// QEMU accelerator: tcg (single-threaded), tcg-mt (multi-threaded
    /// TCG) or kvm. Default: kvm for the single-level x86 scenario if it
    /// boots a guest here (checked once per machine), else tcg.
    #[arg(long)]
    pub accel: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    /// Debian's architecture name.
    /// This machine's architecture.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }
    pub fn deb(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
    pub fn musl(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }
    pub fn qemu(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
        }
    }
}

/// What every scenario gets: where to put artifacts, the binaries, options.
pub struct Ctx<'a> {
    pub args: &'a LabArgs,
    pub name: &'static str,
    pub out: PathBuf,
    pub started: Instant,
}

impl Ctx<'_> {
    /// The `-accel` value: `--accel`, else the scenario's default.
    pub fn accel(&self, default: &str) -> Result<&'static str> {
        Self::accel_value(self.args.accel.as_deref().unwrap_or(default))
    }

    /// Like `accel`, but without `--accel` an x86 guest gets KVM where KVM
    /// really works (see accel.rs).
    pub fn accel_or_kvm(
        &self,
        default: &str,
        arch: Arch,
        boot: &scenarios::Boot,
    ) -> Result<&'static str> {
        if self.args.accel.is_none()
            && arch == Arch::X86_64
            && accel::kvm_works(&boot.kernel, &boot.busybox)?
        {
            return Ok("kvm");
        }
        self.accel(default)
    }

    fn accel_value(name: &str) -> Result<&'static str> {
        match name {
            "tcg" => Ok("tcg,thread=single"),
            "tcg-mt" => Ok("tcg,thread=multi"),
            "kvm" => Ok("kvm"),
            a => bail!("--accel {a}: use tcg, tcg-mt or kvm"),
        }
    }

    /// `--tracer`, else $VFIO_TRACE_LAB_TRACER.
    pub fn tracer(&self) -> Option<PathBuf> {
        self.args
            .tracer
            .clone()
            .or_else(|| std::env::var_os("VFIO_TRACE_LAB_TRACER").map(PathBuf::from))
    }

    pub fn exerciser_args(&self) -> String {
        let mut a = match &self.args.steps {
            Some(s) => format!("--steps {s}"),
            None => String::new(),
        };
        if let Some(x) = &self.args.exerciser_args {
            a = format!("{a} {x}");
        }
        a.trim().to_string()
    }

    /// `--exerciser-args` asks for the MAP/UNMAP loop (a benchmark).
    pub fn is_loop(&self) -> bool {
        self.args
            .exerciser_args
            .as_deref()
            .is_some_and(|a| a.contains("--loop"))
    }

    /// The fault pass runs with a tracer, on the default (clean) steps.
    pub fn fault_pass(&self) -> bool {
        self.tracer().is_some()
            && !self.args.no_faults
            && self.args.steps.is_none()
            && self.args.exerciser_args.is_none()
    }

    pub fn timeout(&self, default_s: u64) -> std::time::Duration {
        std::time::Duration::from_secs(self.args.timeout.unwrap_or(default_s))
    }
}

pub fn run(args: &LabArgs) -> Result<()> {
    if args.list_kernels {
        println!("pinned lab kernels (--kernel <series> or <ABI>; CI boots these):");
        for p in kernels::PINNED {
            println!("  {:6} {:16} {}", p.series, p.abi, p.suite);
        }
        println!("  newest: the newest kernel in Debian unstable (resolved with apt)");
        return Ok(());
    }
    if let Some(a) = &args.build_fault_module {
        kernels::select(args.kernel.as_deref(), args.guest_kernel.as_deref());
        let arch = match a.as_str() {
            "amd64" | "x86_64" => Arch::X86_64,
            "arm64" | "aarch64" => Arch::Arm64,
            _ => bail!("--build-fault-module {a}: amd64 or arm64"),
        };
        let share = workspace_root().join("target/lab/kfault-check");
        let ko = step("the lab's fault module", || kfault::build(arch, &share))?;
        println!("{}", ko.display());
        return Ok(());
    }
    if args.list || args.scenario.is_none() {
        println!("lab scenarios (cargo xtask lab <name>):");
        for s in scenarios::ALL {
            println!("  {:12} {}", s.name, s.about);
        }
        println!(
            "  {:12} every scenario on every pinned kernel (--kernels, --scenarios); writes docs/compatibility.md",
            "matrix"
        );
        if args.scenario.is_none() && !args.list {
            bail!("no scenario given");
        }
        return Ok(());
    }
    let name = args.scenario.as_deref().unwrap_or_default();
    if name == "matrix" {
        if !step::is_root() {
            bail!("the lab needs root (apt downloads, 9p shares as root)");
        }
        return matrix::run(args);
    }
    let sc = scenarios::ALL
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("unknown scenario `{name}` (see --list)"))?;
    if !step::is_root() {
        bail!("the lab needs root (apt downloads, 9p shares as root)");
    }
    let mut dir = sc.name.to_string();
    let live_args;
    let args = if args.live {
        if sc.name != "nested" {
            bail!("--live is for the nested scenario");
        }
        dir.push_str("-live");
        live_args = live_args_for(args)?;
        &live_args
    } else {
        args
    };
    kernels::select(args.kernel.as_deref(), args.guest_kernel.as_deref());
    let _lock = step("VM lock (one lab VM at a time on this machine)", vm_lock)?;
    let out = workspace_root().join("target/lab").join(dir);
    step("fresh artifact directory", || fresh_dir(&out))?;
    let ctx = Ctx {
        args,
        name: sc.name,
        out,
        started: Instant::now(),
    };
    let result = (sc.run)(&ctx);
    // Which kernels this run booted (the matrix reads it).
    fs::write(ctx.out.join("kernels.json"), kernels::record_json()).ok();
    if let Some(na) = result
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<applies::NotApplicable>())
    {
        let v = serde_json::json!({ "release": na.release, "evidence": na.evidence });
        fs::write(
            ctx.out.join("not-applicable.json"),
            serde_json::to_vec_pretty(&v)?,
        )?;
        println!("lab {}: SKIP, {na}", sc.name);
        // Not a pass, not a failure: its own exit code (README).
        std::process::exit(NOT_APPLICABLE_EXIT);
    }
    result
}

/// Every scenario's name (scenarios::ALL).
pub fn scenarios_names() -> Vec<&'static str> {
    scenarios::ALL.iter().map(|s| s.name).collect()
}

/// `cargo xtask lab` exits with this when the scenario does not apply to
/// the chosen kernel (the reason is printed and in not-applicable.json).
pub const NOT_APPLICABLE_EXIT: i32 = 3;

/// `--live` on a fresh machine: setup, and the static vfio-trace (for the
/// VMs and this terminal) unless --tracer names one; the agents' arguments.
fn live_args_for(args: &LabArgs) -> Result<LabArgs> {
    let mut a = args.clone();
    crate::setup::run(&crate::setup::SetupArgs::default())?;
    if a.tracer.is_none() && std::env::var_os("VFIO_TRACE_LAB_TRACER").is_none() {
        let t = step(
            "vfio-trace, static, x86_64 (the VMs and this terminal)",
            || crate::build::musl_binary("x86_64-unknown-linux-musl", "vfio-trace"),
        )?;
        a.tracer = Some(t);
    }
    a.tracer_args = scenarios::LIVE_AGENT_ARGS.to_string();
    Ok(a)
}

/// An exclusive flock on the machine-wide cache: TCG VMs are CPU-bound and
/// time out when several run at once. Held until the returned file drops.
fn vm_lock() -> Result<fs::File> {
    use std::os::fd::AsRawFd;
    let dir = debs::cache_root();
    fs::create_dir_all(&dir)?;
    let f = fs::File::create(dir.join("vm.lock"))?;
    // SAFETY: flock on a file we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        eprintln!("    another lab VM is running; waiting for it");
        // SAFETY: as above, blocking.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!(
                "flock {}: {}",
                dir.join("vm.lock").display(),
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(f)
}

/// Empties `dir` (artifacts of an earlier run must not be mistaken for
/// this run's).
fn fresh_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir.join("bin"))?;
    eprintln!("    {}", dir.display());
    Ok(())
}

/// Builds the exerciser for `arch` and copies it (and the tracer, if
/// given) to `<share>/bin/`.
pub fn stage_binaries(ctx: &Ctx, arch: Arch, share: &Path) -> Result<()> {
    step(&format!("exerciser for {}", arch.musl()), || {
        let mut c = cmd(
            "cargo",
            [
                "build",
                "--release",
                "-p",
                "exerciser",
                "--target",
                arch.musl(),
            ],
        );
        c.current_dir(workspace_root());
        step::run(&mut c)?;
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let bin = target_dir.join(arch.musl()).join("release/exerciser");
        fs::create_dir_all(share.join("bin"))?;
        fs::copy(&bin, share.join("bin/exerciser"))
            .with_context(|| format!("copying {}", bin.display()))?;
        Ok(())
    })?;
    if let Some(t) = &ctx.tracer() {
        step("vfio-trace binary for the VM", || {
            let head = fs::read(t).with_context(|| format!("reading --tracer {}", t.display()))?;
            let machine = head.get(18..20).map(|b| u16::from_le_bytes([b[0], b[1]]));
            let want = match arch {
                Arch::X86_64 => 62,
                Arch::Arm64 => 183,
            };
            if !head.starts_with(b"\x7fELF") || machine != Some(want) {
                bail!(
                    "{} is not an ELF binary for {} (build it with --target {})",
                    t.display(),
                    arch.deb(),
                    arch.musl()
                );
            }
            fs::copy(t, share.join("bin/vfio-trace"))?;
            Ok(())
        })?;
    }
    Ok(())
}
