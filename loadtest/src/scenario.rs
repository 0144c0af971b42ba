//! The scenario a load test runs against: how many tenants (namespaces), how many listeners
//! each, which providers, and the names they all go by.
//!
//! `config` writes a scenario as Tekton Triggers YAML and the generator posts to the same
//! names, so both sides agree by construction: tenant `t` (from 0) is namespace `team-0001`
//! onwards, and listener `j` of a namespace is called after its provider (`github`,
//! `gitlab`, then `github-2`, `gitlab-3`… when there are more listeners than providers).

use serde::{Deserialize, Serialize};

/// Which providers' webhooks a scenario sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderMix {
    /// GitHub pushes only, signed with `X-Hub-Signature-256`.
    Github,
    /// GitLab pushes only, authenticated with `X-Gitlab-Token`.
    Gitlab,
    /// Listeners alternate between GitHub and GitLab.
    Mixed,
}

/// One webhook provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    GitHub,
    GitLab,
}

impl Provider {
    /// The name used for the listener, its binding and its interceptor.
    pub fn name(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
        }
    }
}

impl ProviderMix {
    fn providers(self) -> &'static [Provider] {
        match self {
            ProviderMix::Github => &[Provider::GitHub],
            ProviderMix::Gitlab => &[Provider::GitLab],
            ProviderMix::Mixed => &[Provider::GitHub, Provider::GitLab],
        }
    }
}

/// Tenants × listeners × providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    pub tenants: u32,
    pub listeners: u32,
    pub provider: ProviderMix,
}

/// One listener the generator posts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub listener: String,
    pub provider: Provider,
}

impl Target {
    /// `/hooks/{namespace}/{listener}`.
    pub fn path(&self) -> String {
        format!("/hooks/{}/{}", self.namespace, self.listener)
    }
}

impl Scenario {
    /// The namespace of tenant `tenant` (counted from 0): `team-0001`, `team-0002`…
    pub fn namespace(tenant: u32) -> String {
        format!("team-{:04}", u64::from(tenant) + 1)
    }

    /// The provider of a namespace's listener number `listener` (counted from 0).
    pub fn provider_of(&self, listener: u32) -> Provider {
        let providers = self.provider.providers();
        providers[listener as usize % providers.len()]
    }

    /// The name of a namespace's listener number `listener`: the provider's name, with the
    /// number appended once every provider has had its plain name.
    pub fn listener_name(&self, listener: u32) -> String {
        let provider = self.provider_of(listener).name();
        if (listener as usize) < self.provider.providers().len() {
            provider.to_owned()
        } else {
            format!("{provider}-{listener}")
        }
    }

    /// Every listener, tenant by tenant: the generator sends request `i` to
    /// `targets()[i % len]`, so consecutive requests go to different namespaces' listeners.
    pub fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::with_capacity(self.tenants as usize * self.listeners as usize);
        for listener in 0..self.listeners {
            for tenant in 0..self.tenants {
                targets.push(Target {
                    namespace: Self::namespace(tenant),
                    listener: self.listener_name(listener),
                    provider: self.provider_of(listener),
                });
            }
        }
        targets
    }

    /// `2 tenants × 1 listener, github`.
    pub fn describe(&self) -> String {
        let plural = |n: u32, word: &str| {
            if n == 1 {
                format!("{n} {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        let provider = match self.provider {
            ProviderMix::Github => "github",
            ProviderMix::Gitlab => "gitlab",
            ProviderMix::Mixed => "github+gitlab",
        };
        format!(
            "{} × {}, {provider}",
            plural(self.tenants, "tenant"),
            plural(self.listeners, "listener")
        )
    }
}

/// clap's parser for `--tenants` and `--listeners`: 1 or more.
pub fn positive(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(error) => Err(format!("`{text}`: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(tenants: u32, listeners: u32, provider: ProviderMix) -> Scenario {
        Scenario {
            tenants,
            listeners,
            provider,
        }
    }

    #[test]
    fn names_are_numbered_from_one_and_named_after_providers() {
        let mixed = scenario(2, 4, ProviderMix::Mixed);
        assert_eq!(Scenario::namespace(0), "team-0001");
        assert_eq!(Scenario::namespace(1999), "team-2000");
        let names: Vec<_> = (0..4).map(|j| mixed.listener_name(j)).collect();
        assert_eq!(names, ["github", "gitlab", "github-2", "gitlab-3"]);
        let github = scenario(1, 2, ProviderMix::Github);
        assert_eq!(github.listener_name(1), "github-1");
        assert_eq!(github.provider_of(1), Provider::GitHub);
    }

    #[test]
    fn targets_cover_every_listener_once_alternating_tenants() {
        let targets = scenario(3, 2, ProviderMix::Mixed).targets();
        assert_eq!(targets.len(), 6);
        assert_eq!(targets[0].path(), "/hooks/team-0001/github");
        assert_eq!(targets[1].path(), "/hooks/team-0002/github");
        assert_eq!(targets[3].path(), "/hooks/team-0001/gitlab");
        assert_eq!(targets[3].provider, Provider::GitLab);
        let unique: std::collections::HashSet<_> = targets.iter().map(Target::path).collect();
        assert_eq!(unique.len(), 6);
    }

    #[test]
    fn counts_must_be_positive() {
        assert_eq!(positive("3"), Ok(3));
        assert!(positive("0").is_err());
        assert!(positive("-1").is_err());
        assert_eq!(
            scenario(2, 1, ProviderMix::Github).describe(),
            "2 tenants × 1 listener, github"
        );
    }
}
