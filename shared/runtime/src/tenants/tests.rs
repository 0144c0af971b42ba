//! The tenants file: parsing, limits as listeners lower them, and reloads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::*;

const EXAMPLE: &str = r#"
allowCrossNamespace: false          # optional, default false
interceptorAllow: [hooks.example.com, "*.corp.example"]   # optional
defaults:                           # optional; applies to every namespace
  runsPerMinute: 600
  burst: 50
  maxConcurrentCreates: 20
  admissionPerSecond: 100
  triggers:
    nightly: {runsPerMinute: 1, burst: 1}
namespaces:
  team-a:
    runsPerMinute: 60
    burst: 10
    triggers:
      build: {runsPerMinute: 30}
  noisy-team: {admissionPerSecond: 5}
"#;

fn rate(per_minute: f64, burst: u32) -> Rate {
    Rate { per_minute, burst }
}

fn parse(yaml: &str) -> Result<TenantPolicy, PolicyError> {
    TenantPolicy::parse("tenants.yaml", yaml)
}

/// The error `yaml` gives, checked to be displayed as `tenants.yaml: <field>: <problem>`.
fn error(yaml: &str) -> PolicyError {
    let error = parse(yaml).expect_err("the policy is refused");
    let shown = error.to_string();
    assert_eq!(error.file(), "tenants.yaml");
    match error.field() {
        Some(field) => assert_eq!(shown, format!("tenants.yaml: {field}: {}", error.problem())),
        None => assert_eq!(shown, format!("tenants.yaml: {}", error.problem())),
    }
    error
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

#[test]
fn the_example_parses_into_what_its_comments_say() {
    let policy = parse(EXAMPLE).unwrap();
    assert!(!policy.allow_cross_namespace());
    assert_eq!(
        policy.interceptor_allow(),
        ["hooks.example.com", "*.corp.example"]
    );
    assert_eq!(
        policy.namespaces().collect::<Vec<_>>(),
        ["noisy-team", "team-a"]
    );

    let nightly = rate(1.0, 1);
    let team_a = policy.limits("team-a");
    assert_eq!(
        team_a,
        Limits {
            runs: Some(rate(60.0, 10)),
            max_concurrent_creates: Some(20),
            admission_per_second: Some(100.0),
            // The namespace's map over the defaults', key by key; `build`'s burst is 30 / 6.
            triggers: BTreeMap::from([
                ("build".to_owned(), rate(30.0, 5)),
                ("nightly".to_owned(), nightly),
            ]),
        }
    );
    assert_eq!(team_a.trigger_rate("build"), Some(rate(30.0, 5)));
    assert_eq!(team_a.trigger_rate("nightly"), Some(nightly));
    assert_eq!(
        team_a.trigger_rate("deploy"),
        Some(rate(60.0, 10)),
        "the namespace's runs"
    );

    let other = policy.limits("other");
    assert_eq!(
        other,
        Limits {
            runs: Some(rate(600.0, 50)),
            max_concurrent_creates: Some(20),
            admission_per_second: Some(100.0),
            triggers: BTreeMap::from([("nightly".to_owned(), nightly)]),
        }
    );
    assert_eq!(other.trigger_rate("build"), Some(rate(600.0, 50)));
    assert_eq!(other.trigger_rate("nightly"), Some(nightly));

    let noisy = policy.limits("noisy-team");
    assert_eq!(noisy.admission_per_second, Some(5.0));
    assert_eq!(noisy.runs, Some(rate(600.0, 50)), "the rest from defaults");
    assert_eq!(noisy.max_concurrent_creates, Some(20));
}

#[test]
fn an_empty_file_is_the_default_policy_without_limits() {
    for yaml in [
        "",
        "{}",
        "~",
        "# only a comment\n",
        "\u{feff}",
        "namespaces: {}\ndefaults: {}",
    ] {
        let policy = parse(yaml).unwrap_or_else(|error| panic!("{yaml:?}: {error}"));
        assert!(!policy.allow_cross_namespace());
        assert!(policy.interceptor_allow().is_empty());
        assert_eq!(policy.namespaces().count(), 0);
        assert_eq!(policy.limits("team-a"), Limits::default());
    }
    let none = TenantPolicy::default().limits("team-a");
    assert_eq!(none, Limits::default());
    assert_eq!(none.trigger_rate("build"), None);
}

#[test]
fn the_summary_says_what_the_policy_enforces() {
    assert_eq!(
        parse(EXAMPLE).unwrap().summary(),
        "defaults: runsPerMinute 600 (burst 50), maxConcurrentCreates 20, admissionPerSecond 100, \
         1 trigger rate(s); 2 namespace(s) with their own limits; allowCrossNamespace: false; \
         interceptorAllow: hooks.example.com, *.corp.example"
    );
    assert_eq!(
        TenantPolicy::default().summary(),
        "defaults: no limits; 0 namespace(s) with their own limits; allowCrossNamespace: false; \
         interceptorAllow: none"
    );
}

#[test]
fn a_namespace_named_without_limits_gets_the_defaults() {
    let policy = parse("defaults: {maxConcurrentCreates: 3}\nnamespaces: {team-a: }").unwrap();
    assert_eq!(policy.namespaces().collect::<Vec<_>>(), ["team-a"]);
    assert_eq!(policy.limits("team-a").max_concurrent_creates, Some(3));
}

#[test]
fn the_switches_and_hosts_are_read_and_normalised() {
    let policy = parse(
        "allowCrossNamespace: true\ninterceptorAllow: ['  Hooks.Example.COM ', 'api.example:8443']",
    )
    .unwrap();
    assert!(policy.allow_cross_namespace());
    assert_eq!(
        policy.interceptor_allow(),
        ["hooks.example.com", "api.example:8443"]
    );
}

#[test]
fn bursts_default_to_ten_seconds_of_the_rate_and_at_least_one() {
    let policy = parse(
        "defaults: {runsPerMinute: 600}\nnamespaces:\n  slow: {runsPerMinute: 3}\n  \
         fractional: {runsPerMinute: 0.5, admissionPerSecond: 2}\n  capped: {burst: 7}",
    )
    .unwrap();
    assert_eq!(policy.limits("other").runs, Some(rate(600.0, 100)));
    assert_eq!(policy.limits("slow").runs, Some(rate(3.0, 1)));
    // Integers and floats are both accepted for rates.
    let fractional = policy.limits("fractional");
    assert_eq!(fractional.runs, Some(rate(0.5, 1)));
    assert_eq!(fractional.admission_per_second, Some(2.0));
    // A burst alone in a namespace takes the default's rate.
    assert_eq!(policy.limits("capped").runs, Some(rate(600.0, 7)));
    assert_eq!(Rate::with_default_burst(1e300).burst, u32::MAX);
    assert_eq!(Rate::with_default_burst(f64::NAN).burst, 1);
}

#[test]
fn merging_is_field_by_field_and_trigger_entries_replace_whole() {
    let policy = parse(
        "defaults:\n  runsPerMinute: 600\n  burst: 50\n  triggers:\n    nightly: {runsPerMinute: 6, burst: 4}\n\
         namespaces:\n  team-a:\n    runsPerMinute: 60\n    triggers:\n      nightly: {runsPerMinute: 12}",
    )
    .unwrap();
    let limits = policy.limits("team-a");
    assert_eq!(
        limits.runs,
        Some(rate(60.0, 50)),
        "the default's burst, field by field"
    );
    assert_eq!(
        limits.trigger_rate("nightly"),
        Some(rate(12.0, 2)),
        "not the default's burst 4"
    );
}

#[test]
fn yaml_anchors_and_merge_keys_are_applied() {
    let policy = parse(
        "namespaces:\n  team-a: &small {runsPerMinute: 6, maxConcurrentCreates: 2}\n  \
         team-b:\n    <<: *small\n    maxConcurrentCreates: 1",
    )
    .unwrap();
    assert_eq!(policy.limits("team-a").max_concurrent_creates, Some(2));
    let team_b = policy.limits("team-b");
    assert_eq!(team_b.runs, Some(rate(6.0, 1)));
    assert_eq!(team_b.max_concurrent_creates, Some(1));
}

#[test]
fn unknown_keys_are_refused_with_their_path_at_every_level() {
    let cases = [
        ("allowCrossNamespaces: true", None, "allowCrossNamespaces"),
        (
            "defaults: {runsPerMinut: 5}",
            Some("defaults"),
            "runsPerMinut",
        ),
        (
            "namespaces: {team-a: {runsPerMinut: 5}}",
            Some("namespaces.team-a"),
            "runsPerMinut",
        ),
        (
            "namespaces: {team-a: {triggers: {build: {runsPerMinute: 5, brust: 1}}}}",
            Some("namespaces.team-a.triggers.build"),
            "brust",
        ),
        (
            "defaults: {triggers: {nightly: {rpm: 1}}}",
            Some("defaults.triggers.nightly"),
            "rpm",
        ),
    ];
    for (yaml, path, key) in cases {
        let error = error(yaml);
        let shown = error.to_string();
        assert!(shown.contains("unknown field"), "{shown}");
        assert!(shown.contains(&format!("`{key}`")), "{shown}");
        let expected = match path {
            Some(path) => format!("{path}.{key}"),
            None => key.to_owned(),
        };
        assert_eq!(error.field(), Some(expected.as_str()), "{shown}");
    }
}

#[test]
fn invalid_values_are_refused_naming_the_field() {
    let cases = [
        ("defaults: {runsPerMinute: 0}", "defaults.runsPerMinute"),
        ("defaults: {runsPerMinute: -1}", "defaults.runsPerMinute"),
        ("defaults: {runsPerMinute: .inf}", "defaults.runsPerMinute"),
        ("defaults: {runsPerMinute: .nan}", "defaults.runsPerMinute"),
        ("defaults: {runsPerMinute: fast}", "defaults.runsPerMinute"),
        (
            "namespaces: {team-a: {burst: 0, runsPerMinute: 1}}",
            "namespaces.team-a.burst",
        ),
        (
            "namespaces: {team-a: {burst: -1}}",
            "namespaces.team-a.burst",
        ),
        (
            "namespaces: {team-a: {burst: 1.5}}",
            "namespaces.team-a.burst",
        ),
        (
            "namespaces: {team-a: {burst: 99999999999}}",
            "namespaces.team-a.burst",
        ),
        (
            "namespaces: {team-a: {maxConcurrentCreates: 0}}",
            "namespaces.team-a.maxConcurrentCreates",
        ),
        (
            "defaults: {admissionPerSecond: 0}",
            "defaults.admissionPerSecond",
        ),
        (
            "defaults: {admissionPerSecond: -3.5}",
            "defaults.admissionPerSecond",
        ),
        (
            "defaults: {triggers: {nightly: {runsPerMinute: 0}}}",
            "defaults.triggers.nightly.runsPerMinute",
        ),
        (
            "namespaces: {team-a: {triggers: {build: {runsPerMinute: 1, burst: 0}}}}",
            "namespaces.team-a.triggers.build.burst",
        ),
        (
            "namespaces: {team-a: {triggers: {build: {burst: 2}}}}",
            "namespaces.team-a.triggers.build",
        ),
        (
            "namespaces: {team-a: {triggers: {build: ~}}}",
            "namespaces.team-a.triggers.build",
        ),
        (
            "namespaces: {team-a: {triggers: {'': {runsPerMinute: 1}}}}",
            "namespaces.team-a.triggers",
        ),
        ("namespaces: {Team_A: {}}", "namespaces"),
        ("namespaces: {a.b: {}}", "namespaces"),
        ("defaults: {burst: 5}", "defaults.burst"),
        (
            "namespaces: {team-a: {burst: 5}}",
            "namespaces.team-a.burst",
        ),
        ("allowCrossNamespace: perhaps", "allowCrossNamespace"),
        ("interceptorAllow: ['']", "interceptorAllow[0]"),
        (
            "interceptorAllow: [ok.example, 'https://hooks.example.com']",
            "interceptorAllow[1]",
        ),
        ("interceptorAllow: ['*']", "interceptorAllow[0]"),
        (
            "interceptorAllow: ['hooks.*.example']",
            "interceptorAllow[0]",
        ),
        ("interceptorAllow: ['a b']", "interceptorAllow[0]"),
        ("interceptorAllow: hooks.example.com", "interceptorAllow"),
        ("namespaces: [team-a]", "namespaces"),
    ];
    for (yaml, field) in cases {
        let error = error(yaml);
        assert_eq!(error.field(), Some(field), "{yaml}: {error}");
    }
    assert!(
        error("namespaces: {Team_A: {}}")
            .problem()
            .contains("\"Team_A\"")
    );
    assert!(
        error("defaults: {burst: 0}")
            .problem()
            .contains("at least 1")
    );
}

#[test]
fn broken_documents_are_refused_as_a_whole() {
    for yaml in [
        "- a list",
        "just text",
        "namespaces: {team-a: {}, team-a: {}}",
        "defaults: {runsPerMinute: 1",
        "a: &x [*x]",
    ] {
        let error = error(yaml);
        assert!(!error.problem().is_empty(), "{yaml}");
    }
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenants.yaml");
    let error = TenantPolicy::load(&path).unwrap_err();
    assert_eq!(error.file(), path.display().to_string());
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: cannot read", path.display()))
    );

    std::fs::write(&path, "namespaces: {team-a: {burst: 0}}").unwrap();
    let error = TenantPolicy::load(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: namespaces.team-a.burst: must be at least 1; leave it out for no limit",
            path.display()
        )
    );

    std::fs::write(&path, b"defaults: {burst: \xff}").unwrap();
    assert!(
        TenantPolicy::load(&path)
            .unwrap_err()
            .problem()
            .contains("UTF-8")
    );

    std::fs::write(&path, EXAMPLE).unwrap();
    let policy = TenantPolicy::load(&path).unwrap();
    assert_eq!(policy.limits("team-a").runs, Some(rate(60.0, 10)));
}

