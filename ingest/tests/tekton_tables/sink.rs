//! `pkg/sink/sink_test.go`, `TestExecuteInterceptor_Sequential`: Tekton's sink takes a
//! webhook with any method and runs the trigger's interceptors for it. Sluice's ingest takes
//! webhooks as `POST` only and answers any other method `405 method_not_allowed`, as
//! docs/tekton.md documents; the `POST` row runs in the dispatcher's suite, where the
//! interceptors are.

use http::Method;

use crate::suite::{Compared, Suite};
use crate::validate_payload::{JSON_BODY, resources, send};

const FILE: &str = "pkg/sink/sink_test.go";

const POST_ONLY: &str = "docs/tekton.md, Where Sluice differs: Webhooks are posted";

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    let methods = [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
    ];
    for method in methods {
        let name = method.to_string();
        file.documented(
            "TestExecuteInterceptor_Sequential",
            &name,
            POST_ONLY,
            "405",
            move || {
                let input = format!("{method} application/json {{}} to listener test-el");
                Compared::new(input, "202", send(&resources(""), method, JSON_BODY))
            },
        );
    }
}
