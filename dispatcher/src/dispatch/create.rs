//! Creating a trigger's planned objects, in template order, each once: every object carries
//! its key and the name derived from it (`sluice_triggers::naming`). A `409` on an object
//! with the same key means an earlier delivery created it; on another object it is a name
//! collision, and the next name derived from the key is tried.

use std::time::Instant;

use serde_json::Value;
use sluice_triggers::catalogue::Trigger;
use sluice_triggers::naming;
use sluice_triggers::plan::{object_namespace, service_account_user};
use tracing::Instrument;

use super::{Dispatcher, TriggerError};
use crate::sink::{CONFLICT, Created, SinkError};

impl Dispatcher {
    /// Creates `objects` in order as the trigger's service account; stops at the first
    /// failure (a later delivery creates only what is missing).
    pub(super) async fn create_objects(
        &self,
        trigger: &Trigger,
        objects: &[Value],
    ) -> Result<Vec<Created>, TriggerError> {
        let user = service_account_user(trigger);
        let mut created = Vec::with_capacity(objects.len());
        for (index, object) in objects.iter().enumerate() {
            let span = tracing::debug_span!(
                "create",
                kind = object["kind"].as_str().unwrap_or_default(),
                user = %user,
            );
            let namespace = object_namespace(object, trigger);
            let trace = crate::trace::create(trigger, namespace, object);
            let annotated = crate::trace::with_span_context(object, &trace);
            let started = Instant::now();
            let result = self
                .create_once(annotated.as_ref().unwrap_or(object), namespace, &user)
                .instrument(trace.clone())
                .instrument(span)
                .await;
            crate::trace::created(&trace, &result);
            self.metrics
                .create(started.elapsed().as_secs_f64(), result.is_ok());
            created.push(result.map_err(|source| TriggerError::Create { index, source })?);
        }
        Ok(created)
    }

    /// Creates a rendered object under the name its key gives it. A `409` on an object with
    /// the same key means an earlier delivery created it; on another object, the next name.
    async fn create_once(
        &self,
        object: &Value,
        namespace: &str,
        user: &str,
    ) -> Result<Created, SinkError> {
        let key = naming::key_of(object)
            .ok_or_else(|| SinkError::permanent("the object carries no idempotency key"))?;
        let mut renamed;
        for attempt in 0..naming::NAME_ATTEMPTS {
            // The first attempt creates the object as rendered (already stamped); each
            // later one derives its name from it, not from the last try's.
            let (candidate, name) = if attempt == 0 {
                (object, naming::name_of(object))
            } else {
                renamed = object.clone();
                let name = naming::stamp(&mut renamed, key, attempt);
                (&renamed, name)
            };
            let name = name.ok_or_else(|| {
                SinkError::permanent("metadata.name or metadata.generateName is required")
            })?;
            match self.sink.create(candidate, namespace, user).await {
                Ok(created) => return Ok(created),
                Err(error) if error.status == Some(CONFLICT) => {
                    let existing = self.sink.get(candidate, namespace, &name).await?;
                    if existing.as_ref().and_then(naming::key_of) == Some(key) {
                        return Ok(Created {
                            kind: candidate["kind"].as_str().unwrap_or_default().to_owned(),
                            name,
                            existed: true,
                        });
                    }
                    tracing::info!(
                        %namespace,
                        %name,
                        %user,
                        "name taken by another object; trying the next one"
                    );
                }
                Err(error) => return Err(error),
            }
        }
        Err(SinkError::permanent(format!(
            "{} names derived from the event were all taken by other objects",
            naming::NAME_ATTEMPTS
        )))
    }
}