#[test]
fn annotations_lower_limits() {
    let platform = parse(EXAMPLE).unwrap().limits("team-a");
    let (lowered, warnings) = platform.lowered_by(&annotations(&[
        (ANNOTATION_MAX_RUNS_PER_MINUTE, "30"),
        (ANNOTATION_BURST, "4"),
        (ANNOTATION_MAX_CONCURRENT_CREATES, " 5 "),
        (ANNOTATION_ADMISSION_PER_SECOND, "2.5"),
        ("sluice.dev/unrelated", "x"),
    ]));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(lowered.runs, Some(rate(30.0, 4)));
    assert_eq!(lowered.max_concurrent_creates, Some(5));
    assert_eq!(lowered.admission_per_second, Some(2.5));
    assert_eq!(
        lowered.triggers, platform.triggers,
        "trigger rates are left alone"
    );

    // The platform's own values are not "above" it.
    let (same, warnings) = platform.lowered_by(&annotations(&[
        (ANNOTATION_MAX_RUNS_PER_MINUTE, "60"),
        (ANNOTATION_BURST, "10"),
    ]));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(same, platform);

    let (same, warnings) = platform.lowered_by(&BTreeMap::new());
    assert!(warnings.is_empty());
    assert_eq!(same, platform);
}

#[test]
fn a_lowered_rate_lowers_its_burst_unless_one_is_given() {
    let platform = parse("defaults: {runsPerMinute: 600, burst: 50}")
        .unwrap()
        .limits("x");
    let (lowered, _) = platform.lowered_by(&annotations(&[(ANNOTATION_MAX_RUNS_PER_MINUTE, "6")]));
    assert_eq!(lowered.runs, Some(rate(6.0, 1)));
    let (lowered, _) =
        platform.lowered_by(&annotations(&[(ANNOTATION_MAX_RUNS_PER_MINUTE, "540")]));
    assert_eq!(
        lowered.runs,
        Some(rate(540.0, 50)),
        "never above the platform's burst"
    );
    let (lowered, warnings) = platform.lowered_by(&annotations(&[
        (ANNOTATION_MAX_RUNS_PER_MINUTE, "6"),
        (ANNOTATION_BURST, "20"),
    ]));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        lowered.runs,
        Some(rate(6.0, 20)),
        "an explicit burst up to the platform's"
    );
}

