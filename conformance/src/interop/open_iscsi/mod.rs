//! The open-iscsi suite: Linux's kernel initiator, in a QEMU guest, against a
//! target on the host — tgtd today, ours once it serves.
//!
//! One guest boot runs every step in order (a boot costs ~12 s under TCG).
//! Steps are shell functions (`steps.sh`, on top of `lib.sh`) that print
//! `@@` markers; the host reads them, answers the guest's requests to
//! reconfigure, restart, stop or start the target or to cut its connections
//! (through the [`Proxy`] between the guest and the target), and enforces a
//! time budget per step. A step that overruns is failed with the end of the
//! console, QEMU is killed, and a new guest runs the steps that are left.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{Error, IoContext, Result, at};
use super::image::{self, GuestImage};
use super::proxy::Proxy;
use super::qemu::{BootSpec, Guest, Next};
use super::target::{
    Backing, Credentials, HarnessTarget, Lun, Stop, TargetConfig, TargetUnderTest, Tgtd,
};
use crate::report::{Case, Outcome, Report};

/// The suite's name in reports.
const SUITE: &str = "open-iscsi";
/// The IQN of the target under test.
pub const TARGET_IQN: &str = "iqn.2024-01.org.iscsi-harness:interop";
/// An initiator that the `acl` profile allows, which is not the guest.
const OTHER_INITIATOR: &str = "iqn.2024-01.org.iscsi-harness:somebody-else";
const LUN1_BYTES: u64 = 64 << 20;
const LUN2_BYTES: u64 = 32 << 20;
const CHAP: (&str, &str) = ("harness-initiator", "in-secret-12345");
const MUTUAL: (&str, &str) = ("harness-target", "out-secret-67890");
/// The proxy cuts the connection once this much has gone to the target
/// after the guest asked for it: well inside the 16 MiB write.
const CUT_AFTER_BYTES: u64 = 3 << 20;

/// The negotiation values the forced profiles impose, and what
/// `iscsiadm -m session -P 3` must then show.
const SMALL_BURSTS: &[(&str, &str)] = &[
    ("MaxRecvDataSegmentLength", "4096"),
    ("FirstBurstLength", "8192"),
    ("MaxBurstLength", "16384"),
    ("ImmediateData", "Yes"),
    ("InitialR2T", "No"),
];
const EXPECT_SMALL_BURSTS: &str = "MaxXmitDataSegmentLength=4096 FirstBurstLength=8192 \
     MaxBurstLength=16384 ImmediateData=Yes InitialR2T=No";
const R2T_ONLY: &[(&str, &str)] = &[
    ("MaxRecvDataSegmentLength", "8192"),
    ("MaxBurstLength", "32768"),
    ("ImmediateData", "No"),
    ("InitialR2T", "Yes"),
];
const EXPECT_R2T_ONLY: &str =
    "MaxXmitDataSegmentLength=8192 MaxBurstLength=32768 ImmediateData=No InitialR2T=Yes";

/// One step of the suite.
#[derive(Debug, Clone, Copy)]
pub struct StepDef {
    pub name: &'static str,
    /// What it proves, for `--help`-like listings.
    pub about: &'static str,
    budget_secs: u64,
}

impl StepDef {
    pub fn budget(&self) -> Duration {
        Duration::from_secs(self.budget_secs)
    }
}

