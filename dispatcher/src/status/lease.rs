//! One writer at a time: a `coordination.k8s.io/v1` Lease, taken and renewed the way
//! client-go's leader election does it. A replica takes the Lease when it is free, or when
//! its holder has not renewed it for the Lease's duration as this replica observed it (by its
//! own clock: replicas' clocks need not agree). Each write carries the `resourceVersion`
//! read, so two replicas racing for it cannot both win.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};

/// A replica's claim on the Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// The holder, renew time and transitions last read, and when they were first seen.
    observed: Option<(Record, Instant)>,
    /// When this replica last renewed successfully.
    renewed: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    holder: String,
    renew_time: Option<MicroTime>,
    transitions: i32,
}

impl Elector {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Self {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
            observed: None,
            renewed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Takes or renews the Lease; whether this replica holds it now. A replica that fails to
    /// reach the API keeps leading until two thirds of the duration passed since its last
    /// renewal (client-go's renew deadline), then steps down before anyone may take over.
    pub async fn try_lead(&mut self) -> bool {
        match self.round().await {
            Ok(leading) => {
                if leading {
                    self.renewed = Some(Instant::now());
                } else {
                    self.renewed = None;
                }
                leading
            }
            Err(error) => {
                tracing::warn!(
                    lease = %self.name,
                    "failed to read or renew the status Lease: {error}"
                );
                let deadline = self.duration * 2 / 3;
                let still = self.renewed.is_some_and(|at| at.elapsed() < deadline);
                if !still {
                    self.renewed = None;
                }
                still
            }
        }
    }

    /// Lets the Lease go (at shutdown), so that another replica takes it at once.
    pub async fn release(&mut self) {
        if self.renewed.take().is_none() {
            return;
        }
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        if let Err(error) = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            tracing::debug!(lease = %self.name, "failed to release the status Lease: {error}");
        }
    }

    async fn round(&mut self) -> kube::Result<bool> {
        let now = MicroTime(Timestamp::now());
        let seconds = i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "took the status Lease");
                    Ok(true)
                }
                Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let record = Record {
            holder: spec.holder_identity.clone().unwrap_or_default(),
            renew_time: spec.renew_time.clone(),
            transitions: spec.lease_transitions.unwrap_or(0),
        };
        let first_seen = match &self.observed {
            Some((seen, at)) if *seen == record => *at,
            _ => Instant::now(),
        };
        self.observed = Some((record.clone(), first_seen));
        let mine = record.holder == self.identity;
        let free = record.holder.is_empty() || record.renew_time.is_none();
        let expired = first_seen.elapsed() >= self.duration;
        if !(mine || free || expired) {
            return Ok(false);
        }
        if !mine {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(record.transitions + 1);
            spec.holder_identity = Some(self.identity.clone());
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                if !mine {
                    tracing::info!(
                        lease = %self.name,
                        identity = %self.identity,
                        previous = %record.holder,
                        "took the status Lease"
                    );
                }
                Ok(true)
            }
            // Another replica wrote it first.
            Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
            Err(error) => Err(error),
        }
    }
}
