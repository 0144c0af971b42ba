//! The platform's tenant policy file (`--tenants-file`): what the platform team allows every
//! namespace sharing the cluster, and how fast each may go.
//!
//! Tenants write EventListeners and Triggers; the platform team writes this one file. It
//! holds the cluster-wide switches (`allowCrossNamespace`, `interceptorAllow`) and the limits
//! that keep one noisy namespace from starving the others: runs created per minute (a token
//! bucket shared by all dispatcher replicas), creates in flight, and webhooks ingest accepts
//! per second. A tenant may tighten its own limits with EventListener annotations
//! ([`Limits::lowered_by`]) but never loosen them. A namespace may also be paused
//! (`paused: true`): its events are stored and wait, undispatched, until it is resumed.
//!
//! Unlike the Tekton configuration directory, which skips what is broken and serves the
//! rest, this file is all or nothing: a half-read policy could silently lift a limit, so any
//! problem is a [`PolicyError`] naming the file, the field and what is wrong, and a reload
//! that fails keeps the policy already in force ([`spawn_policy_reloader`]).
//!
//! ```
//! use sluice_runtime::tenants::{Rate, TenantPolicy};
//!
//! let policy = TenantPolicy::parse(
//!     "tenants.yaml",
//!     "defaults: {runsPerMinute: 600}\nnamespaces: {team-a: {runsPerMinute: 60}}\n",
//! )
//! .unwrap();
//! assert_eq!(policy.limits("team-a").runs, Some(Rate { per_minute: 60.0, burst: 10 }));
//! assert_eq!(policy.limits("other").runs, Some(Rate { per_minute: 600.0, burst: 100 }));
//! ```

mod reload;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde_norway::Value;

use sluice_triggers::names::is_dns1123_label;

pub use reload::spawn_policy_reloader;

/// Annotation with which an EventListener lowers its namespace's runs per minute.
pub const ANNOTATION_MAX_RUNS_PER_MINUTE: &str = "sluice.dev/max-runs-per-minute";
/// Annotation with which an EventListener lowers the burst of its runs' token bucket.
pub const ANNOTATION_BURST: &str = "sluice.dev/burst";
/// Annotation with which an EventListener lowers the creates it may have in flight.
pub const ANNOTATION_MAX_CONCURRENT_CREATES: &str = "sluice.dev/max-concurrent-creates";
/// Annotation with which an EventListener lowers the webhooks per second ingest accepts.
pub const ANNOTATION_ADMISSION_PER_SECOND: &str = "sluice.dev/admission-per-second";

/// The platform's policy, as read from the tenants file. The default is the policy of an
/// empty file: no limits, no cross-namespace selection, no interceptor host allowed beyond
/// in-cluster services.
#[derive(Debug, Clone, Default)]
pub struct TenantPolicy {
    allow_cross_namespace: bool,
    interceptor_allow: Vec<String>,
    /// Limits of every namespace without an entry of its own.
    defaults: Limits,
    /// Each named namespace's limits, already merged over `defaults` at load time so that
    /// a lookup on the hot path is a map lookup and a clone, and so that validation sees
    /// exactly what will be enforced.
    namespaces: BTreeMap<String, Limits>,
    /// Namespaces whose events are not dispatched (`paused: true`).
    paused: BTreeSet<String>,
}

