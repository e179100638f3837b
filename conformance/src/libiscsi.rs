//! libiscsi's conformance suite for targets, `iscsi-test-cu` (Debian
//! package libiscsi-bin): run it against a URL and read its CUnit output
//! into a [`Report`].

use std::process::Command;
use std::time::Duration;

use crate::interop::{self, tools};
use crate::peers::{self, Need};
use crate::report::{Case, Outcome, Report};

/// Why the suite could not be run or read.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    NotInstalled(#[from] peers::Missing),
    #[error("iscsi-test-cu could not be run: {0}")]
    Run(interop::Error),
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

/// The suite's program and the Debian package that installs it.
pub const NEED: Need = ("iscsi-test-cu", "libiscsi-bin");

/// Runs the suite and reads its output.
pub fn run(options: &SuiteOptions) -> Result<SuiteRun, SuiteError> {
    let exe = peers::require(NEED.0, NEED.1)?;
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
    let out = tools::run(&mut cmd, options.timeout).map_err(|e| match e {
        interop::Error::Timeout { .. } => SuiteError::Timeout(options.timeout),
        e => SuiteError::Run(e),
    })?;
    parse(&(out.stdout + &out.stderr))
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
