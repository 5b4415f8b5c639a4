//! The cluster protocol's messages as a worker, gateway or control plane receives them, with
//! the JSON carried in their byte fields.
#![no_main]

use baton_api::cluster;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(function) = cluster::Function::decode(data)
        && let Ok(spec) = serde_json::from_slice::<baton_api::FunctionSpec>(&function.spec_json)
    {
        let _ = spec.validate();
    }
    if let Ok(request) = cluster::DeployRequest::decode(data)
        && let Ok(request) =
            serde_json::from_slice::<baton_api::DeployRequest>(&request.request_json)
    {
        let _ = request.into_spec(None);
    }
    if let Ok(list) = cluster::FunctionStatusList::decode(data) {
        for json in &list.json {
            let _ = serde_json::from_slice::<baton_api::FunctionStatus>(json);
        }
    }
    if let Ok(request) = cluster::LogRequest::decode(data) {
        let _ = baton_api::query_from_wire(&request);
    }
    if let Ok(line) = cluster::LogLine::decode(data) {
        let _ = baton_api::entry_from_wire(line);
    }
    let _ = cluster::GatewayUpdate::decode(data);
    let _ = cluster::Heartbeat::decode(data);
    let _ = cluster::CreateSandboxes::decode(data);
    let _ = cluster::WorkerInfo::decode(data);
});
