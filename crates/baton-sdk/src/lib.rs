//! Write a Baton function in Rust as a plain `fn(Request) -> Response`.
//!
//! The function compiles to a `wasi:http/proxy` component (`cargo build --target
//! wasm32-wasip2`), so it also runs on any other wasi:http host. The SDK reads the whole
//! request body before calling the handler and writes the whole response after: functions
//! that need streaming can use the re-exported [`wasi`] bindings directly.
//!
//! ```text
//! fn handle(request: baton_sdk::Request) -> baton_sdk::Response {
//!     baton_sdk::Response::text(200, format!("you sent {} bytes\n", request.body.len()))
//! }
//! baton_sdk::http_handler!(handle);
//! ```
#![deny(missing_docs)]

mod fetch;
mod incoming;
mod invoke;
pub mod objects;
mod request;
mod response;
pub mod state;

pub use fetch::{Pending, fetch, start};
pub use invoke::{DEFAULT_GATEWAY, gateway_url, invoke, invoke_all, invoke_start};
pub use request::Request;
pub use response::Response;
/// The wasi bindings the SDK is built on, for what the SDK does not wrap.
pub use wasi;

use wasi::http::types::{IncomingRequest, ResponseOutparam};

/// Reads `incoming`, calls `handler`, and sends its response; the glue behind
/// [`http_handler!`].
pub fn serve(incoming: IncomingRequest, out: ResponseOutparam, handler: fn(Request) -> Response) {
    let response = match Request::read(incoming) {
        Ok(request) => handler(request),
        Err(message) => Response::text(400, message),
    };
    response.send(out);
}

/// Exports `handler: fn(Request) -> Response` as the component's
/// `wasi:http/incoming-handler`.
#[macro_export]
macro_rules! http_handler {
    ($handler:path) => {
        struct BatonSdkComponent;

        impl $crate::wasi::exports::http::incoming_handler::Guest for BatonSdkComponent {
            fn handle(
                request: $crate::wasi::http::types::IncomingRequest,
                out: $crate::wasi::http::types::ResponseOutparam,
            ) {
                $crate::serve(request, out, $handler)
            }
        }

        $crate::wasi::http::proxy::export!(BatonSdkComponent with_types_in $crate::wasi);
    };
}
