//! The frame of the conformance tables built from upstream test data: Tekton Triggers' tables
//! (the `tekton_tables` suites of `sluice-triggers` and `sluice-dispatcher`) and client-go's
//! JSONPath tests (`client_go_jsonpath` in `sluice-triggers`).
//!
//! Every case names where it comes from (repository, commit, file, Go test function, case
//! name) and how Sluice relates to the expected result upstream (called Tekton's below, as
//! Tekton's behaviour is what the tables stand for):
//!
//! - it **conforms**: Sluice gives Tekton's result, and a case that stops doing so fails
//!   the suite;
//! - it is a **documented difference**: Sluice gives the result `docs/tekton.md` says it
//!   gives instead, and the case fails if that changes; it is applicable and not passed;
//! - it is a **known mismatch**: Sluice differs with no documented reason. It is printed with
//!   its input, Tekton's result and Sluice's, counted, and never counted as passed; it fails
//!   the suite only once it conforms, so that it is then promoted to a conforming case;
//! - it is **skipped**, with the reason it cannot apply.
//!
//! The suite prints one line of counts per source file and one overall; `--list` also prints
//! every case with its outcome, and `--verbose` what each case compared.

// Each suite uses the kinds of case its tables need.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Display;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

/// A repository at the commit its tables were read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub repository: &'static str,
    pub commit: &'static str,
}

/// Tekton Triggers, where most tables come from.
pub const TEKTON: Source = Source {
    repository: "github.com/tektoncd/triggers",
    commit: "088902973c89e356b40bc0745618df0e9b2d8198",
};

/// client-go, whose JSONPath package Tekton evaluates `$(…)` expressions with.
pub const CLIENT_GO: Source = Source {
    repository: "github.com/kubernetes/client-go",
    commit: "32ce75a7d6bc6960fd048d3d1e3b34185418d8c8",
};

/// What one case compared: the input as Tekton's table gives it, Tekton's expected result
/// and Sluice's, as text, and whether they agree.
#[derive(Debug, Clone)]
pub struct Compared {
    pub input: String,
    pub tekton: String,
    pub sluice: String,
    pub same: bool,
}

impl Compared {
    /// Agreement is equality of the two texts.
    pub fn new(input: impl Display, tekton: impl Display, sluice: impl Display) -> Self {
        let (tekton, sluice) = (tekton.to_string(), sluice.to_string());
        Self {
            same: tekton == sluice,
            input: input.to_string(),
            tekton,
            sluice,
        }
    }

    /// Agreement decided by the case (for results that are the same without being the same
    /// text, such as "an error" and a particular error).
    pub fn judged(
        input: impl Display,
        tekton: impl Display,
        sluice: impl Display,
        same: bool,
    ) -> Self {
        Self {
            input: input.to_string(),
            tekton: tekton.to_string(),
            sluice: sluice.to_string(),
            same,
        }
    }

    /// Tekton expects an error; Sluice's result text starts with `error` when it gives one.
    pub fn error_expected(input: impl Display, sluice: impl Display) -> Self {
        let sluice = sluice.to_string();
        let same = sluice.starts_with("error");
        Self::judged(input, "error", sluice, same)
    }
}

type Check = Box<dyn FnOnce() -> Compared>;

enum Expect {
    Tekton,
    Documented {
        reference: &'static str,
        sluice: String,
    },
    Mismatch,
}

