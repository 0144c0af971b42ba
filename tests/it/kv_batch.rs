//! Many keys of a key-value bucket read in one request, against a real nats-server: what
//! `kv::Store::get` would say of each key, whatever the mix of present, absent and deleted.

use std::time::Duration;

use async_nats::jetstream;
use sluice_runtime::jetstream::Bucket;
use sluice_runtime::kv_batch::{BatchReadError, last_values};
use sluice_tests::NatsServer;

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_batch_read_answers_as_reading_each_key_would() {
    let nats = NatsServer::start().await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    let store = Bucket {
        name: "BATCH_TEST",
        description: "batch reads",
        max_age: Duration::from_secs(3600),
        replicas: 1,
    }
    .open(&js)
    .await
    .unwrap();
    for (key, value) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
        store.put(key, value.into()).await.unwrap();
    }
    store.put("b", "2 again".into()).await.unwrap();
    store.delete("c").await.unwrap();
    store.purge("d").await.unwrap();

    let keys = ["a", "b", "c", "d", "never", "a"];
    let values = last_values(&client, "BATCH_TEST", &keys, TIMEOUT)
        .await
        .unwrap();
    for key in keys {
        let one = store.get(key).await.unwrap();
        assert_eq!(values.get(key), one.as_ref(), "{key}");
    }
    assert_eq!(values.len(), 2, "{values:?}");
    assert_eq!(values["b"].as_ref(), b"2 again");

    // None of them has a value: an empty answer, not an error.
    let none = last_values(&client, "BATCH_TEST", &["x", "y", "c"], TIMEOUT)
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");

    // A bucket that does not exist has no stream to answer: a failure to retry, not a
    // reason to stop batching.
    let missing = last_values(&client, "NO_SUCH_BUCKET", &["a", "b"], TIMEOUT).await;
    assert!(
        matches!(&missing, Err(BatchReadError::Failed(why)) if why.contains("no responders")),
        "{missing:?}"
    );
}
