//! Results of a suite, the one type every suite fills (libiscsi's
//! `iscsi-test-cu`, open-iscsi and LIO in the guest, our initiator against
//! LIO): a case per test or step, the `N passed, M failed` line every suite
//! ends with, a plain-text rendering, and JUnit XML for CI systems
//! (`junit.rs`).

mod junit;

use std::fmt;
use std::path::Path;
use std::time::Duration;

/// How one case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// The case ran but found nothing to check (its own words say why).
    Skipped,
}

impl Outcome {
    /// The word a case's line starts with.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Passed => "PASS",
            Outcome::Failed => "FAIL",
            Outcome::Skipped => "SKIP",
        }
    }
}

/// One case of a suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub suite: String,
    pub name: String,
    pub outcome: Outcome,
    /// What the peer or the check said: why it failed or was skipped, or
    /// what a passing step saw.
    pub message: String,
    /// How long it took, where the suite measures it.
    pub duration: Option<Duration>,
    /// What it observed on the way (sizes, refusals, host actions...).
    pub notes: Vec<String>,
    /// Output captured while it ran, kept for a failure's details.
    pub log: Vec<String>,
}

impl Case {
    pub fn new(suite: &str, name: &str, outcome: Outcome, message: impl Into<String>) -> Case {
        Case {
            suite: suite.into(),
            name: name.into(),
            outcome,
            message: message.into(),
            duration: None,
            notes: Vec::new(),
            log: Vec::new(),
        }
    }

    /// `PASS name`, with the time taken where it was measured.
    pub fn verdict(&self) -> String {
        match self.duration {
            Some(d) => format!(
                "{} {} ({:.1} s)",
                self.outcome.word(),
                self.name,
                d.as_secs_f64()
            ),
            None => format!("{} {}", self.outcome.word(), self.name),
        }
    }
}

/// A suite's results.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What ran against what, e.g. "open-iscsi against tgtd".
    pub name: String,
    pub cases: Vec<Case>,
    /// Lines about the whole run (negotiated values, timings), printed
    /// after the cases and before the summary.
    pub notes: Vec<String>,
    /// The whole run's time, where measured.
    pub duration: Option<Duration>,
}

impl Report {
    pub fn new(name: impl Into<String>) -> Report {
        Report {
            name: name.into(),
            ..Report::default()
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

    /// Something ran and nothing failed.
    pub fn success(&self) -> bool {
        self.failed() == 0 && !self.cases.is_empty()
    }

    /// The last line of every suite: `N passed, M failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }

    /// JUnit XML: a `<testsuite>` per suite, a `<testcase>` per case.
    pub fn to_junit(&self) -> String {
        junit::render(self)
    }

    pub fn write_junit(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_junit())
    }
}

/// The name, a line per case (its message and notes indented under it),
/// the report's notes, and the summary last.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.name)?;
        for c in &self.cases {
            writeln!(f, "{}", c.verdict())?;
            if !c.message.is_empty() {
                writeln!(f, "     {}", c.message)?;
            }
            for n in &c.notes {
                writeln!(f, "     - {n}")?;
            }
        }
        for n in &self.notes {
            writeln!(f, "{n}")?;
        }
        write!(f, "{}", self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_junit() {
        let mut r = Report::new("demo");
        r.cases.push(Case::new("A", "x", Outcome::Passed, ""));
        r.cases
            .push(Case::new("A", "y", Outcome::Failed, "bad <1>"));
        r.cases.push(Case::new("B", "z", Outcome::Skipped, "n/a"));
        assert_eq!(r.summary(), "2 passed, 1 failed");
        let xml = r.to_junit();
        assert!(xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""));
        assert!(xml.contains("<failure message=\"bad &lt;1&gt;\">"));
        assert!(xml.contains("<skipped message=\"n/a\"/>"));
    }

    #[test]
    fn text_with_times_and_notes() {
        let mut r = Report::new("open-iscsi against tgtd");
        let mut a = Case::new("open-iscsi", "a", Outcome::Passed, "");
        a.duration = Some(Duration::from_secs(1));
        let mut b = Case::new("open-iscsi", "b", Outcome::Failed, "x < y & \"z\"");
        b.duration = Some(Duration::from_secs(2));
        b.notes = vec!["n".into()];
        b.log = vec!["l".into()];
        r.cases = vec![a, b];
        r.notes = vec!["total 3.0 s".into()];
        r.duration = Some(Duration::from_secs(3));
        assert_eq!(
            r.to_string(),
            "open-iscsi against tgtd\nPASS a (1.0 s)\nFAIL b (2.0 s)\n     x < y & \"z\"\n     \
             - n\ntotal 3.0 s\n1 passed, 1 failed"
        );
        let xml = r.to_junit();
        assert!(xml.contains("failures=\"1\""));
        assert!(xml.contains("<testcase classname=\"open-iscsi\" name=\"b\" time=\"2.000\">"));
        assert!(xml.contains("x &lt; y &amp; &quot;z&quot;\nl</failure>"));
        assert!(xml.contains("<system-out>n</system-out>"));
    }
}