#[test]
fn annotations_never_raise_limits_and_say_so() {
    let platform = parse(EXAMPLE).unwrap().limits("team-a");
    let (lowered, warnings) = platform.lowered_by(&annotations(&[
        (ANNOTATION_MAX_RUNS_PER_MINUTE, "61"),
        (ANNOTATION_BURST, "11"),
        (ANNOTATION_MAX_CONCURRENT_CREATES, "21"),
        (ANNOTATION_ADMISSION_PER_SECOND, "1000"),
    ]));
    assert_eq!(lowered, platform);
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    for (warning, key) in warnings.iter().zip([
        ANNOTATION_MAX_RUNS_PER_MINUTE,
        ANNOTATION_BURST,
        ANNOTATION_MAX_CONCURRENT_CREATES,
        ANNOTATION_ADMISSION_PER_SECOND,
    ]) {
        assert!(warning.starts_with(key), "{warning}");
        assert!(warning.contains("above the platform's limit"), "{warning}");
    }
    assert!(
        warnings[0].contains("61") && warnings[0].contains("of 60"),
        "{}",
        warnings[0]
    );
}

#[test]
fn annotations_that_are_not_positive_numbers_are_reported_and_ignored() {
    let platform = parse(EXAMPLE).unwrap().limits("team-a");
    let long = "x".repeat(10_000);
    let (lowered, warnings) = platform.lowered_by(&annotations(&[
        (ANNOTATION_MAX_RUNS_PER_MINUTE, "NaN"),
        (ANNOTATION_BURST, "2.5"),
        (ANNOTATION_MAX_CONCURRENT_CREATES, &long),
        (ANNOTATION_ADMISSION_PER_SECOND, "-1"),
    ]));
    assert_eq!(lowered, platform);
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|warning| warning.contains("not a positive")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().all(|warning| warning.len() < 200),
        "long values are cut short"
    );

    let (_, warnings) =
        Limits::default().lowered_by(&annotations(&[(ANNOTATION_BURST, "99999999999")]));
    assert!(warnings[0].contains("too large"), "{warnings:?}");

    for value in ["0", "inf", "", "ten", "1e400"] {
        let (lowered, warnings) =
            platform.lowered_by(&annotations(&[(ANNOTATION_MAX_RUNS_PER_MINUTE, value)]));
        assert_eq!(lowered, platform, "{value:?}");
        assert_eq!(warnings.len(), 1, "{value:?}");
    }
}

