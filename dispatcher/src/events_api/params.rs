//! Names in paths and values in queries, checked before anything is looked up: a bad one is
//! a 400 naming the parameter, never a panic and never a lookup.

use std::time::Duration;

use serde::Deserialize;
use sluice_runtime::event_status::{TriggerState, normalise_event_id};
use sluice_triggers::duration::parse_duration;
use sluice_triggers::names;

use super::ApiError;

/// How far back a listing looks unless `since` says otherwise.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(3600);
/// Items a listing returns unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most items one listing returns.
pub const MAX_LIMIT: usize = 1000;
/// The longest delivery id taken (GitHub's and GitLab's are UUIDs).
const MAX_DELIVERY_ID: usize = 256;

/// `?listener=&state=&since=&limit=` as sent.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    listener: Option<String>,
    state: Option<String>,
    since: Option<String>,
    limit: Option<String>,
}

/// A checked listing query.
#[derive(Debug, PartialEq, Eq)]
pub struct List {
    pub listener: Option<String>,
    pub state: Option<TriggerState>,
    pub since: Duration,
    pub limit: usize,
}

impl ListQuery {
    pub fn check(self) -> Result<List, ApiError> {
        Ok(List {
            listener: optional_listener(self.listener)?,
            state: self.state.as_deref().map(state).transpose()?,
            since: since(self.since.as_deref())?,
            limit: limit(self.limit.as_deref())?,
        })
    }
}

/// `?listener=&since=&limit=` as sent.
#[derive(Debug, Default, Deserialize)]
pub struct RefusedQuery {
    listener: Option<String>,
    since: Option<String>,
    limit: Option<String>,
}

/// A checked query of refused deliveries.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub listener: Option<String>,
    pub since: Duration,
    pub limit: usize,
}

impl RefusedQuery {
    pub fn check(self) -> Result<Refused, ApiError> {
        Ok(Refused {
            listener: optional_listener(self.listener)?,
            since: since(self.since.as_deref())?,
            limit: limit(self.limit.as_deref())?,
        })
    }
}

/// A namespace: a DNS-1123 label.
pub fn namespace(value: &str) -> Result<&str, ApiError> {
    if names::is_dns1123_label(value) {
        Ok(value)
    } else {
        Err(ApiError::bad(
            "namespace",
            "not a Kubernetes namespace name",
        ))
    }
}

/// An EventListener's name: a DNS-1123 subdomain.
pub fn listener<'v>(parameter: &'static str, value: &'v str) -> Result<&'v str, ApiError> {
    if names::is_dns1123_subdomain(value) {
        Ok(value)
    } else {
        Err(ApiError::bad(parameter, "not a Kubernetes object name"))
    }
}

fn optional_listener(value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some(name) => listener("listener", name).map(|name| Some(name.to_owned())),
    }
}

/// A sender's delivery id: printable, at most 256 bytes.
pub fn delivery_id(value: &str) -> Result<&str, ApiError> {
    if value.is_empty() || value.len() > MAX_DELIVERY_ID {
        return Err(ApiError::bad(
            "deliveryID",
            format!("must be 1 to {MAX_DELIVERY_ID} bytes long"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad(
            "deliveryID",
            "must not hold control characters",
        ));
    }
    Ok(value)
}

/// An event id in its stored form (lower case), if it is a UUID; no other id exists.
pub fn event_id(value: &str) -> Option<String> {
    let id = normalise_event_id(value);
    let groups: Vec<&str> = id.split('-').collect();
    let shape = [8, 4, 4, 4, 12];
    let is_uuid = groups.len() == shape.len()
        && groups
            .iter()
            .zip(shape)
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()));
    is_uuid.then_some(id)
}

/// A value as it may be shown back in a message: printable, cut to 64 characters.
pub fn shown(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).take(64).collect()
}

