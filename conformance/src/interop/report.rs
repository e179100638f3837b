//! Results of a suite: one line per step with the guest's own words on
//! failure, the negotiated parameters, the closing `N passed, M failed`, and
//! JUnit XML for CI.

use std::fmt;
use std::fs;
use std::path::Path;
use std::time::Duration;

use super::error::{IoContext, Result, at};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Why, in the guest's words where it said something.
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct StepResult {
    pub name: String,
    pub outcome: Outcome,
    pub duration: Duration,
    /// What the step observed (device sizes, refusals, host actions...).
    pub notes: Vec<String>,
    /// The guest's console output during the step.
    pub log: Vec<String>,
}

impl StepResult {
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }
}

/// The negotiated parameters one step saw (`iscsiadm -m session -P 3`).
#[derive(Debug, Clone)]
pub struct Negotiated {
    pub step: String,
    pub params: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub suite: String,
    /// The peer the suite ran against ("tgtd", "iscsi-harness").
    pub target: String,
    pub steps: Vec<StepResult>,
    pub negotiated: Vec<Negotiated>,
    /// How long each guest took from QEMU start to its init running.
    pub boots: Vec<Duration>,
    /// Finding (or building) the guest image.
    pub image_time: Duration,
    pub total: Duration,
    /// Where the full console log was written, if it was.
    pub console_log: Option<std::path::PathBuf>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.steps.iter().filter(|s| s.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.steps.len() - self.passed()
    }

    pub fn success(&self) -> bool {
        self.failed() == 0 && !self.steps.is_empty()
    }

    /// The closing line.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }

    /// Writes JUnit XML (one testsuite, one testcase per step).
    pub fn write_junit(&self, path: &Path) -> Result<()> {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.push_str(&format!(
            "<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n",
            xml(&format!("{} vs {}", self.suite, self.target)),
            self.steps.len(),
            self.failed(),
            self.total.as_secs_f64()
        ));
        for s in &self.steps {
            x.push_str(&format!(
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">\n",
                xml(&self.suite),
                xml(&s.name),
                s.duration.as_secs_f64()
            ));
            if let Outcome::Failed(why) = &s.outcome {
                x.push_str(&format!(
                    "    <failure message=\"{}\">{}</failure>\n",
                    xml(why),
                    xml(&s.log.join("\n"))
                ));
            }
            if !s.notes.is_empty() {
                x.push_str(&format!(
                    "    <system-out>{}</system-out>\n",
                    xml(&s.notes.join("\n"))
                ));
            }
            x.push_str("  </testcase>\n");
        }
        x.push_str("</testsuite>\n");
        fs::write(path, x).ctx(|| at("write", path))
    }
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
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

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} against {}", self.suite, self.target)?;
        for s in &self.steps {
            let word = if s.passed() { "PASS" } else { "FAIL" };
            writeln!(f, "{word} {} ({:.1} s)", s.name, s.duration.as_secs_f64())?;
            if let Outcome::Failed(why) = &s.outcome {
                writeln!(f, "     {why}")?;
            }
            for n in &s.notes {
                writeln!(f, "     - {n}")?;
            }
        }
        for n in &self.negotiated {
            let kv: Vec<String> = n.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            writeln!(f, "negotiated ({}): {}", n.step, kv.join(" "))?;
        }
        let boots: Vec<String> = self
            .boots
            .iter()
            .map(|b| format!("{:.1} s", b.as_secs_f64()))
            .collect();
        writeln!(
            f,
            "guest image: {:.1} s; guest boots: {} [{}]; total {:.1} s",
            self.image_time.as_secs_f64(),
            self.boots.len(),
            boots.join(", "),
            self.total.as_secs_f64()
        )?;
        if let Some(p) = &self.console_log {
            writeln!(f, "console log: {}", p.display())?;
        }
        write!(f, "{}", self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_junit() {
        let r = Report {
            suite: "open-iscsi".into(),
            target: "tgtd".into(),
            steps: vec![
                StepResult {
                    name: "a".into(),
                    outcome: Outcome::Passed,
                    duration: Duration::from_secs(1),
                    notes: vec![],
                    log: vec![],
                },
                StepResult {
                    name: "b".into(),
                    outcome: Outcome::Failed("x < y & \"z\"".into()),
                    duration: Duration::from_secs(2),
                    notes: vec!["n".into()],
                    log: vec!["l".into()],
                },
            ],
            ..Report::default()
        };
        assert_eq!(r.summary(), "1 passed, 1 failed");
        assert!(r.to_string().ends_with("1 passed, 1 failed"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.xml");
        r.write_junit(&p).unwrap();
        let x = fs::read_to_string(p).unwrap();
        assert!(x.contains("failures=\"1\""));
        assert!(x.contains("x &lt; y &amp; &quot;z&quot;"));
    }
}
