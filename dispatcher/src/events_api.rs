//! The event status API on the operations port: what became of a tenant's webhooks, read
//! from the status records ingest and the dispatcher keep in JetStream.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /v1/namespaces/{ns}/events/{id}` | one event with each trigger's state |
//! | `GET /v1/namespaces/{ns}/eventlisteners/{name}/deliveries/{deliveryID}` | `{"items"}`: the events of one sender delivery |
//! | `GET /v1/namespaces/{ns}/events?listener=&state=&since=&limit=` | `{"items","truncated"}`: recent events |
//! | `GET /v1/namespaces/{ns}/refused?listener=&since=&limit=` | `{"items","truncated"}`: deliveries ingest refused |
//!
//! - [`access`] decides who may read a namespace: anyone with a directory sink, else the
//!   bearer of a token the Kubernetes API authenticates and allows `get eventlisteners`
//!   there; the only way to a [`Tenant`] is through it;
//! - [`params`] checks names and query values;
//! - [`error`] is every refusal, with its status and stable `code`.

pub mod access;
mod error;
mod params;

#[cfg(test)]
mod tests;

use axum::extract::{FromRef, Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_runtime::event_status::{EventStatus, RefusedRecord, StatusReader};

pub use access::{Access, Tenant};
pub use error::ApiError;

use params::{ListQuery, RefusedQuery};

/// What the handlers share.
#[derive(Clone)]
struct EventsApi {
    reader: StatusReader,
    access: Access,
}

impl FromRef<EventsApi> for Access {
    fn from_ref(api: &EventsApi) -> Access {
        api.access.clone()
    }
}

/// The routes, to merge into the operations router.
pub fn router(reader: StatusReader, access: Access) -> Router {
    Router::new()
        .route("/v1/namespaces/{namespace}/events", get(list))
        .route("/v1/namespaces/{namespace}/events/{event_id}", get(event))
        .route(
            "/v1/namespaces/{namespace}/eventlisteners/{listener}/deliveries/{delivery_id}",
            get(deliveries),
        )
        .route("/v1/namespaces/{namespace}/refused", get(refused))
        .with_state(EventsApi { reader, access })
}

/// One delivery: its events, and what ingest did not store of it (refused, filtered at the
/// edge, a duplicate within the window).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Delivered {
    items: Vec<EventStatus>,
    not_stored: Vec<RefusedRecord>,
}

#[derive(Deserialize)]
struct EventPath {
    event_id: String,
}

#[derive(Deserialize)]
struct DeliveryPath {
    listener: String,
    delivery_id: String,
}

async fn event(
    tenant: Tenant,
    State(api): State<EventsApi>,
    path: Result<Path<EventPath>, axum::extract::rejection::PathRejection>,
) -> Result<Json<EventStatus>, ApiError> {
    let Path(path) = path.map_err(ApiError::from_path)?;
    let Some(event_id) = params::event_id(&path.event_id) else {
        return Err(ApiError::NotFound(format!(
            "no event {:?} in namespace {:?}",
            params::shown(&path.event_id),
            tenant.namespace()
        )));
    };
    match api
        .reader
        .event(Some(tenant.namespace()), &event_id)
        .await?
    {
        Some(status) => Ok(Json(status)),
        None => Err(ApiError::NotFound(format!(
            "no event {event_id:?} in namespace {:?} (status is kept as long as events are)",
            tenant.namespace()
        ))),
    }
}

async fn deliveries(
    tenant: Tenant,
    State(api): State<EventsApi>,
    path: Result<Path<DeliveryPath>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Delivered>, ApiError> {
    let Path(path) = path.map_err(ApiError::from_path)?;
    let listener = params::listener("eventlistener", &path.listener)?;
    let delivery_id = params::delivery_id(&path.delivery_id)?;
    let items = api
        .reader
        .by_delivery(tenant.namespace(), listener, delivery_id)
        .await?;
    let not_stored = api
        .reader
        .not_stored(tenant.namespace(), listener, delivery_id)
        .await?;
    if items.is_empty() && not_stored.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no event of delivery {:?} for EventListener {}/{listener}",
            params::shown(delivery_id),
            tenant.namespace()
        )));
    }
    Ok(Json(Delivered { items, not_stored }))
}

async fn list(
    tenant: Tenant,
    State(api): State<EventsApi>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<impl Serialize>, ApiError> {
    let Query(query) = query.map_err(ApiError::from_query)?;
    let query = query.check()?;
    let listing = api
        .reader
        .list(
            tenant.namespace(),
            query.listener.as_deref(),
            query.since,
            query.state,
            query.limit,
        )
        .await?;
    Ok(Json(listing))
}

async fn refused(
    tenant: Tenant,
    State(api): State<EventsApi>,
    query: Result<Query<RefusedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<impl Serialize>, ApiError> {
    let Query(query) = query.map_err(ApiError::from_query)?;
    let query = query.check()?;
    let listing = api
        .reader
        .refused(
            tenant.namespace(),
            query.listener.as_deref(),
            query.since,
            query.limit,
        )
        .await?;
    Ok(Json(listing))
}
