//! Results of a suite: one line per case, the `N passed, M failed` summary
//! every suite ends with, and JUnit XML for CI systems.

use std::fmt::Write as _;
use std::path::Path;

/// How one case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// The case ran but found nothing to check (its own words say why).
    Skipped,
}

/// One case of a suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub suite: String,
    pub name: String,
    pub outcome: Outcome,
    /// What the peer or the check said (failure text, skip reason).
    pub message: String,
}

/// A suite's results.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub name: String,
    pub cases: Vec<Case>,
}

impl Report {
    pub fn new(name: impl Into<String>) -> Report {
        Report {
            name: name.into(),
            cases: Vec::new(),
        }
    }

    pub fn count(&self, outcome: Outcome) -> usize {
        self.cases.iter().filter(|c| c.outcome == outcome).count()
    }

    pub fn failed(&self) -> usize {
        self.count(Outcome::Failed)
    }

    /// Cases that did not fail (skipped ones included, as CUnit counts).
    pub fn passed(&self) -> usize {
        self.cases.len() - self.failed()
    }

    /// The last line of every suite: `N passed, M failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }

    /// JUnit XML, one `<testcase>` per case.
    pub fn to_junit(&self) -> String {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            xml,
            "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
            escape(&self.name),
            self.cases.len(),
            self.failed(),
            self.count(Outcome::Skipped)
        );
        let mut suites: Vec<&str> = self.cases.iter().map(|c| c.suite.as_str()).collect();
        suites.dedup();
        for suite in suites {
            let cases: Vec<&Case> = self.cases.iter().filter(|c| c.suite == suite).collect();
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
                let _ = write!(
                    xml,
                    "    <testcase classname=\"{}\" name=\"{}\"",
                    escape(suite),
                    escape(&c.name)
                );
                match c.outcome {
                    Outcome::Passed => xml.push_str("/>\n"),
                    Outcome::Failed => {
                        let _ = writeln!(
                            xml,
                            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                            escape(first_line(&c.message)),
                            escape(&c.message)
                        );
                    }
                    Outcome::Skipped => {
                        let _ = writeln!(
                            xml,
                            ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                            escape(&c.message)
                        );
                    }
                }
            }
            xml.push_str("  </testsuite>\n");
        }
        xml.push_str("</testsuites>\n");
        xml
    }

    pub fn write_junit(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_junit())
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_junit() {
        let mut r = Report::new("demo");
        r.cases.push(Case {
            suite: "A".into(),
            name: "x".into(),
            outcome: Outcome::Passed,
            message: String::new(),
        });
        r.cases.push(Case {
            suite: "A".into(),
            name: "y".into(),
            outcome: Outcome::Failed,
            message: "bad <1>".into(),
        });
        r.cases.push(Case {
            suite: "B".into(),
            name: "z".into(),
            outcome: Outcome::Skipped,
            message: "n/a".into(),
        });
        assert_eq!(r.summary(), "2 passed, 1 failed");
        let xml = r.to_junit();
        assert!(xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""));
        assert!(xml.contains("<failure message=\"bad &lt;1&gt;\">"));
        assert!(xml.contains("<skipped message=\"n/a\"/>"));
    }
}