/// Every step, in the order a guest runs them.
pub const STEPS: &[StepDef] = &[
    StepDef {
        name: "discovery-login",
        about: "SendTargets discovery lists the target; login; LUNs 1 and 2 show with their sizes",
        budget_secs: 120,
    },
    StepDef {
        name: "ext4-roundtrip",
        about: "partition, mke2fs -t ext4, write files, sync, umount, e2fsck -f -n, remount, verify",
        budget_secs: 180,
    },
    StepDef {
        name: "crc32c-digests",
        about: "the same with CRC32C header and data digests",
        budget_secs: 180,
    },
    StepDef {
        name: "forced-small-bursts",
        about: "the same with MaxRecvDataSegmentLength 4096, FirstBurstLength 8192, MaxBurstLength 16384",
        budget_secs: 180,
    },
    StepDef {
        name: "forced-r2t-only",
        about: "the same with ImmediateData=No, InitialR2T=Yes, MaxBurstLength 32768",
        budget_secs: 180,
    },
    StepDef {
        name: "chap-one-way",
        about: "one-way CHAP login",
        budget_secs: 90,
    },
    StepDef {
        name: "chap-mutual",
        about: "mutual CHAP login",
        budget_secs: 90,
    },
    StepDef {
        name: "chap-wrong-secret",
        about: "a wrong CHAP secret is refused with an authorization error",
        budget_secs: 90,
    },
    StepDef {
        name: "acl-refused",
        about: "an initiator outside the allow list is refused",
        budget_secs: 90,
    },
    StepDef {
        name: "connection-drop",
        about: "the connection drops during a 16 MiB write; open-iscsi reconnects; fsck clean",
        budget_secs: 300,
    },
    StepDef {
        name: "target-restart",
        about: "the target process is killed and restarted under a live session; synced data intact",
        budget_secs: 240,
    },
    StepDef {
        name: "portal-unreachable",
        about: "with the route down (No route to host), then the target down, iscsiadm reports the error; once back, discovery and login work",
        budget_secs: 200,
    },
];

/// Which target the guest logs in to.
#[derive(Debug, Clone)]
pub enum TargetKind {
    /// tgt's daemon (Debian package `tgt`).
    Tgtd,
    /// Our own target: this `iscsi-harness` executable's `target` command.
    Harness { binary: PathBuf },
}

#[derive(Debug, Clone)]
pub struct Options {
    pub target: TargetKind,
    /// Downloads and built images (see [`image::default_cache_dir`]).
    pub cache_dir: PathBuf,
    /// Write JUnit XML here.
    pub junit: Option<PathBuf>,
    /// Run only these steps (by name); empty runs them all.
    pub only: Vec<String>,
    /// Write the guest's whole console here (default: in the cache folder).
    pub console_log: Option<PathBuf>,
    /// Echo the guest's console to stderr as it comes.
    pub echo_console: bool,
    /// Print each step's verdict to stderr as it comes.
    pub progress: bool,
    /// Guests to boot at most (a step that hangs costs one).
    pub max_boots: usize,
    /// Multiplies every step's time budget (raise it on a slow machine).
    pub budget_factor: f64,
}

impl Options {
    pub fn new(target: TargetKind) -> Self {
        Self {
            target,
            cache_dir: image::default_cache_dir(),
            junit: None,
            only: Vec::new(),
            console_log: None,
            echo_console: false,
            progress: false,
            max_boots: 3,
            budget_factor: 1.0,
        }
    }
}

/// Runs the suite. `Err` only when it could not run at all (no QEMU, no
/// kernel, target will not start); failed steps are in the [`Report`].
pub fn run(opts: &Options) -> Result<Report> {
    let started = Instant::now();
    let steps = selected(&opts.only)?;
    let image = image::ensure(&opts.cache_dir)?;
    let image_time = started.elapsed();
    let work = tempfile::Builder::new()
        .prefix("iscsi-harness-open-iscsi-")
        .tempdir()
        .ctx(|| "create a scratch folder".into())?;
    let port = super::qemu::free_port()?;
    let mut target: Box<dyn TargetUnderTest> = match &opts.target {
        TargetKind::Tgtd => Box::new(Tgtd::new(work.path(), port)?),
        TargetKind::Harness { binary } => Box::new(HarnessTarget::new(binary, work.path(), port)?),
    };
    let profiles = profiles(&work.path().join("lun1.img"));
    target.start(&profiles["base"])?;
    let proxy = Proxy::start(target.addr())?;

    let mut run = Run {
        opts,
        report: Report::new(format!("{SUITE} against {}", target.name())),
        target,
        proxy,
        profiles,
        profile: "base",
        negotiated: Vec::new(),
        boots: Vec::new(),
        console: String::new(),
    };
    run.boot_loop(&image, &steps, work.path());

    let log_path = match &opts.console_log {
        Some(p) => p.clone(),
        None => {
            let dir = opts.cache_dir.join("logs");
            fs::create_dir_all(&dir).ctx(|| at("create", &dir))?;
            dir.join(format!("open-iscsi-{}.console.log", run.target.name()))
        }
    };
    fs::write(&log_path, &run.console).ctx(|| at("write", &log_path))?;
    let _ = run.target.stop(Stop::Graceful);
    let report = run.finish(image_time, started.elapsed(), &log_path);
    if let Some(junit) = &opts.junit {
        report.write_junit(junit).ctx(|| at("write", junit))?;
    }
    Ok(report)
}