#[test]
fn annotations_may_set_limits_the_platform_leaves_open() {
    let open = Limits::default();
    let (lowered, warnings) = open.lowered_by(&annotations(&[
        (ANNOTATION_MAX_RUNS_PER_MINUTE, "60"),
        (ANNOTATION_BURST, "100"),
        (ANNOTATION_MAX_CONCURRENT_CREATES, "3"),
        (ANNOTATION_ADMISSION_PER_SECOND, "7"),
    ]));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(lowered.runs, Some(rate(60.0, 100)));
    assert_eq!(lowered.max_concurrent_creates, Some(3));
    assert_eq!(lowered.admission_per_second, Some(7.0));

    let (lowered, warnings) =
        open.lowered_by(&annotations(&[(ANNOTATION_MAX_RUNS_PER_MINUTE, "60")]));
    assert!(warnings.is_empty());
    assert_eq!(lowered.runs, Some(rate(60.0, 10)));

    let (lowered, warnings) = open.lowered_by(&annotations(&[(ANNOTATION_BURST, "3")]));
    assert_eq!(lowered, open);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("no runs-per-minute limit"),
        "{}",
        warnings[0]
    );
}

#[test]
fn a_namespace_is_paused_by_name_and_keeps_its_limits() {
    let policy = parse(
        "defaults: {runsPerMinute: 60}\n\
         namespaces:\n  \
           team-a: {paused: true, maxConcurrentCreates: 2}\n  \
           team-b: {paused: false}\n  \
           team-c: {}\n",
    )
    .unwrap();
    assert!(policy.is_paused("team-a"));
    assert!(!policy.is_paused("team-b"), "`paused: false` is not paused");
    assert!(!policy.is_paused("team-c"));
    assert!(
        !policy.is_paused("other"),
        "a namespace the file does not name"
    );
    assert_eq!(policy.paused().collect::<Vec<_>>(), ["team-a"]);
    let team_a = policy.limits("team-a");
    assert_eq!(team_a.max_concurrent_creates, Some(2));
    assert_eq!(team_a.runs, Some(rate(60.0, 10)), "the rest from defaults");
    assert!(!parse(EXAMPLE).unwrap().is_paused("team-a"));
}