fn state(value: &str) -> Result<TriggerState, ApiError> {
    use clap::ValueEnum;
    let wanted = value.replace('-', "_");
    TriggerState::value_variants()
        .iter()
        .copied()
        .find(|state| state.as_str() == wanted)
        .ok_or_else(|| {
            let known: Vec<&str> = TriggerState::value_variants()
                .iter()
                .map(|state| state.as_str())
                .collect();
            ApiError::bad("state", format!("must be one of {}", known.join(", ")))
        })
}

fn since(value: Option<&str>) -> Result<Duration, ApiError> {
    match value {
        None | Some("") => Ok(DEFAULT_SINCE),
        Some(text) => parse_duration(text).map_err(|reason| ApiError::bad("since", reason)),
    }
}

fn limit(value: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = value.filter(|text| !text.is_empty()) else {
        return Ok(DEFAULT_LIMIT);
    };
    match text.parse::<usize>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(ApiError::bad(
            "limit",
            format!("must be a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(&str, &str)]) -> Result<List, String> {
        let text = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let query: ListQuery = serde_urlencoded_like(&text);
        query.check().map_err(|e| e.to_string())
    }

    fn serde_urlencoded_like(text: &str) -> ListQuery {
        let uri: http::Uri = format!("/?{text}").parse().unwrap();
        axum::extract::Query::<ListQuery>::try_from_uri(&uri)
            .unwrap()
            .0
    }

    #[test]
    fn a_listing_defaults_to_the_last_hour_and_a_hundred_items() {
        assert_eq!(
            list(&[]).unwrap(),
            List {
                listener: None,
                state: None,
                since: DEFAULT_SINCE,
                limit: DEFAULT_LIMIT
            }
        );
        let full = list(&[
            ("listener", "github"),
            ("state", "dead_lettered"),
            ("since", "2d"),
            ("limit", "1000"),
        ])
        .unwrap();
        assert_eq!(full.listener.as_deref(), Some("github"));
        assert_eq!(full.state, Some(TriggerState::DeadLettered));
        assert_eq!(full.since, Duration::from_secs(2 * 86_400));
        assert_eq!(full.limit, 1000);
        assert_eq!(
            list(&[("state", "dead-lettered")]).unwrap().state,
            Some(TriggerState::DeadLettered)
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_parameter() {
        for (pairs, parameter) in [
            (vec![("state", "exploded")], "state"),
            (vec![("since", "an%20hour")], "since"),
            (vec![("since", "1y")], "since"),
            (vec![("limit", "1001")], "limit"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "-1")], "limit"),
            (vec![("listener", "Git_Hub")], "listener"),
            (vec![("listener", "..%2F..")], "listener"),
        ] {
            let error = list(&pairs).unwrap_err();
            assert!(error.starts_with(&format!("{parameter}:")), "{error}");
        }
        let states = list(&[("state", "exploded")]).unwrap_err();
        assert!(states.contains("dead_lettered"), "{states}");
    }

    #[test]
    fn only_uuids_are_event_ids() {
        let id = "0B3F2C9E-1D2A-4E5F-8A9B-0C1D2E3F4A5B";
        assert_eq!(event_id(id).as_deref(), Some(id.to_lowercase().as_str()));
        for bad in [
            "",
            "x",
            "../../etc",
            "0b3f2c9e1d2a4e5f8a9b0c1d2e3f4a5b",
            "*",
            ">",
        ] {
            assert_eq!(event_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        assert!(namespace("team-a").is_ok());
        for bad in ["", "Team-A", "a.b", "-a", &"a".repeat(64), "a b", "a\u{0}"] {
            assert!(namespace(bad).is_err(), "{bad:?}");
        }
        assert!(listener("eventlistener", "github.v2").is_ok());
        assert!(delivery_id("72d3162e-cc78-11e3-81ab-4c9367dc0958").is_ok());
        assert!(delivery_id("").is_err());
        assert!(delivery_id("a\nb").is_err());
        assert!(delivery_id(&"d".repeat(257)).is_err());
    }
}