impl TenantPolicy {
    /// Parses the text of a tenants file; `source_name` names it in errors. An empty file
    /// (or one holding only comments, `~` or `{}`) is the default policy.
    pub fn parse(source_name: &str, yaml: &str) -> Result<Self, PolicyError> {
        let yaml = yaml.strip_prefix('\u{feff}').unwrap_or(yaml);
        let mut value: Value = serde_norway::from_str(yaml)
            .map_err(|error| PolicyError::new(source_name, None, error.to_string()))?;
        // Anchors and `<<` merge keys let a platform team share one block of limits
        // between namespaces; without this, `<<` would be refused as an unknown field.
        value
            .apply_merge()
            .map_err(|error| PolicyError::new(source_name, None, error.to_string()))?;
        match value {
            Value::Null => return Ok(Self::default()),
            Value::Mapping(_) => {}
            _ => {
                return Err(PolicyError::new(
                    source_name,
                    None,
                    "expected a mapping (allowCrossNamespace, interceptorAllow, defaults, namespaces)",
                ));
            }
        }
        let document: PolicyDocument =
            serde_path_to_error::deserialize(value).map_err(|error| {
                let path = error.path().to_string();
                let field = (path != ".").then_some(path);
                PolicyError::new(source_name, field, error.inner().to_string())
            })?;
        document
            .validate()
            .map_err(|invalid| PolicyError::new(source_name, Some(invalid.field), invalid.problem))
    }

    /// Reads and parses the tenants file at `path`; every error names the path.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let bytes = std::fs::read(path).map_err(|error| {
            PolicyError::new(
                &path.display().to_string(),
                None,
                format!("cannot read: {error}"),
            )
        })?;
        Self::from_bytes(path, &bytes)
    }

    /// The file's bytes as read by [`Self::load`] or the reloader, which compares bytes so
    /// that it parses only what changed.
    fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, PolicyError> {
        let name = path.display().to_string();
        let text = std::str::from_utf8(bytes).map_err(|error| {
            PolicyError::new(&name, None, format!("is not UTF-8 text: {error}"))
        })?;
        Self::parse(&name, text)
    }

    /// Whether an EventListener may select Triggers in other namespaces
    /// (`namespaceSelector`). Off unless the platform says so: a tenant could otherwise
    /// start another tenant's pipelines.
    pub fn allow_cross_namespace(&self) -> bool {
        self.allow_cross_namespace
    }

    /// Hosts webhook interceptors may call besides in-cluster services (`host`,
    /// `host:port`, `*.domain`), lower-cased and trimmed as the destination check expects.
    pub fn interceptor_allow(&self) -> &[String] {
        &self.interceptor_allow
    }

    /// Limits for a namespace: the namespace's own entry over `defaults`, field by field
    /// (a namespace entry's `triggers` map merges over the defaults' map, key by key).
    /// A namespace the file does not name gets `defaults`.
    pub fn limits(&self, namespace: &str) -> Limits {
        self.namespaces
            .get(namespace)
            .unwrap_or(&self.defaults)
            .clone()
    }

    /// The namespaces named in `namespaces`, in name order.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces.keys().map(String::as_str)
    }

    /// Whether the platform paused `namespace` (`paused: true` in its entry): its events are
    /// accepted and stored, and wait in the stream until it is resumed. Cheap enough for a
    /// tenant's loop to ask before every pull.
    pub fn is_paused(&self, namespace: &str) -> bool {
        self.paused.contains(namespace)
    }

    /// The paused namespaces, in name order.
    pub fn paused(&self) -> impl Iterator<Item = &str> {
        self.paused.iter().map(String::as_str)
    }

    /// One line saying what the policy enforces, for `sluice validate`.
    pub fn summary(&self) -> String {
        let hosts = match self.interceptor_allow.as_slice() {
            [] => "none".to_owned(),
            hosts => hosts.join(", "),
        };
        format!(
            "defaults: {}; {} namespace(s) with their own limits; allowCrossNamespace: {}; interceptorAllow: {hosts}",
            self.defaults,
            self.namespaces.len(),
            self.allow_cross_namespace,
        )
    }
}