enum Kind {
    Run { expect: Expect, check: Check },
    Skipped(&'static str),
}

struct Case {
    source: Source,
    file: &'static str,
    function: &'static str,
    name: String,
    kind: Kind,
}

/// Every case of one suite, in declaration order.
#[derive(Default)]
pub struct Suite {
    cases: Vec<Case>,
}

impl Suite {
    /// Declares the cases of one source file of Tekton's repository.
    pub fn file(&mut self, file: &'static str) -> File<'_> {
        self.file_of(TEKTON, file)
    }

    /// Declares the cases of one source file of another repository.
    pub fn file_of(&mut self, source: Source, file: &'static str) -> File<'_> {
        File {
            suite: self,
            source,
            file,
        }
    }
}

/// The cases of one source file.
pub struct File<'s> {
    suite: &'s mut Suite,
    source: Source,
    file: &'static str,
}

impl File<'_> {
    fn push(&mut self, function: &'static str, name: &str, kind: Kind) {
        self.suite.cases.push(Case {
            source: self.source,
            file: self.file,
            function,
            name: name.to_owned(),
            kind,
        });
    }

    /// A case Sluice must give Tekton's result for.
    pub fn case(
        &mut self,
        function: &'static str,
        name: &str,
        check: impl FnOnce() -> Compared + 'static,
    ) {
        let kind = Kind::Run {
            expect: Expect::Tekton,
            check: Box::new(check),
        };
        self.push(function, name, kind);
    }

    /// A case where Sluice differs from Tekton as `reference` (a section of the docs) says;
    /// Sluice's result must be `sluice`.
    pub fn documented(
        &mut self,
        function: &'static str,
        name: &str,
        reference: &'static str,
        sluice: impl Display,
        check: impl FnOnce() -> Compared + 'static,
    ) {
        let kind = Kind::Run {
            expect: Expect::Documented {
                reference,
                sluice: sluice.to_string(),
            },
            check: Box::new(check),
        };
        self.push(function, name, kind);
    }

    /// A case where Sluice differs from Tekton with no documented reason.
    pub fn mismatch(
        &mut self,
        function: &'static str,
        name: &str,
        check: impl FnOnce() -> Compared + 'static,
    ) {
        let kind = Kind::Run {
            expect: Expect::Mismatch,
            check: Box::new(check),
        };
        self.push(function, name, kind);
    }

    /// Cases that cannot apply to Sluice, and why.
    pub fn skip(&mut self, function: &'static str, names: &[&str], reason: &'static str) {
        for name in names {
            self.push(function, name, Kind::Skipped(reason));
        }
    }
}

enum Outcome {
    Passed(Compared),
    Documented(&'static str, Compared),
    Mismatch(Compared),
    Skipped(&'static str),
    /// A conforming case that no longer conforms, a documented difference that changed, a
    /// mismatch that now conforms, or a check that panicked.
    Failed(String),
}

#[derive(Default)]
struct Counts {
    passed: usize,
    applicable: usize,
    skipped: usize,
    documented: usize,
    mismatches: usize,
    failed: usize,
}

impl Counts {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Passed(_) => {
                self.passed += 1;
                self.applicable += 1;
            }
            Outcome::Mismatch(_) => {
                self.mismatches += 1;
                self.applicable += 1;
            }
            Outcome::Documented(..) => {
                self.documented += 1;
                self.applicable += 1;
            }
            Outcome::Skipped(_) => self.skipped += 1,
            Outcome::Failed(_) => {
                self.failed += 1;
                self.applicable += 1;
            }
        }
    }

    fn line(&self, what: &str) -> String {
        let mut line = format!(
            "{what}: {} passed / {} applicable / {} skipped / {} documented differences",
            self.passed, self.applicable, self.skipped, self.documented
        );
        if self.mismatches > 0 {
            line.push_str(&format!(" ({} known mismatches)", self.mismatches));
        }
        if self.failed > 0 {
            line.push_str(&format!(" ({} FAILED)", self.failed));
        }
        line
    }
}

fn judge(expect: Expect, check: Check) -> Outcome {
    let compared = match catch_unwind(AssertUnwindSafe(check)) {
        Ok(compared) => compared,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            return Outcome::Failed(format!("the check panicked: {message}"));
        }
    };
    let detail = |c: &Compared| {
        format!(
            "input: {}\n      tekton: {}\n      sluice: {}",
            c.input, c.tekton, c.sluice
        )
    };
    match expect {
        Expect::Tekton if compared.same => Outcome::Passed(compared),
        Expect::Tekton => Outcome::Failed(format!(
            "no longer gives Tekton's result\n      {}",
            detail(&compared)
        )),
        Expect::Mismatch if compared.same => Outcome::Failed(format!(
            "now gives Tekton's result: declare it a conforming case\n      {}",
            detail(&compared)
        )),
        Expect::Mismatch => Outcome::Mismatch(compared),
        Expect::Documented { .. } if compared.same => Outcome::Failed(format!(
            "now gives Tekton's result: declare it a conforming case\n      {}",
            detail(&compared)
        )),
        Expect::Documented { reference, sluice } if compared.sluice == sluice => {
            Outcome::Documented(reference, compared)
        }
        Expect::Documented { reference, sluice } => Outcome::Failed(format!(
            "differs from what {reference} documents ({sluice})\n      {}",
            detail(&compared)
        )),
    }
}

