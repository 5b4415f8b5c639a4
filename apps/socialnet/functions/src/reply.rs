//! How a function answers: its handler's result written in the classic watchdog's format.

use baton_sdk::{Request, Response};
use serde_json::{Map, Value};
use socialnet_logic::{classic, fields};

/// A request's fields.
pub type Input = Map<String, Value>;

/// What a JSON function returns: the reply's JSON, or the error it exits with.
pub type Outcome = Result<Value, Value>;

/// How a function reports a missing or mistyped field: the original's functions use either
/// `{"status","message"}` or `{"status","errors":[…]}`.
#[derive(Clone, Copy)]
pub enum Style {
    Message,
    List,
}

impl Style {
    /// The error `status` with `message`, in this style.
    pub fn error(self, status: &str, message: impl Into<String>) -> Value {
        match self {
            Style::Message => classic::error_message(status, message),
            Style::List => classic::error_list(status, vec![Value::String(message.into())]),
        }
    }
}

enum Handler {
    Json(Style, fn(&Input) -> Outcome),
    Raw(fn(Request) -> Response),
}

/// A function of the application.
pub struct Function {
    pub name: &'static str,
    handler: Handler,
}

impl Function {
    /// A function that takes a JSON object and answers JSON.
    pub const fn json(name: &'static str, style: Style, run: fn(&Input) -> Outcome) -> Self {
        Function {
            name,
            handler: Handler::Json(style, run),
        }
    }

    /// A function that answers HTTP itself (the web pages).
    pub const fn raw(name: &'static str, run: fn(Request) -> Response) -> Self {
        Function {
            name,
            handler: Handler::Raw(run),
        }
    }

    pub fn serve(&self, request: Request) -> Response {
        let (style, run) = match self.handler {
            Handler::Raw(run) => return run(request),
            Handler::Json(style, run) => (style, run),
        };
        // The watchdog echoes the request's content type when the function sets none.
        let content_type = request
            .header("content-type")
            .unwrap_or("application/json")
            .to_string();
        let outcome = match fields::object(&request.body) {
            Ok(input) => run(&input),
            Err(message) => Err(style.error("MissingFieldError", message)),
        };
        let (status, body) = match outcome {
            Ok(value) => (200, classic::success_body(&value)),
            Err(value) => (500, classic::failure_body(&value)),
        };
        Response::new(status, body).with_header("content-type", &content_type)
    }
}

/// A field error in `style`: `MissingFieldError` with the reason.
pub fn missing(style: Style) -> impl Fn(String) -> Value {
    move |message| style.error("MissingFieldError", message)
}