/// The limits in the file's own terms (`runsPerMinute 60 (burst 10), …`), or `no limits`.
impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(Rate { per_minute, burst }) = self.runs {
            parts.push(format!("runsPerMinute {per_minute} (burst {burst})"));
        }
        if let Some(creates) = self.max_concurrent_creates {
            parts.push(format!("maxConcurrentCreates {creates}"));
        }
        if let Some(admission) = self.admission_per_second {
            parts.push(format!("admissionPerSecond {admission}"));
        }
        if !self.triggers.is_empty() {
            parts.push(format!("{} trigger rate(s)", self.triggers.len()));
        }
        if parts.is_empty() {
            f.write_str("no limits")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// What one namespace may do. `None` is "no limit".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Runs created per minute across all dispatcher replicas (`runsPerMinute` + `burst`).
    pub runs: Option<Rate>,
    /// Creates in flight at once (`maxConcurrentCreates`).
    pub max_concurrent_creates: Option<u32>,
    /// Webhooks per second ingest accepts for the namespace (`admissionPerSecond`).
    pub admission_per_second: Option<f64>,
    /// Rates of single triggers by trigger name, applied on top of `runs`.
    pub triggers: BTreeMap<String, Rate>,
}

/// A token bucket: refilled at `per_minute`, holding at most `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_minute: f64,
    pub burst: u32,
}

impl Rate {
    /// A rate with the burst the file gives one that names none: ten seconds' worth of
    /// runs (`per_minute / 6`), at least one so that the bucket can ever let a run through.
    pub fn with_default_burst(per_minute: f64) -> Self {
        Self {
            per_minute,
            burst: default_burst(per_minute),
        }
    }
}

/// Ten seconds' worth of `per_minute`, at least 1; saturates instead of overflowing (a NaN
/// gives 1).
fn default_burst(per_minute: f64) -> u32 {
    let burst = (per_minute / 6.0).floor();
    if burst.is_nan() || burst < 1.0 {
        1
    } else {
        // At most `u32::MAX` by the `min`, and whole by the `floor`: the cast loses nothing.
        burst.min(f64::from(u32::MAX)) as u32
    }
}

impl Limits {
    /// Lowers limits with an EventListener's annotations, never raises them:
    /// `sluice.dev/max-runs-per-minute`, `sluice.dev/burst`, `sluice.dev/max-concurrent-creates`,
    /// `sluice.dev/admission-per-second` (numbers as strings). A value above the platform's is
    /// ignored (the platform's stays) and reported in the returned warnings; an annotation
    /// that is not a positive number is reported too; an annotation may set a limit where the
    /// platform sets none.
    ///
    /// Lowering the runs per minute without `sluice.dev/burst` also lowers the burst to the
    /// lowered rate's default (`per_minute / 6`) when that is smaller: a listener asking for
    /// 6 runs a minute under a platform burst of 50 would otherwise still start 50 at once.
    /// `sluice.dev/burst` alone needs a runs-per-minute limit to apply to. Trigger rates are
    /// left as they are: the lowered `runs` bucket applies on top of them anyway.
    pub fn lowered_by(&self, annotations: &BTreeMap<String, String>) -> (Limits, Vec<String>) {
        let mut lowered = self.clone();
        let mut warnings = Vec::new();

        if let Some(asked) = annotations
            .get(ANNOTATION_MAX_RUNS_PER_MINUTE)
            .and_then(|raw| positive_number(ANNOTATION_MAX_RUNS_PER_MINUTE, raw, &mut warnings))
        {
            match self.runs {
                Some(platform) if asked > platform.per_minute => {
                    warnings.push(above(
                        ANNOTATION_MAX_RUNS_PER_MINUTE,
                        asked,
                        platform.per_minute,
                    ));
                }
                Some(platform) => {
                    lowered.runs = Some(Rate {
                        per_minute: asked,
                        burst: platform.burst.min(default_burst(asked)),
                    });
                }
                None => lowered.runs = Some(Rate::with_default_burst(asked)),
            }
        }

        if let Some(asked) = annotations
            .get(ANNOTATION_BURST)
            .and_then(|raw| positive_whole(ANNOTATION_BURST, raw, &mut warnings))
        {
            match (&mut lowered.runs, self.runs) {
                (None, _) => warnings.push(format!(
                    "{ANNOTATION_BURST}: ignored, no runs-per-minute limit to apply it to \
                     (set {ANNOTATION_MAX_RUNS_PER_MINUTE} too)"
                )),
                (Some(_), Some(platform)) if asked > platform.burst => {
                    warnings.push(above(ANNOTATION_BURST, asked, platform.burst));
                }
                (Some(rate), _) => rate.burst = asked,
            }
        }

        if let Some(asked) = annotations
            .get(ANNOTATION_MAX_CONCURRENT_CREATES)
            .and_then(|raw| positive_whole(ANNOTATION_MAX_CONCURRENT_CREATES, raw, &mut warnings))
        {
            match self.max_concurrent_creates {
                Some(platform) if asked > platform => {
                    warnings.push(above(ANNOTATION_MAX_CONCURRENT_CREATES, asked, platform));
                }
                _ => lowered.max_concurrent_creates = Some(asked),
            }
        }

        if let Some(asked) = annotations
            .get(ANNOTATION_ADMISSION_PER_SECOND)
            .and_then(|raw| positive_number(ANNOTATION_ADMISSION_PER_SECOND, raw, &mut warnings))
        {
            match self.admission_per_second {
                Some(platform) if asked > platform => {
                    warnings.push(above(ANNOTATION_ADMISSION_PER_SECOND, asked, platform));
                }
                _ => lowered.admission_per_second = Some(asked),
            }
        }

        (lowered, warnings)
    }

