//! Finding configuration files: every `*.yaml`, `*.yml` and `*.json` under a directory, in a
//! deterministic order, each file once.
//!
//! Hidden entries (names starting with `.`) are skipped. That is what makes a mounted
//! ConfigMap or Secret load once: Kubernetes writes the files into a hidden `..<timestamp>`
//! directory, points a hidden `..data` symlink at it, and adds one visible symlink per key
//! (`listener.yaml -> ..data/listener.yaml`). Visible symlinks are followed; a directory or
//! file reached twice (through links, or a link cycle) is read only the first time.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::catalogue::ConfigIssue;

/// How a file's documents are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// YAML, possibly several `---`-separated documents.
    Yaml,
    /// One JSON document.
    Json,
}

impl Format {
    pub(super) fn of(path: &Path) -> Option<Self> {
        let extension = path.extension().and_then(OsStr::to_str)?;
        if extension.eq_ignore_ascii_case("yaml") || extension.eq_ignore_ascii_case("yml") {
            Some(Self::Yaml)
        } else if extension.eq_ignore_ascii_case("json") {
            Some(Self::Json)
        } else {
            None
        }
    }
}

/// The configuration files under `dir`, sorted by path (component by component, depth
/// first). Only `dir` itself being unreadable is an error; an unreadable file or
/// subdirectory becomes an issue.
pub(super) fn config_files(dir: &Path, issues: &mut Vec<ConfigIssue>) -> io::Result<Vec<PathBuf>> {
    let entries = sorted_entries(dir)?;
    let mut walk = Walk {
        visited_dirs: HashSet::new(),
        seen_files: HashSet::new(),
        files: Vec::new(),
        issues,
    };
    if let Ok(canonical) = fs::canonicalize(dir) {
        walk.visited_dirs.insert(canonical);
    }
    walk.visit(entries);
    Ok(walk.files)
}

struct Walk<'a> {
    /// Canonical paths of directories already walked (link cycles, repeated links).
    visited_dirs: HashSet<PathBuf>,
    /// Canonical paths of files already taken.
    seen_files: HashSet<PathBuf>,
    files: Vec<PathBuf>,
    issues: &'a mut Vec<ConfigIssue>,
}

impl Walk<'_> {
    fn visit(&mut self, entries: Vec<PathBuf>) {
        for path in entries {
            if is_hidden(&path) {
                continue;
            }
            // `metadata` follows symlinks: a visible link is taken for what it points at.
            let metadata = match fs::metadata(&path) {
                Ok(metadata) => metadata,
                Err(error) => {
                    if Format::of(&path).is_some() {
                        self.unreadable(&path, &error);
                    }
                    continue;
                }
            };
            if metadata.is_dir() {
                self.visit_dir(&path);
            } else if metadata.is_file() && Format::of(&path).is_some() {
                match fs::canonicalize(&path) {
                    Ok(canonical) => {
                        if self.seen_files.insert(canonical) {
                            self.files.push(path);
                        } else {
                            tracing::debug!(file = %path.display(), "skipping a file already loaded through another path");
                        }
                    }
                    Err(error) => self.unreadable(&path, &error),
                }
            }
        }
    }

    fn visit_dir(&mut self, path: &Path) {
        let canonical = match fs::canonicalize(path) {
            Ok(canonical) => canonical,
            Err(error) => return self.unreadable(path, &error),
        };
        if !self.visited_dirs.insert(canonical) {
            tracing::debug!(dir = %path.display(), "skipping a directory already walked through another path");
            return;
        }
        match sorted_entries(path) {
            Ok(entries) => self.visit(entries),
            Err(error) => self.unreadable(path, &error),
        }
    }

    fn unreadable(&mut self, path: &Path, error: &io::Error) {
        self.issues.push(ConfigIssue {
            file: path.to_owned(),
            document: 0,
            field: None,
            message: format!("cannot be read: {error}"),
        });
    }
}

fn sorted_entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut entries = fs::read_dir(dir)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<io::Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."))
}