/// Runs every case, prints the counts (and, with `--list` among the arguments, every case),
/// and fails when a case failed.
pub fn run(suite: Suite, title: &str) -> ExitCode {
    let verbose = std::env::args().any(|arg| arg == "--verbose");
    let list = verbose || std::env::args().any(|arg| arg == "--list");
    let mut per_file: BTreeMap<(&str, &str), Counts> = BTreeMap::new();
    let mut total = Counts::default();
    let mut mismatches = Vec::new();
    let mut failures = Vec::new();
    let mut files = Vec::new();
    for case in suite.cases {
        if !files.contains(&(case.source, case.file)) {
            files.push((case.source, case.file));
        }
        let outcome = match case.kind {
            Kind::Skipped(reason) => Outcome::Skipped(reason),
            Kind::Run { expect, check } => judge(expect, check),
        };
        let label = if case.name.is_empty() {
            format!("{} {}", case.file, case.function)
        } else {
            format!("{} {} / {}", case.file, case.function, case.name)
        };
        if list {
            let status = match &outcome {
                Outcome::Passed(_) => "passed".to_owned(),
                Outcome::Documented(reference, _) => {
                    format!("documented difference ({reference})")
                }
                Outcome::Mismatch(_) => "KNOWN MISMATCH".to_owned(),
                Outcome::Skipped(reason) => format!("skipped: {reason}"),
                Outcome::Failed(_) => "FAILED".to_owned(),
            };
            println!("{label}: {status}");
            if let (true, Outcome::Passed(c) | Outcome::Documented(_, c)) = (verbose, &outcome) {
                println!(
                    "      input: {}\n      tekton: {}\n      sluice: {}",
                    c.input, c.tekton, c.sluice
                );
            }
        }
        per_file
            .entry((case.source.repository, case.file))
            .or_default()
            .add(&outcome);
        total.add(&outcome);
        match outcome {
            Outcome::Mismatch(compared) => mismatches.push((label, compared)),
            Outcome::Failed(why) => failures.push((label, why)),
            _ => {}
        }
    }
    let mut sources: Vec<Source> = files.iter().map(|(source, _)| *source).collect();
    sources.dedup();
    for source in sources {
        println!(
            "\n{title}: cases from {} at {}",
            source.repository, source.commit
        );
        for (_, file) in files.iter().filter(|(s, _)| *s == source) {
            if let Some(counts) = per_file.get(&(source.repository, *file)) {
                println!("  {}", counts.line(file));
            }
        }
    }
    println!("  {}", total.line("overall"));
    if !mismatches.is_empty() {
        println!("\nknown mismatches (Sluice differs from Tekton with no documented reason):");
        for (label, compared) in &mismatches {
            println!(
                "  {label}\n      input: {}\n      tekton: {}\n      sluice: {}",
                compared.input, compared.tekton, compared.sluice
            );
        }
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("\nFAILED:");
        for (label, why) in &failures {
            println!("  {label}: {why}");
        }
        ExitCode::FAILURE
    }
}