    /// The rate for a trigger: its own entry if any, else the namespace's `runs`. (The
    /// dispatcher applies both the trigger's and the namespace's bucket when both exist; this
    /// returns the trigger's own and leaves the combination to the caller.)
    pub fn trigger_rate(&self, trigger: &str) -> Option<Rate> {
        self.triggers.get(trigger).copied().or(self.runs)
    }
}

/// A positive, finite number (`"60"`, `"0.5"`); anything else is reported and ignored.
fn positive_number(key: &str, raw: &str, warnings: &mut Vec<String>) -> Option<f64> {
    match raw.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Some(value),
        _ => {
            warnings.push(format!(
                "{key}: {} is not a positive number; ignored",
                shown(raw)
            ));
            None
        }
    }
}

/// A whole number of at least 1 (and at most `u32::MAX`); anything else is reported and
/// ignored.
fn positive_whole(key: &str, raw: &str, warnings: &mut Vec<String>) -> Option<u32> {
    let trimmed = raw.trim();
    match trimmed.parse::<u32>() {
        Ok(value) if value >= 1 => Some(value),
        // Digits that overflow are a whole number all the same; say what is wrong with it.
        Err(_) if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) => {
            warnings.push(format!("{key}: {} is too large; ignored", shown(raw)));
            None
        }
        _ => {
            warnings.push(format!(
                "{key}: {} is not a positive whole number; ignored",
                shown(raw)
            ));
            None
        }
    }
}

fn above(key: &str, asked: impl fmt::Display, platform: impl fmt::Display) -> String {
    format!(
        "{key}: {asked} is above the platform's limit of {platform}; the platform's limit applies"
    )
}

/// An annotation value quoted for a warning: escaped, and cut short, since a tenant controls
/// it and annotations may be hundreds of kilobytes.
fn shown(raw: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut cut: String = raw.chars().take(MAX_CHARS).collect();
    if cut.len() < raw.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// A tenants file that cannot be used. Displays as `<file>: <field path>: <problem>`, or
/// `<file>: <problem>` when the problem is with the file as a whole (unreadable, not YAML).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{problem}", .field.as_deref().map(|field| format!("{field}: ")).unwrap_or_default())]
pub struct PolicyError {
    file: String,
    field: Option<String>,
    problem: String,
}

impl PolicyError {
    fn new(file: &str, field: Option<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            field,
            problem: problem.into(),
        }
    }

    /// The file (or source name) the error is in.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The field's path (`namespaces.team-a.burst`), when one field is at fault.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

/// The file's shape. Every level refuses unknown keys: a misspelt limit
/// (`runsPerMinut`) must not silently leave a namespace unlimited. `null` reads as absent
/// everywhere, so `noisy-team:` with nothing under it is a valid (default) entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyDocument {
    allow_cross_namespace: Option<bool>,
    interceptor_allow: Option<Vec<String>>,
    defaults: Option<LimitsEntry>,
    namespaces: Option<BTreeMap<String, Option<LimitsEntry>>>,
}

