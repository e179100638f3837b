//! JUnit XML, the format CI systems read test results in: `<testsuites>`
//! for the report, a `<testsuite>` per suite its cases name (in the order
//! they first appear), a `<testcase>` per case with its time where measured,
//! a `<failure>` whose text is the message and then the captured log, a
//! `<skipped>` with its reason, and the case's notes as `<system-out>`.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Case, Outcome, Report};

pub(super) fn render(report: &Report) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\"{}>",
        escape(&report.name),
        report.cases.len(),
        report.failed(),
        report.count(Outcome::Skipped),
        time(report.duration)
    );
    let mut suites: Vec<&str> = Vec::new();
    for c in &report.cases {
        if !suites.contains(&c.suite.as_str()) {
            suites.push(&c.suite);
        }
    }
    for suite in suites {
        let cases: Vec<&Case> = report.cases.iter().filter(|c| c.suite == suite).collect();
        let failures = cases
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .count();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
            escape(suite),
            cases.len()
        );
        for c in cases {
            testcase(&mut xml, c);
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn testcase(xml: &mut String, c: &Case) {
    let _ = write!(
        xml,
        "    <testcase classname=\"{}\" name=\"{}\"{}",
        escape(&c.suite),
        escape(&c.name),
        time(c.duration)
    );
    if c.outcome == Outcome::Passed && c.notes.is_empty() {
        xml.push_str("/>\n");
        return;
    }
    xml.push_str(">\n");
    match c.outcome {
        Outcome::Passed => {}
        Outcome::Failed => {
            let mut text = c.message.clone();
            for line in &c.log {
                text.push('\n');
                text.push_str(line);
            }
            let _ = writeln!(
                xml,
                "      <failure message=\"{}\">{}</failure>",
                escape(c.message.lines().next().unwrap_or("")),
                escape(&text)
            );
        }
        Outcome::Skipped => {
            let _ = writeln!(xml, "      <skipped message=\"{}\"/>", escape(&c.message));
        }
    }
    if !c.notes.is_empty() {
        let _ = writeln!(
            xml,
            "      <system-out>{}</system-out>",
            escape(&c.notes.join("\n"))
        );
    }
    xml.push_str("    </testcase>\n");
}

/// ` time="S"`, or nothing when not measured.
fn time(d: Option<Duration>) -> String {
    d.map(|d| format!(" time=\"{:.3}\"", d.as_secs_f64()))
        .unwrap_or_default()
}

/// Text safe in an attribute or element; control characters other than
/// newline and tab are dropped, as XML 1.0 cannot carry them.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}
