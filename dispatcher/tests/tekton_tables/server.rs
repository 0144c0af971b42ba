//! Tekton's interceptor server (`pkg/interceptors/server`) and its Secret cache: the
//! process that serves Tekton's core interceptors over HTTPS and manages its certificates.
//! Sluice evaluates the core interceptors in-process (docs/tekton.md, "Built-in
//! ClusterInterceptors are built in") and has no such server, so none of these cases apply.

use crate::suite::Suite;

pub fn cases(suite: &mut Suite) {
    let server = "Tekton's core interceptor server, which Sluice does not have: it evaluates \
                  the core interceptors in-process";
    let mut file = suite.file("pkg/interceptors/server/server_test.go");
    file.skip(
        "TestServer_ServeHTTP",
        &[
            "valid request that should continue",
            "valid request that should not continue",
        ],
        server,
    );
    file.skip(
        "TestServer_ServeHTTP_Error",
        &["bad path", "invalid body"],
        server,
    );
    for function in [
        "TestServer_RegisterInterceptor",
        "Test_SecretNotExist",
        "Test_CreateSecret",
        "Test_CheckCertValidity",
        "Test_CreateAndValidateCerts",
        "Test_UpdateCACertToClusterInterceptorCRD",
    ] {
        file.skip(function, &[""], server);
    }
    file.skip(
        "Test_GetTLSData",
        &[
            "Invalid secret",
            "missing key",
            "missing cert",
            "Invalid certs",
            "Valid certs",
        ],
        server,
    );
    let mut file = suite.file("pkg/interceptors/secret_getter_test.go");
    file.skip(
        "TestCacheSecrets",
        &[""],
        "the cache of Secrets Tekton's interceptor server reads per request; Sluice reads \
         Secrets with the configuration",
    );
}
