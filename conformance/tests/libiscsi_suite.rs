//! libiscsi's conformance suite for targets (`iscsi-test-cu`, Debian
//! libiscsi-bin 1.19) against our target, as issue 3 asks: data loss and
//! SANITIZE allowed, the multipath tests on (the URL given twice), every
//! test run, none failed, fewer than 20 `[SKIPPED]` lines; also with a
//! file-backed LUN, a removable LUN and a read-only LUN.
//!
//! One test of 1.19 cannot pass on any conforming target in this
//! configuration: Sanitize.Reservations takes a RESERVE(6) from the second
//! (multipath) session and never releases it, so the SANITIZE of the next
//! test, Sanitize.Reset, must end in RESERVATION CONFLICT. (Without
//! multipath the second session is a clone that logs out, releasing the
//! reservation; upstream libiscsi still has the bug.) The full runs
//! therefore allow exactly that failure, and a separate run of
//! Sanitize.Reset in the same two-URL configuration proves it passes.

mod common;

use std::time::Duration;

use common::peers::peers_present;
use common::target::TargetProcess;
use iscsi_conformance::libiscsi::{self, SuiteOptions, SuiteRun};
use iscsi_conformance::report::Outcome;

const IQN: &str = "iqn.2026-11.org.iscsi-harness:suite";
const KNOWN_SUITE_BUG: (&str, &str) = ("Sanitize", "Reset");

fn run_suite(lun: &str, tests: &str) -> (SuiteRun, TargetProcess) {
    let target = TargetProcess::start(&["--iqn", IQN, "--lun", lun]);
    let url = target.urls[0].clone();
    let options = SuiteOptions {
        urls: vec![url.clone(), url],
        tests: tests.to_string(),
        timeout: Duration::from_secs(900),
        ..SuiteOptions::default()
    };
    let run = libiscsi::run(&options).unwrap_or_else(|e| panic!("{lun}: {e}"));
    (run, target)
}

fn failures(run: &SuiteRun) -> Vec<(String, String, String)> {
    run.report
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Failed)
        .map(|c| (c.suite.clone(), c.name.clone(), c.message.clone()))
        .collect()
}

/// Every test ran, nothing failed but the known suite bug, and at most
/// `max_skips` `[SKIPPED]` lines.
fn check_full_run(label: &str, run: &SuiteRun, max_skips: usize) {
    eprintln!(
        "{label}: {} run, {} failed, {} [SKIPPED] lines; {}",
        run.ran,
        run.failed,
        run.skipped_lines,
        run.report.summary()
    );
    assert_eq!(
        run.ran, 230,
        "{label}: every test of libiscsi 1.19 must run"
    );
    assert_eq!(
        run.report.cases.len(),
        230,
        "{label}: every test must be read from the output"
    );
    let failed = failures(run);
    for (suite, name, message) in &failed {
        eprintln!("{label}: FAILED {suite}.{name}: {message}");
    }
    let unexpected: Vec<_> = failed
        .iter()
        .filter(|(s, n, _)| (s.as_str(), n.as_str()) != KNOWN_SUITE_BUG)
        .collect();
    assert!(
        unexpected.is_empty(),
        "{label}: failures beyond the known suite bug: {unexpected:?}"
    );
    assert!(
        run.failed as usize == failed.len(),
        "{label}: CUnit's count and the parsed failures disagree"
    );
    assert!(
        run.skipped_lines <= max_skips,
        "{label}: {} [SKIPPED] lines (at most {max_skips})",
        run.skipped_lines
    );
}

#[test]
fn libiscsi_suite_passes_against_our_target() {
    if !peers_present("libiscsi suite", &[libiscsi::NEED]) {
        return;
    }
    let file = std::env::temp_dir().join(format!("iscsi-harness-suite-{}.img", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let file_lun = format!("1=file:{},size=1GiB", file.display());
    let runs: Vec<(&str, String, &str)> = vec![
        ("memory LUN", "1=mem:1GiB".into(), "ALL"),
        ("file LUN", file_lun, "ALL"),
        ("removable LUN", "1=mem:1GiB,removable".into(), "ALL"),
        (
            "read-only LUN",
            "1=mem:1GiB,readonly".into(),
            "ALL.ReadOnly",
        ),
        (
            "Sanitize.Reset alone",
            "1=mem:1GiB".into(),
            "ALL.Sanitize.Reset",
        ),
    ];
    let results: Vec<(&str, SuiteRun)> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(label, lun, tests)| {
                scope.spawn(move || {
                    let (run, target) = run_suite(lun, tests);
                    drop(target);
                    (*label, run)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("suite thread"))
            .collect()
    });
    let _ = std::fs::remove_file(&file);
    for (label, run) in &results {
        match *label {
            "memory LUN" | "file LUN" => check_full_run(label, run, 19),
            "removable LUN" => {
                check_full_run(label, run, 19);
                let removable_skips = run
                    .output
                    .lines()
                    .filter(|l| l.contains("[SKIPPED]") && l.contains("removable"))
                    .count();
                assert_eq!(
                    removable_skips, 0,
                    "a removable LUN must run the removable-media tests"
                );
            }
            "read-only LUN" | "Sanitize.Reset alone" => {
                eprintln!("{label}: {}", run.report.summary());
                assert!(run.ran >= 1, "{label}: the test must run");
                assert_eq!(run.failed, 0, "{label}: {:?}", failures(run));
                assert_eq!(run.skipped_lines, 0, "{label}: nothing may be skipped");
            }
            _ => unreachable!(),
        }
    }
}
