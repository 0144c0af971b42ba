//! `pkg/interceptors/slack/slack_test.go`: Tekton's `slack` interceptor copies the form
//! fields named by `requestedFields` into extensions. Every row sets `requestedFields`,
//! which Sluice refuses as documented.

use crate::suite::Suite;

const FILE: &str = "pkg/interceptors/slack/slack_test.go";

pub fn cases(suite: &mut Suite) {
    let mut file = suite.file(FILE);
    let refused = "`requestedFields` of the slack interceptor is refused \
                   (docs/tekton.md, \"Not evaluated, so refused\")";
    file.skip(
        "TestInterceptor_ExecuteTrigger_ShouldContinue",
        &["valid case"],
        refused,
    );
    file.skip(
        "TestInterceptor_ExecuteTrigger_ShouldNotContinue",
        &[
            "bad payload",
            "skip params - no content type",
            "skip params - no slack signature",
        ],
        refused,
    );
}
