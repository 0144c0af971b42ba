//! Tekton's `cel` interceptor as the dispatcher runs it: the filter, then the overlays, all
//! evaluated on the event as it came in; each overlay's value is added to the extensions
//! under its dotted key.

use serde_json::{Map, Value};
use sluice_cel::{self as cel, Activation, EvalErrorKind};
use sluice_runtime::retry::FailureKind;
use sluice_triggers::catalogue::CelInterceptor;

use super::{EventInfo, EventState, InterceptorError};

/// The filter, then the overlays, all evaluated on the state as it came in. `Some`: why
/// the filter stopped the trigger. An expression that fails on this event (a missing key, a
/// type mismatch, an exhausted budget) fails the trigger for this event, as Tekton skips it:
/// [`FailureKind::BadInput`], not retried and not dead-lettered.
pub(super) fn run(
    interceptor: &CelInterceptor,
    limits: cel::Limits,
    state: &mut EventState,
    event: EventInfo<'_>,
) -> Result<Option<String>, InterceptorError> {
    let failed = |message: String| InterceptorError {
        interceptor: "cel".to_owned(),
        kind: FailureKind::BadInput,
        message,
    };
    // Tekton's cel interceptor parses the body first, and fails on one that is not JSON.
    let body = state.body().map_err(|error| failed(error.to_string()))?;
    let activation = Activation {
        body,
        header: state.headers.as_map(),
        extensions: &state.extensions,
        request_url: event.request_url,
        secrets: interceptor,
        limits,
    };
    let evaluate = |program: &cel::Program, what: &str| {
        program.eval(&activation).map_err(|error| {
            let limit = match error.kind {
                EvalErrorKind::CostExceeded | EvalErrorKind::Timeout => " (evaluation limit)",
                EvalErrorKind::Runtime => "",
            };
            failed(format!(
                "{what} `{}` failed{limit}: {error}",
                program.source()
            ))
        })
    };
    if let Some(filter) = &interceptor.filter {
        match evaluate(filter, "filter")? {
            cel::Value::Bool(true) => {}
            cel::Value::Bool(false) => {
                return Ok(Some(format!(
                    "filter `{}` did not return true",
                    filter.source()
                )));
            }
            other => {
                return Err(failed(format!(
                    "filter `{}` returned {other:?}, not a bool",
                    filter.source()
                )));
            }
        }
    }
    let mut values = Vec::with_capacity(interceptor.overlays.len());
    for overlay in &interceptor.overlays {
        let what = format!("overlay `{}`", overlay.key);
        let value = evaluate(&overlay.expression, &what)?
            .to_json()
            .map_err(|error| failed(format!("{what}: {error}")))?;
        values.push((overlay.key.as_str(), value));
    }
    for (key, value) in values {
        set_dotted(&mut state.extensions, key, value);
    }
    Ok(None)
}

/// Sets `a.b.c` in `map`, creating (or replacing with) objects along the way.
fn set_dotted(map: &mut Map<String, Value>, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            map.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let child = map
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            if let Value::Object(child) = child {
                set_dotted(child, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_overlay_keys_nest_and_replace_scalars() {
        let mut map = Map::new();
        set_dotted(&mut map, "a.b.c", Value::from(1));
        set_dotted(&mut map, "a.d", Value::from("x"));
        set_dotted(&mut map, "s", Value::from(2));
        set_dotted(&mut map, "s.t", Value::from(3));
        assert_eq!(
            Value::Object(map),
            serde_json::json!({"a": {"b": {"c": 1}, "d": "x"}, "s": {"t": 3}})
        );
    }
}