/// `defaults` or one namespace's entry, before merging.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LimitsEntry {
    runs_per_minute: Option<f64>,
    burst: Option<u32>,
    max_concurrent_creates: Option<u32>,
    admission_per_second: Option<f64>,
    triggers: Option<BTreeMap<String, TriggerEntry>>,
    /// Only in a namespace's entry: `defaults.paused` is refused (a default pause would
    /// hold every tenant, new ones included).
    paused: Option<bool>,
}

/// One trigger's rate. `runsPerMinute` is required: a trigger entry exists only to limit it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TriggerEntry {
    runs_per_minute: f64,
    burst: Option<u32>,
}

/// A validation failure before the file name is attached.
struct Invalid {
    field: String,
    problem: String,
}

impl Invalid {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl PolicyDocument {
    fn validate(self) -> Result<TenantPolicy, Invalid> {
        let interceptor_allow = self
            .interceptor_allow
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                allowed_host(entry)
                    .map_err(|problem| Invalid::new(format!("interceptorAllow[{index}]"), problem))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let defaults_entry = self.defaults.unwrap_or_default();
        defaults_entry.check("defaults")?;
        if defaults_entry.paused.is_some() {
            // A default pause would silently hold every tenant, new ones included.
            return Err(Invalid::new(
                "defaults.paused",
                "a pause is set per namespace: use namespaces.<namespace>.paused",
            ));
        }
        if defaults_entry.burst.is_some() && defaults_entry.runs_per_minute.is_none() {
            return Err(Invalid::new(
                "defaults.burst",
                "needs runsPerMinute beside it: a burst alone limits nothing",
            ));
        }

        let mut namespaces = BTreeMap::new();
        let mut paused = BTreeSet::new();
        for (name, entry) in self.namespaces.unwrap_or_default() {
            if !is_dns1123_label(&name) {
                return Err(Invalid::new(
                    "namespaces",
                    format!(
                        "{name:?} is not a namespace name (a DNS-1123 label: at most 63 characters \
                         of a-z, 0-9 and '-', starting and ending with a letter or digit)"
                    ),
                ));
            }
            let entry = entry.unwrap_or_default();
            let at = format!("namespaces.{name}");
            entry.check(&at)?;
            if entry.burst.is_some()
                && entry.runs_per_minute.is_none()
                && defaults_entry.runs_per_minute.is_none()
            {
                return Err(Invalid::new(
                    format!("{at}.burst"),
                    "needs runsPerMinute, here or in defaults: a burst alone limits nothing",
                ));
            }
            if entry.paused == Some(true) {
                paused.insert(name.clone());
            }
            let limits = entry.over(&defaults_entry).resolve();
            namespaces.insert(name, limits);
        }

        Ok(TenantPolicy {
            allow_cross_namespace: self.allow_cross_namespace.unwrap_or(false),
            interceptor_allow,
            defaults: defaults_entry.resolve(),
            namespaces,
            paused,
        })
    }
}

impl LimitsEntry {
    /// Checks each value of this entry; `at` is the entry's path.
    fn check(&self, at: &str) -> Result<(), Invalid> {
        if let Some(rate) = self.runs_per_minute {
            check_rate(&format!("{at}.runsPerMinute"), rate)?;
        }
        if let Some(burst) = self.burst {
            check_at_least_one(&format!("{at}.burst"), burst)?;
        }
        if let Some(creates) = self.max_concurrent_creates {
            check_at_least_one(&format!("{at}.maxConcurrentCreates"), creates)?;
        }
        if let Some(admission) = self.admission_per_second {
            check_rate(&format!("{at}.admissionPerSecond"), admission)?;
        }
        for (trigger, entry) in self.triggers.iter().flatten() {
            if trigger.trim().is_empty() {
                return Err(Invalid::new(
                    format!("{at}.triggers"),
                    "a trigger name is empty",
                ));
            }
            let at = format!("{at}.triggers.{trigger}");
            check_rate(&format!("{at}.runsPerMinute"), entry.runs_per_minute)?;
            if let Some(burst) = entry.burst {
                check_at_least_one(&format!("{at}.burst"), burst)?;
            }
        }
        Ok(())
    }

