use crate::Kind;

/// Why a state operation was refused. The object is unchanged in every case.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// The request is malformed: a bad name, a bad operation, a non-finite number.
    #[error("{0}")]
    Invalid(String),
    /// A read of an object that does not exist on this node.
    #[error("object {0:?} does not exist")]
    NotFound(String),
    /// An operation of one type on an object of another.
    #[error("object {object:?} is a {actual}, not a {expected}")]
    TypeMismatch {
        /// The object's name.
        object: String,
        /// Its type.
        actual: Kind,
        /// The type the operation needs.
        expected: Kind,
    },
    /// A value, a vector or the node's object count beyond its configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The durable log failed or the agent is stopping: the operation was not acknowledged.
    #[error("state unavailable: {0}")]
    Unavailable(String),
    /// The local API was called without a valid token.
    #[error("missing or unknown token: send Authorization: Bearer $BATON_API_TOKEN")]
    Unauthorized,
    /// The token is valid for another namespace.
    #[error("{0}")]
    Forbidden(String),
}

impl StateError {
    /// The HTTP status the local API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            StateError::Invalid(_) => 400,
            StateError::NotFound(_) => 404,
            StateError::TypeMismatch { .. } => 409,
            StateError::TooLarge(_) => 413,
            StateError::Unavailable(_) => 503,
            StateError::Unauthorized => 401,
            StateError::Forbidden(_) => 403,
        }
    }
}
