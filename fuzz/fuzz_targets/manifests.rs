//! What `baton deploy` reads: a `baton.toml` manifest and an OpenFaaS `stack.yml`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Handlers resolve against `/` (only looked up, never read or written).
    let base = Path::new("/");
    if let Ok(deployments) = baton_api::manifest::parse_manifest(text, &base.join("baton.toml")) {
        for deployment in deployments {
            let _ = deployment.request.into_spec(None);
        }
    }
    if let Ok(deployments) = baton_api::manifest::parse_stack(text, &base.join("stack.yml")) {
        for deployment in deployments {
            let _ = deployment.request.into_spec(None);
        }
    }
});