fn selected(only: &[String]) -> Result<Vec<StepDef>> {
    for name in only {
        if !STEPS.iter().any(|s| s.name == name) {
            let names: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
            return Err(Error::Config(format!(
                "no step `{name}`; the steps are: {}",
                names.join(", ")
            )));
        }
    }
    Ok(STEPS
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.name))
        .copied()
        .collect())
}

/// The target configurations the steps ask for by name.
fn profiles(lun1: &Path) -> BTreeMap<&'static str, TargetConfig> {
    let mut base = TargetConfig::new(TARGET_IQN);
    base.luns = vec![
        Lun {
            id: 1,
            backing: Backing::File {
                path: lun1.to_path_buf(),
                size: LUN1_BYTES,
            },
        },
        Lun {
            id: 2,
            backing: Backing::Mem { size: LUN2_BYTES },
        },
    ];
    let with_params = |params: &[(&str, &str)]| {
        let mut c = base.clone();
        c.params = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c
    };
    let mut chap = base.clone();
    chap.chap = Some(Credentials::new(CHAP.0, CHAP.1));
    let mut mutual = chap.clone();
    mutual.mutual_chap = Some(Credentials::new(MUTUAL.0, MUTUAL.1));
    let mut acl = base.clone();
    acl.allow = vec![OTHER_INITIATOR.to_string()];
    BTreeMap::from([
        (
            "digests",
            with_params(&[
                ("HeaderDigest", "CRC32C,None"),
                ("DataDigest", "CRC32C,None"),
            ]),
        ),
        ("small-bursts", with_params(SMALL_BURSTS)),
        ("r2t-only", with_params(R2T_ONLY)),
        ("chap", chap),
        ("mutual", mutual),
        ("acl", acl),
        ("base", base),
    ])
}

/// The guest's script: settings, helpers, steps, then the steps to run.
fn script(steps: &[StepDef]) -> String {
    let kib = |b: u64| b / 1024;
    let mut s = format!(
        "IQN='{TARGET_IQN}'\nLUNS='1:{} 2:{}'\nCHAP_USER='{}'\nCHAP_SECRET='{}'\n\
         MUTUAL_USER='{}'\nMUTUAL_SECRET='{}'\nCUT_AFTER_BYTES={CUT_AFTER_BYTES}\n\
         EXPECT_SMALL_BURSTS='{EXPECT_SMALL_BURSTS}'\nEXPECT_R2T_ONLY='{EXPECT_R2T_ONLY}'\n",
        kib(LUN1_BYTES),
        kib(LUN2_BYTES),
        CHAP.0,
        CHAP.1,
        MUTUAL.0,
        MUTUAL.1,
    );
    s.push_str(include_str!("lib.sh"));
    s.push_str(include_str!("steps.sh"));
    s.push_str("start_iscsid\n");
    for step in steps {
        s.push_str(&format!("run_step {}\n", step.name));
    }
    s.push_str("echo @@ALLDONE\n");
    s
}

/// The step the guest is in.
struct Current {
    def: StepDef,
    started: Instant,
    notes: Vec<String>,
    log: Vec<String>,
}

struct Run<'a> {
    opts: &'a Options,
    target: Box<dyn TargetUnderTest>,
    proxy: Proxy,
    profiles: BTreeMap<&'static str, TargetConfig>,
    profile: &'static str,
    report: Report,
    /// The negotiated parameters each step saw (`iscsiadm -m session -P 3`).
    negotiated: Vec<(String, Vec<(String, String)>)>,
    /// How long each guest took from QEMU start to its init running.
    boots: Vec<Duration>,
    console: String,
}

/// How long a fresh guest may take to begin its first step.
const FIRST_STEP_WITHIN: Duration = Duration::from_secs(60);

