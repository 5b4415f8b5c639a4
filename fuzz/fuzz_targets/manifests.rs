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
    // Templates are "built" in place: the parsing around them is what is fuzzed.
    let mut build = |b: &baton_api::manifest::TemplateBuild| {
        Ok(baton_api::manifest::Built {
            dir: b.handler.clone(),
            template: baton_api::manifest::parse_template(
                "language: t\nfprocess: t\nenvironment:\n  mode: http\n",
            )?,
        })
    };
    let _ = baton_api::manifest::parse_template(text);
    if let Ok(deployments) =
        baton_api::manifest::parse_stack(text, &base.join("stack.yml"), &mut build)
    {
        for deployment in deployments {
            let _ = deployment.request.into_spec(None);
        }
    }
});
