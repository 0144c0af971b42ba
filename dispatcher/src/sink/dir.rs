//! Writes each object as a YAML file, for trying Sluice without a cluster:
//! `<dir>/<namespace>/<kind>-<name>.yaml`.

use std::path::PathBuf;

use serde_json::Value;
use sluice_triggers::names::{is_dns1123_label, is_dns1123_subdomain};

use super::{CONFLICT, Created, SinkError, str_field};

const NAME_SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// Like the API server: a `generateName` gets five random characters appended, and an
    /// existing name is refused.
    pub async fn create(&self, object: &Value, namespace: &str) -> Result<Created, SinkError> {
        let kind = str_field(object, "/kind").unwrap_or_default().to_owned();
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SinkError::permanent(format!(
                "`{kind}` is not a valid kind"
            )));
        }
        let mut object = object.clone();
        let name = match (
            str_field(&object, "/metadata/name"),
            str_field(&object, "/metadata/generateName"),
        ) {
            (Some(name), _) if !name.is_empty() => name.to_owned(),
            (_, Some(prefix)) if !prefix.is_empty() => {
                let suffix: String = (0..5)
                    .map(|_| {
                        char::from(
                            NAME_SUFFIX_ALPHABET[fastrand::usize(..NAME_SUFFIX_ALPHABET.len())],
                        )
                    })
                    .collect();
                let name = format!("{prefix}{suffix}");
                object["metadata"]["name"] = Value::String(name.clone());
                name
            }
            _ => {
                return Err(SinkError::permanent(
                    "metadata.name or metadata.generateName is required",
                ));
            }
        };
        if !is_dns1123_subdomain(&name) || !is_dns1123_label(namespace) {
            return Err(SinkError::permanent(format!(
                "`{namespace}/{name}` is not a valid object name"
            )));
        }
        let dir = self.root.join(namespace);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| {
            SinkError::transient(format!("cannot create {}: {e}", dir.display())).caused_by(e)
        })?;
        let path = dir.join(format!("{}-{name}.yaml", kind.to_ascii_lowercase()));
        let yaml = serde_norway::to_string(&object).map_err(|e| {
            SinkError::permanent(format!("the object cannot be written as YAML: {e}")).caused_by(e)
        })?;
        // Write aside, then link into place: readers never see a partial file, and an
        // existing object is never overwritten.
        let staged = dir.join(format!(".{}.tmp", uuid_like()));
        let write = async {
            tokio::fs::write(&staged, yaml.as_bytes()).await?;
            tokio::fs::hard_link(&staged, &path).await
        };
        let result = write.await;
        let _ = tokio::fs::remove_file(&staged).await;
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let mut error =
                    SinkError::permanent(format!("{kind} {namespace}/{name} already exists"));
                error.status = Some(CONFLICT);
                return Err(error);
            }
            Err(e) => {
                return Err(
                    SinkError::transient(format!("cannot write {}: {e}", path.display()))
                        .caused_by(e),
                );
            }
        }
        Ok(Created {
            kind,
            name,
            existed: false,
        })
    }

    /// The object `kind`/`name` in `namespace`, if it was written.
    pub async fn get(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, SinkError> {
        if !kind.bytes().all(|b| b.is_ascii_alphanumeric())
            || !is_dns1123_subdomain(name)
            || !is_dns1123_label(namespace)
        {
            return Ok(None);
        }
        let path = self
            .root
            .join(namespace)
            .join(format!("{}-{name}.yaml", kind.to_ascii_lowercase()));
        match tokio::fs::read_to_string(&path).await {
            Ok(text) => serde_norway::from_str(&text).map(Some).map_err(|e| {
                SinkError::permanent(format!("{} cannot be read back: {e}", path.display()))
                    .caused_by(e)
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(
                SinkError::transient(format!("cannot read {}: {e}", path.display())).caused_by(e),
            ),
        }
    }
}

fn uuid_like() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sink::FailureKind;

    #[tokio::test]
    async fn generate_name_gets_a_suffix_and_names_never_clobber() {
        let root = tempfile::tempdir().unwrap();
        let sink = DirSink::new(root.path().to_owned());
        let run = json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"generateName": "ci-"}});
        let a = sink.create(&run, "team-a").await.unwrap();
        let b = sink.create(&run, "team-a").await.unwrap();
        assert!(a.name.starts_with("ci-") && a.name.len() == 8, "{}", a.name);
        assert_ne!(a.name, b.name);
        let written = std::fs::read_to_string(
            root.path()
                .join(format!("team-a/pipelinerun-{}.yaml", a.name)),
        )
        .unwrap();
        assert!(written.contains(&format!("name: {}", a.name)), "{written}");

        let named = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fixed"}});
        sink.create(&named, "team-a").await.unwrap();
        let error = sink.create(&named, "team-a").await.unwrap_err();
        assert_eq!(error.kind, FailureKind::Permanent);
        assert_eq!(error.status, Some(CONFLICT), "the API server's 409");
        assert!(error.message.contains("already exists"));
        let stored = sink
            .get("ConfigMap", "team-a", "fixed")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored["metadata"]["name"], "fixed");
        assert!(
            sink.get("ConfigMap", "team-a", "absent")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            std::fs::read_dir(root.path().join("team-a"))
                .unwrap()
                .count(),
            3,
            "no staging files left"
        );
    }

    #[tokio::test]
    async fn hostile_names_cannot_escape_the_directory() {
        let root = tempfile::tempdir().unwrap();
        let sink = DirSink::new(root.path().join("out"));
        for object in [
            json!({"kind": "PipelineRun", "metadata": {"name": "../../etc/passwd"}}),
            json!({"kind": "../PipelineRun", "metadata": {"name": "ok"}}),
            json!({"kind": "PipelineRun", "metadata": {}}),
        ] {
            let error = sink.create(&object, "team-a").await.unwrap_err();
            assert_eq!(error.kind, FailureKind::Permanent, "{object}");
        }
        assert!(
            sink.create(
                &json!({"kind": "PipelineRun", "metadata": {"name": "ok"}}),
                "../x"
            )
            .await
            .is_err()
        );
        assert!(
            !root.path().join("out").exists()
                || std::fs::read_dir(root.path().join("out")).unwrap().count() == 0
        );
    }
}