    /// This entry over `defaults`, field by field; `triggers` key by key, an entry of the
    /// namespace replacing the default's entry of the same trigger whole.
    fn over(self, defaults: &LimitsEntry) -> LimitsEntry {
        let mut triggers = defaults.triggers.clone().unwrap_or_default();
        triggers.extend(self.triggers.unwrap_or_default());
        LimitsEntry {
            runs_per_minute: self.runs_per_minute.or(defaults.runs_per_minute),
            burst: self.burst.or(defaults.burst),
            max_concurrent_creates: self
                .max_concurrent_creates
                .or(defaults.max_concurrent_creates),
            admission_per_second: self.admission_per_second.or(defaults.admission_per_second),
            triggers: Some(triggers),
            paused: self.paused,
        }
    }

    /// The limits this (checked, merged) entry sets, default bursts filled in.
    fn resolve(&self) -> Limits {
        Limits {
            runs: self.runs_per_minute.map(|per_minute| Rate {
                per_minute,
                burst: self.burst.unwrap_or_else(|| default_burst(per_minute)),
            }),
            max_concurrent_creates: self.max_concurrent_creates,
            admission_per_second: self.admission_per_second,
            triggers: self
                .triggers
                .iter()
                .flatten()
                .map(|(name, entry)| {
                    let rate = Rate {
                        per_minute: entry.runs_per_minute,
                        burst: entry
                            .burst
                            .unwrap_or_else(|| default_burst(entry.runs_per_minute)),
                    };
                    (name.clone(), rate)
                })
                .collect(),
        }
    }
}

/// A rate must be positive and finite: 0 would stop the namespace outright (leave the
/// field out for "no limit"), and `.inf`/`.nan` would make the token bucket meaningless.
fn check_rate(field: &str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            format!("must be a positive finite number, not {value}; leave it out for no limit"),
        ))
    }
}

/// A bucket of 0 tokens or 0 creates in flight would never let anything through.
fn check_at_least_one(field: &str, value: u32) -> Result<(), Invalid> {
    if value >= 1 {
        Ok(())
    } else {
        Err(Invalid::new(
            field,
            "must be at least 1; leave it out for no limit",
        ))
    }
}

/// One `interceptorAllow` entry, normalised as the destination check compares hosts
/// (trimmed, lower case). Refuses what could never match a host, such as a URL or a
/// wildcard anywhere but a leading `*.`, so that a mistake is reported rather than silently
/// leaving an interceptor blocked.
fn allowed_host(entry: &str) -> Result<String, String> {
    let host = entry.trim().to_ascii_lowercase();
    if host.is_empty() {
        return Err("is empty".to_owned());
    }
    if host.contains("://") || host.contains('/') {
        return Err(format!(
            "{entry:?} is not a host: give `host`, `host:port` or `*.domain`, without scheme or path"
        ));
    }
    if host.chars().any(char::is_whitespace) {
        return Err(format!("{entry:?} contains whitespace"));
    }
    let wildcard_free = host.strip_prefix("*.").unwrap_or(&host);
    if wildcard_free.is_empty() || wildcard_free.contains('*') {
        return Err(format!(
            "{entry:?}: a wildcard is allowed only as a leading `*.` before a domain"
        ));
    }
    Ok(host)
}
