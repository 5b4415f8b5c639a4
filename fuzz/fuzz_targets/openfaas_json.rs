//! An OpenFaaS deployment as `POST /system/functions` receives it: JSON into a deploy request,
//! into a validated spec, and the quantities and host lists inside it parsed on their own; a
//! secret as `/system/secrets` receives it.
#![no_main]

use baton_api::{DeployRequest, FunctionSpec, outbound::AllowedHosts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<DeployRequest>(data) {
        let process = request.is_process();
        if let Ok(spec) = request.into_spec(None) {
            spec.validate()
                .expect("into_spec returned a spec that does not validate");
            // What the registry stores must read back as the same spec.
            let stored = serde_json::to_vec(&spec).unwrap();
            let read: FunctionSpec = serde_json::from_slice(&stored).unwrap();
            assert_eq!(read, spec, "a spec changed through its JSON");
            let _ = process;
        }
    }
    if let Ok(secret) = serde_json::from_slice::<baton_api::Secret>(data)
        && secret.validate().is_ok()
    {
        // A valid secret's name is a safe file name.
        assert!(!secret.name.contains('/') && secret.name != "." && secret.name != "..");
        assert!(secret.bytes().len() <= baton_api::MAX_SECRET_BYTES);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = baton_api::parse_memory(text);
        let _ = baton_api::parse_cpu(text);
        let _ = baton_api::parse_duration(text);
        let _ = AllowedHosts::parse(text);
        let _ = baton_api::FunctionName::new(text);
    }
});