impl Run<'_> {
    fn boot_loop(&mut self, image: &GuestImage, steps: &[StepDef], work: &Path) {
        let mut remaining: Vec<StepDef> = steps.to_vec();
        let mut boots = 0;
        while !remaining.is_empty() {
            if boots == self.opts.max_boots {
                for def in remaining.drain(..) {
                    self.conclude_unrun(def, "not run: the guest was rebooted too often");
                }
                break;
            }
            boots += 1;
            let mut spec = BootSpec::new(script(&remaining), work);
            spec.guestfwd = Some(self.proxy.addr().port());
            let mut guest = match Guest::boot(image, &spec) {
                Ok(g) => g,
                Err(e) => {
                    let why = format!("not run: the guest did not boot: {e}");
                    for def in remaining.drain(..) {
                        self.conclude_unrun(def, &why);
                    }
                    break;
                }
            };
            self.boots.push(guest.boot_time);
            self.drive(&mut guest, &mut remaining);
            guest.shutdown(Duration::from_secs(10));
            self.console.push_str(&guest.console_log());
            self.console.push('\n');
        }
    }

    /// Reads the guest's markers until it is done or a step overruns.
    fn drive(&mut self, guest: &mut Guest, remaining: &mut Vec<StepDef>) {
        let mut current: Option<Current> = None;
        let mut idle_since = Instant::now();
        loop {
            let deadline = match &current {
                Some(c) => c.started + self.budget(&c.def),
                None => idle_since + FIRST_STEP_WITHIN,
            };
            let line = match guest.next(deadline) {
                Next::Line(l) => l,
                stop => {
                    let why = if stop == Next::Timeout {
                        guest.kill();
                        "timed out"
                    } else {
                        "the guest died"
                    };
                    // Blame the step in progress, or the next one if none.
                    let c = current.take().or_else(|| {
                        remaining.first().map(|def| Current {
                            def: *def,
                            started: idle_since,
                            notes: Vec::new(),
                            log: Vec::new(),
                        })
                    });
                    if let Some(mut c) = c {
                        let budget = self.budget(&c.def).as_secs();
                        c.log
                            .push(format!("console tail:\n{}", guest.console_tail(25)));
                        let msg = format!(
                            "{why} ({budget} s budget); console ended with: {}",
                            guest.console_tail(4).replace('\n', " | ")
                        );
                        remaining.retain(|d| d.name != c.def.name);
                        self.conclude(c, Err(msg));
                    }
                    return;
                }
            };
            if self.opts.echo_console {
                eprintln!("guest| {line}");
            }
            let mut words = line.splitn(3, ' ');
            let tag = words.next().unwrap_or_default();
            let step = words.next().unwrap_or_default();
            let rest = words.next().unwrap_or_default().to_string();
            match tag {
                "@@BEGIN" => {
                    current = remaining
                        .iter()
                        .find(|d| d.name == step)
                        .map(|def| Current {
                            def: *def,
                            started: Instant::now(),
                            notes: Vec::new(),
                            log: Vec::new(),
                        });
                }
                "@@PASS" | "@@FAIL" => {
                    if let Some(c) = current.take_if(|c| c.def.name == step) {
                        remaining.retain(|d| d.name != step);
                        let verdict = if tag == "@@PASS" { Ok(()) } else { Err(rest) };
                        self.conclude(c, verdict);
                        idle_since = Instant::now();
                    }
                }
                "@@NOTE" => {
                    if let Some(c) = current.as_mut() {
                        c.notes.push(rest);
                    }
                }
                "@@PARAM" => self.param(step, &rest),
                "@@HOST" => {
                    let reply = self.act(&rest);
                    if let Some(c) = current.as_mut() {
                        c.log.push(format!("host: {rest} -> {reply}"));
                    }
                    if let Err(e) = guest.send(&reply) {
                        if let Some(c) = current.as_mut() {
                            c.log.push(format!("host: could not answer: {e}"));
                        }
                    }
                }
                "@@ALLDONE" => return,
                _ => {
                    if let Some(c) = current.as_mut() {
                        c.log.push(line);
                    }
                }
            }
        }
    }

    fn budget(&self, def: &StepDef) -> Duration {
        def.budget().mul_f64(self.opts.budget_factor.max(0.01))
    }

    fn param(&mut self, step: &str, line: &str) {
        let Some((k, v)) = line.split_once(':') else {
            return;
        };
        let kv = (k.trim().to_string(), v.trim().to_string());
        match self.negotiated.iter_mut().find(|(s, _)| s == step) {
            Some((_, params)) => params.push(kv),
            None => self.negotiated.push((step.to_string(), vec![kv])),
        }
    }

    /// Records a step: `Err` holds why it failed, in the guest's words
    /// where it said something.
    fn conclude(&mut self, mut c: Current, verdict: std::result::Result<(), String>) {
        if verdict.is_err() && !self.target.is_running() {
            c.log.push(format!(
                "{} log tail:\n{}",
                self.target.name(),
                self.target.log_tail()
            ));
        }
        let (outcome, why) = match verdict {
            Ok(()) => (Outcome::Passed, String::new()),
            Err(why) => (Outcome::Failed, why),
        };
        let mut case = Case::new(SUITE, c.def.name, outcome, why);
        case.duration = Some(c.started.elapsed());
        case.notes = c.notes;
        case.log = c.log;
        if self.opts.progress {
            eprintln!("{}", case.verdict());
        }
        self.report.cases.push(case);
    }

    fn conclude_unrun(&mut self, def: StepDef, why: &str) {
        self.conclude(
            Current {
                def,
                started: Instant::now(),
                notes: Vec::new(),
                log: Vec::new(),
            },
            Err(why.to_string()),
        );
    }

    /// The report, closed with the negotiated parameters, the time the
    /// guest image and the boots took, and where the console log is.
    fn finish(mut self, image_time: Duration, total: Duration, console_log: &Path) -> Report {
        for (step, params) in &self.negotiated {
            let kv: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            self.report
                .notes
                .push(format!("negotiated ({step}): {}", kv.join(" ")));
        }
        let boots: Vec<String> = self
            .boots
            .iter()
            .map(|b| format!("{:.1} s", b.as_secs_f64()))
            .collect();
        self.report.notes.push(format!(
            "guest image: {:.1} s; guest boots: {} [{}]; total {:.1} s",
            image_time.as_secs_f64(),
            boots.len(),
            boots.join(", "),
            total.as_secs_f64()
        ));
        self.report
            .notes
            .push(format!("console log: {}", console_log.display()));
        self.report.duration = Some(total);
        self.report
    }

    /// Carries out a guest's `@@HOST` request; the answer starts with OK or ERR.
    fn act(&mut self, request: &str) -> String {
        let mut words = request.split_whitespace();
        let action = words.next().unwrap_or_default();
        let arg = words.next().unwrap_or_default();
        let result: std::result::Result<String, String> = match action {
            "target" => self.use_profile(arg),
            "restart-target" => {
                let t = Instant::now();
                self.target
                    .restart(Stop::Kill)
                    .map(|_| {
                        format!(
                            "{} killed and started again in {:.1} s",
                            self.target.name(),
                            t.elapsed().as_secs_f64()
                        )
                    })
                    .map_err(|e| e.to_string())
            }
            "stop-target" => self
                .target
                .stop(Stop::Graceful)
                .map(|_| format!("{} stopped", self.target.name()))
                .map_err(|e| e.to_string()),
            "start-target" => {
                let config = self.profiles[self.profile].clone();
                self.target
                    .start(&config)
                    .map(|_| format!("{} started", self.target.name()))
                    .map_err(|e| e.to_string())
            }
            "arm-cut" => match arg.parse::<u64>() {
                Ok(n) => {
                    self.proxy.arm_cut(n);
                    Ok(String::new())
                }
                Err(_) => Err(format!("bad byte count `{arg}`")),
            },
            "cut-happened" => {
                let s = self.proxy.stats();
                if self.proxy.cut_pending() {
                    Err("the armed cut never fired: the write did not reach the target".into())
                } else {
                    Ok(format!(
                        "proxy cut {} connection(s); the guest connected {} times in all",
                        s.cut, s.accepted
                    ))
                }
            }
            other => Err(format!("unknown request `{other}`")),
        };
        match result {
            Ok(s) if s.is_empty() => "OK".into(),
            Ok(s) => format!("OK {s}"),
            Err(e) => format!("ERR {}", e.replace('\n', " | ")),
        }
    }

    fn use_profile(&mut self, name: &str) -> std::result::Result<String, String> {
        let Some((key, config)) = self.profiles.get_key_value(name) else {
            return Err(format!("no target profile `{name}`"));
        };
        if self.profile == *key && self.target.is_running() {
            return Ok(String::new());
        }
        let (key, config) = (*key, config.clone());
        self.target.start(&config).map_err(|e| e.to_string())?;
        self.profile = key;
        Ok(String::new())
    }
}
