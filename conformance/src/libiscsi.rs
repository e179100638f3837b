//! libiscsi's conformance suite for targets, `iscsi-test-cu` (Debian
//! package libiscsi-bin): run it against a URL and read its CUnit output
//! into a [`Report`].

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::report::{Case, Outcome, Report};

/// Why the suite could not be run or read.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(
        "iscsi-test-cu not found: install Debian's libiscsi-bin (apt-get install libiscsi-bin)"
    )]
    NotInstalled,
    #[error("iscsi-test-cu could not be started: {0}")]
    Spawn(std::io::Error),
    #[error("iscsi-test-cu did not finish within {0:?}")]
    Timeout(Duration),
    #[error("iscsi-test-cu printed no run summary; its output ends with: {0}")]
    NoSummary(String),
}

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// The LUN to test; a second URL to the same LUN turns the multipath
    /// tests on.
    pub urls: Vec<String>,
    /// Test selection, `FAMILY[.SUITE[.TEST]]` (default `ALL`).
    pub tests: String,
    /// Allow destructive tests (`-d`).
    pub dataloss: bool,
    /// Allow SANITIZE (`-S`).
    pub sanitize: bool,
    pub timeout: Duration,
    /// Initiator names, when not libiscsi's defaults.
    pub initiator_names: Option<(String, String)>,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            urls: Vec::new(),
            tests: "ALL".into(),
            dataloss: true,
            sanitize: true,
            timeout: Duration::from_secs(900),
            initiator_names: None,
        }
    }
}

/// What a run produced: the parsed report, the CUnit totals, and the raw
/// output for anyone who wants the details.
#[derive(Debug, Clone)]
pub struct SuiteRun {
    pub report: Report,
    /// Tests CUnit says it ran.
    pub ran: u32,
    /// Tests CUnit counts as failed.
    pub failed: u32,
    /// Lines that say `[SKIPPED]`.
    pub skipped_lines: usize,
    pub output: String,
}

/// Where `iscsi-test-cu` is, if installed.
pub fn find() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join("iscsi-test-cu"))
        .find(|p| p.is_file())
}

/// Runs the suite and reads its output.
pub fn run(options: &SuiteOptions) -> Result<SuiteRun, SuiteError> {
    let exe = find().ok_or(SuiteError::NotInstalled)?;
    let mut cmd = Command::new(exe);
    if options.dataloss {
        cmd.arg("-d");
    }
    if options.sanitize {
        cmd.arg("-S");
    }
    if let Some((a, b)) = &options.initiator_names {
        cmd.arg("-i").arg(a).arg("-I").arg(b);
    }
    cmd.arg("-t").arg(&options.tests).args(&options.urls);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(SuiteError::Spawn)?;
    let output = wait_bounded(child, options.timeout)?;
    parse(&output)
}

/// Waits for the child, killing it at the deadline.
fn wait_bounded(mut child: std::process::Child, timeout: Duration) -> Result<String, SuiteError> {
    use std::io::Read;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SuiteError::Timeout(timeout));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(SuiteError::Spawn(e)),
        }
    }
    let mut text = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(&err.join().unwrap_or_default()));
    Ok(text)
}

/// Reads CUnit's verbose output: `Suite: S`, `  Test: T ...passed` or
/// `...FAILED` (with the test's own lines in between), `[SKIPPED]` lines,
/// and the `Run Summary` totals.
pub fn parse(output: &str) -> Result<SuiteRun, SuiteError> {
    let mut report = Report::new("libiscsi iscsi-test-cu");
    let mut suite = String::new();
    let mut current: Option<Case> = None;
    let mut skipped_lines = 0;
    let mut totals = None;
    let finish = |report: &mut Report, case: Option<Case>| {
        if let Some(c) = case {
            report.cases.push(c);
        }
    };
    for line in output.lines() {
        let trimmed = line.trim();
        if let Some(name) = line.strip_prefix("Suite: ") {
            finish(&mut report, current.take());
            suite = name.trim().to_string();
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("Test: ") {
            finish(&mut report, current.take());
            let (name, tail) = rest.split_once(" ...").unwrap_or((rest, ""));
            current = Some(Case::new(&suite, name, Outcome::Passed, ""));
            absorb(current.as_mut().expect("set"), tail, &mut skipped_lines);
            continue;
        }
        if trimmed.starts_with("Run Summary") {
            finish(&mut report, current.take());
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("tests") {
            let numbers: Vec<u32> = rest
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            if numbers.len() >= 4 {
                totals = Some((numbers[1], numbers[3]));
            }
            continue;
        }
        if let Some(case) = current.as_mut() {
            absorb(case, line, &mut skipped_lines);
        } else if line.contains("[SKIPPED]") {
            skipped_lines += 1;
        }
    }
    finish(&mut report, current.take());
    let (ran, failed) = totals.ok_or_else(|| {
        let tail: Vec<&str> = output.lines().rev().take(3).collect();
        SuiteError::NoSummary(tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
    })?;
    Ok(SuiteRun {
        report,
        ran,
        failed,
        skipped_lines,
        output: output.to_string(),
    })
}

/// Folds one line of a test's output into its case.
fn absorb(case: &mut Case, line: &str, skipped_lines: &mut usize) {
    let text = line.trim();
    if text.is_empty() {
        return;
    }
    if text.contains("[SKIPPED]") {
        *skipped_lines += 1;
        if case.outcome == Outcome::Passed {
            case.outcome = Outcome::Skipped;
        }
    }
    if text == "FAILED" || text.ends_with("FAILED") && !text.contains("[FAILED]") {
        case.outcome = Outcome::Failed;
    }
    if text == "passed" || text.ends_with("...passed") {
        return;
    }
    if !case.message.is_empty() {
        case.message.push('\n');
    }
    case.message.push_str(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "
Suite: GetLBAStatus
  Test: Simple ...passed
  Test: BeyondEol ...    [FAILED] GET_LBA_STATUS successful but should have failed
FAILED
    1. test_get_lba_status_beyond_eol.c:38  - CU_ASSERT_EQUAL(_r,0)
  Test: UnmapSingle ...    [SKIPPED] Logical unit is fully provisioned. Skipping test
passed

Run Summary:    Type  Total    Ran Passed Failed Inactive
              suites      1      1    n/a      0        0
               tests      3      3      2      1        0
             asserts    516    516    515      1      n/a
";

    #[test]
    fn parses_verbose_cunit_output() {
        let run = parse(SAMPLE).unwrap();
        assert_eq!((run.ran, run.failed, run.skipped_lines), (3, 1, 1));
        let c = &run.report.cases;
        assert_eq!(c.len(), 3);
        assert_eq!(
            (c[0].name.as_str(), c[0].outcome),
            ("Simple", Outcome::Passed)
        );
        assert_eq!(
            (c[1].name.as_str(), c[1].outcome),
            ("BeyondEol", Outcome::Failed)
        );
        assert!(c[1].message.contains("CU_ASSERT_EQUAL"));
        assert_eq!(
            (c[2].name.as_str(), c[2].outcome),
            ("UnmapSingle", Outcome::Skipped)
        );
        assert_eq!(run.report.summary(), "2 passed, 1 failed");
    }

    #[test]
    fn missing_summary_is_an_error() {
        assert!(matches!(
            parse("Suite: X\n  Test: Y ...passed\n"),
            Err(SuiteError::NoSummary(_))
        ));
    }
}
