//! How a function answers: its handler's result written in the classic watchdog's format.

use baton_sdk::{Request, Response};
use serde_json::{Map, Value};
use socialnet_logic::{classic, fields};

/// A request's fields.
pub type Input = Map<String, Value>;

/// What a JSON function returns: the reply's JSON, or the error it exits with.
pub type Outcome = Result<Value, Value>;

/// What a function that passes a callee's JSON on returns: the reply as JSON text (one
/// line, valid), so what it passes on is never parsed into a tree and written again.
pub type TextOutcome = Result<String, Value>;

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
    Text(Style, fn(&Input) -> TextOutcome),
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

    /// A function that takes a JSON object and answers JSON text it assembled.
    pub const fn text(name: &'static str, style: Style, run: fn(&Input) -> TextOutcome) -> Self {
        Function {
            name,
            handler: Handler::Text(style, run),
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
        let style = match self.handler {
            Handler::Raw(run) => return run(request),
            Handler::Json(style, _) | Handler::Text(style, _) => style,
        };
        // The watchdog echoes the request's content type when the function sets none.
        let content_type = request
            .header("content-type")
            .unwrap_or("application/json")
            .to_string();
        let outcome = match (fields::object(&request.body), &self.handler) {
            (Ok(input), Handler::Json(_, run)) => run(&input).map(|value| value.to_string()),
            (Ok(input), Handler::Text(_, run)) => run(&input),
            (Ok(_), Handler::Raw(_)) => unreachable!("raw functions answered above"),
            (Err(message), _) => Err(style.error("MissingFieldError", message)),
        };
        let (status, body) = match outcome {
            Ok(text) => (200, classic::success_body(&text)),
            Err(value) => (500, classic::failure_body(&value)),
        };
        Response::new(status, body).with_header("content-type", &content_type)
    }
}

/// A field error in `style`: `MissingFieldError` with the reason.
pub fn missing(style: Style) -> impl Fn(String) -> Value {
    move |message| style.error("MissingFieldError", message)
}
