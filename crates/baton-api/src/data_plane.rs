//! The HTTP protocol between a cluster gateway and a worker's data listener
//! (`ANY /sandbox/{id}/{path}`): the headers both sides must spell the same.

/// Header of a worker answer meaning "no such sandbox here": nothing ran, the gateway may
/// try another sandbox.
pub const SANDBOX_MISSING: &str = "x-baton-sandbox-missing";

/// Header of a request to a sandbox a scale from zero has just placed, maybe not created
/// yet: how many milliseconds the worker may hold the request for the sandbox to appear.
pub const SANDBOX_WAIT: &str = "x-baton-sandbox-wait-ms";
