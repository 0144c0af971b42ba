//! Compaction (`410 Gone`), dropped watches, bookmarks and metadata-only answers, through the
//! real `kube` client.

use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams, VersionMatch,
    WatchEvent, WatchParams,
};
use serde_json::{Value, json};

use super::*;

const NS: &str = "triggers";

fn secrets_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Secret"))
}

fn secrets(client: kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client, NS, &secrets_resource())
}

fn secret(name: &str) -> DynamicObject {
    let mut object = DynamicObject::new(name, &secrets_resource());
    object.data = json!({"data": {"token": "c2VjcmV0"}});
    object
}

fn status(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn started() -> (ApiDouble, Api<DynamicObject>) {
    let api = ApiDouble::start().await;
    api.grant_all(api.controller_user());
    let secrets = secrets(api.client().await);
    (api, secrets)
}

async fn next<T>(events: &mut (impl futures_util::Stream<Item = T> + Unpin)) -> T {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
        .expect("the watch to go on")
}

#[tokio::test]
async fn watch_from_a_compacted_version_is_410_expired() {
    let (api, secrets) = started().await;
    let first = secrets
        .create(&PostParams::default(), &secret("a"))
        .await
        .unwrap();
    secrets
        .create(&PostParams::default(), &secret("b"))
        .await
        .unwrap();
    assert_eq!(api.compact(), 2);

    let old = first.metadata.resource_version.clone().unwrap();
    let mut events = secrets
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match next(&mut events).await.unwrap() {
        WatchEvent::Error(error) => {
            assert_eq!((error.code, error.reason.as_str()), (410, "Expired"));
            assert_eq!(error.message, "too old resource version: 1 (2)");
        }
        other => panic!("expected a 410, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .is_none(),
        "the watch ends after its error"
    );

    // From the compacted version on, watching works; a plain list at an old version is
    // served from the current state; an exact one is gone.
    let mut current = secrets
        .watch(&WatchParams::default().disable_bookmarks(), "2")
        .await
        .unwrap()
        .boxed();
    secrets
        .create(&PostParams::default(), &secret("c"))
        .await
        .unwrap();
    assert!(
        matches!(next(&mut current).await.unwrap(), WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("c"))
    );
    let listed = secrets
        .list(
            &ListParams::default()
                .at(&old)
                .matching(VersionMatch::NotOlderThan),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 3);
    let exact = status(
        secrets
            .list(&ListParams::default().at(&old).matching(VersionMatch::Exact))
            .await,
    );
    assert_eq!((exact.code, exact.reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn dropped_watches_end_and_resume_from_their_last_version() {
    let (_api, secrets) = started().await;
    let params = WatchParams::default().disable_bookmarks();
    let mut events = secrets.watch(&params, "0").await.unwrap().boxed();
    let created = secrets
        .create(&PostParams::default(), &secret("a"))
        .await
        .unwrap();
    let WatchEvent::Added(seen) = next(&mut events).await.unwrap() else {
        panic!("expected ADDED");
    };
    _api.drop_watches();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .is_none(),
        "a dropped watch ends"
    );
    secrets
        .create(&PostParams::default(), &secret("b"))
        .await
        .unwrap();
    let last = seen.metadata.resource_version.unwrap();
    assert_eq!(Some(&last), created.metadata.resource_version.as_ref());
    let mut resumed = secrets.watch(&params, &last).await.unwrap().boxed();
    let WatchEvent::Added(b) = next(&mut resumed).await.unwrap() else {
        panic!("expected ADDED");
    };
    assert_eq!(b.metadata.name.as_deref(), Some("b"));
}

#[tokio::test]
async fn watches_that_allow_bookmarks_get_them_periodically_and_at_timeout() {
    let (api, secrets) = started().await;
    api.set_bookmark_interval(Duration::from_millis(200));
    for name in ["a", "b"] {
        secrets
            .create(&PostParams::default(), &secret(name))
            .await
            .unwrap();
    }
    let mut events = secrets
        .watch(&WatchParams::default().timeout(2), "0")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        next(&mut events).await.unwrap(),
        WatchEvent::Added(_)
    ));
    assert!(matches!(
        next(&mut events).await.unwrap(),
        WatchEvent::Added(_)
    ));
    match next(&mut events).await.unwrap() {
        WatchEvent::Bookmark(bookmark) => {
            assert_eq!(bookmark.metadata.resource_version, "2");
            assert_eq!(
                (
                    bookmark.types.api_version.as_str(),
                    bookmark.types.kind.as_str()
                ),
                ("v1", "Secret")
            );
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
    let rest: Vec<_> = events.collect().await;
    assert!(
        rest.iter()
            .all(|event| matches!(event, Ok(WatchEvent::Bookmark(_)))),
        "{rest:?}"
    );
    assert!(!rest.is_empty(), "a bookmark closes the watch");

    // Without allowWatchBookmarks, none.
    let quiet: Vec<_> = secrets
        .watch(&WatchParams::default().disable_bookmarks().timeout(1), "2")
        .await
        .unwrap()
        .collect()
        .await;
    assert!(quiet.is_empty(), "{quiet:?}");
}

#[tokio::test]
async fn metadata_only_lists_gets_and_watches_carry_only_metadata() {
    let (api, secrets) = started().await;
    secrets
        .create(&PostParams::default(), &secret("a"))
        .await
        .unwrap();

    let listed = secrets.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].metadata.name.as_deref(), Some("a"));
    assert_eq!(listed.metadata.resource_version.as_deref(), Some("1"));
    let one = secrets.get_metadata("a").await.unwrap();
    let types = one.types.unwrap();
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    );

    let mut events = secrets
        .watch_metadata(&WatchParams::default().disable_bookmarks(), "1")
        .await
        .unwrap()
        .boxed();
    secrets.delete("a", &Default::default()).await.unwrap();
    match next(&mut events).await.unwrap() {
        WatchEvent::Deleted(partial) => {
            assert_eq!(partial.metadata.name.as_deref(), Some("a"));
        }
        other => panic!("expected DELETED, got {other:?}"),
    }

    // On the wire: no data, the meta.k8s.io list kind.
    secrets
        .create(&PostParams::default(), &secret("b"))
        .await
        .unwrap();
    let request = http::Request::get(format!("/api/v1/namespaces/{NS}/secrets"))
        .header(
            http::header::ACCEPT,
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let list: Value = api.client().await.request(request).await.unwrap();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(list["items"][0]["kind"], "PartialObjectMetadata");
    assert!(list["items"][0].get("data").is_none(), "{list}");

    let unservable = http::Request::get(format!("/api/v1/namespaces/{NS}/secrets"))
        .header(
            http::header::ACCEPT,
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        )
        .body(Vec::new())
        .unwrap();
    let refused = status(api.client().await.request::<Value>(unservable).await);
    assert_eq!(refused.code, 406);
}