#[test]
fn a_pause_that_is_not_a_boolean_or_not_per_namespace_is_refused_naming_the_field() {
    for yaml in [
        "namespaces: {team-a: {paused: \"yes\"}}",
        "namespaces: {team-a: {paused: 1}}",
    ] {
        let refused = error(yaml);
        assert_eq!(
            refused.field(),
            Some("namespaces.team-a.paused"),
            "{refused}"
        );
        assert!(
            refused.problem().contains("expected a boolean"),
            "{refused}"
        );
    }
    let refused = error("defaults: {paused: true}");
    assert_eq!(refused.field(), Some("defaults.paused"), "{refused}");
    assert!(
        refused.problem().contains("namespaces.<namespace>.paused"),
        "{refused}"
    );
    let refused = error("namespaces: {team-a: {pause: true}}");
    assert_eq!(
        refused.field(),
        Some("namespaces.team-a.pause"),
        "{refused}"
    );
    assert!(refused.problem().contains("unknown field"), "{refused}");
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn the_reloader_swaps_in_changes_and_keeps_the_policy_on_a_broken_or_removed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenants.yaml");
    std::fs::write(&path, "namespaces: {team-a: {runsPerMinute: 60}}").unwrap();
    let target = Arc::new(ArcSwap::from_pointee(TenantPolicy::load(&path).unwrap()));
    let task = spawn_policy_reloader(path.clone(), target.clone(), Duration::from_millis(20));
    let runs = |target: &ArcSwap<TenantPolicy>| target.load().limits("team-a").runs;

    std::fs::write(&path, "namespaces: {team-a: {runsPerMinute: 30}}").unwrap();
    eventually("the change is picked up", || {
        runs(&target) == Some(rate(30.0, 5))
    })
    .await;

    std::fs::write(&path, "namespaces: {team-a: {runsPerMinut: 1}}").unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        runs(&target),
        Some(rate(30.0, 5)),
        "a broken file keeps the old policy"
    );

    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        runs(&target),
        Some(rate(30.0, 5)),
        "a removed file keeps the old policy"
    );

    std::fs::write(&path, "namespaces: {team-a: {runsPerMinute: 12}}").unwrap();
    eventually("the file is read again once back", || {
        runs(&target) == Some(rate(12.0, 2))
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn a_zero_interval_does_not_panic_the_reloader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tenants.yaml");
    let target = Arc::new(ArcSwap::from_pointee(TenantPolicy::default()));
    let task = spawn_policy_reloader(path.clone(), target.clone(), Duration::ZERO);
    std::fs::write(&path, "allowCrossNamespace: true").unwrap();
    eventually("a file that appears is read", || {
        target.load().allow_cross_namespace()
    })
    .await;
    assert!(!task.is_finished());
    task.abort();
}
