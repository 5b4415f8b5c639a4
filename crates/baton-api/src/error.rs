use std::fmt;

/// What went wrong, in the few kinds a client can act on; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request or spec is malformed (400).
    BadRequest,
    /// The caller lacks a valid bearer token (401).
    Unauthorized,
    /// No such function (404).
    NotFound,
    /// The function exists already, or a concurrent change won (409).
    Conflict,
    /// The request body did not arrive within the listener's deadline (408).
    RequestTimeout,
    /// The request body is larger than the function accepts (413).
    PayloadTooLarge,
    /// Every sandbox is busy and the wait queue is full (429).
    Overloaded,
    /// The function itself failed: trap, crash, non-zero exit (500).
    FunctionFailed,
    /// The sandbox could not be reached or answered garbage (502).
    BadGateway,
    /// The platform cannot serve this now, e.g. a sandbox never became ready (503).
    Unavailable,
    /// The function ran past its timeout (504).
    Timeout,
    /// A bug or an I/O failure in Baton itself (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status code that carries this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::NotFound => 404,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::Overloaded => 429,
            ErrorKind::FunctionFailed | ErrorKind::Internal => 500,
            ErrorKind::BadGateway => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
        }
    }
}

/// An error with a kind for the status code and a message for the human reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Which status the error maps to.
    pub kind: ErrorKind,
    /// What went wrong, in words that say what to fix.
    pub message: String,
}

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// A 400 error.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// A 404 for the function `name`.
    pub fn not_found(name: &str) -> Self {
        Self::new(ErrorKind::NotFound, format!("function {name:?} not found"))
    }

    /// A 500 for a failure of Baton itself.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}
