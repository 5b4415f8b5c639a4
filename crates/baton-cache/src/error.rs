//! Why an object operation was refused. Nothing is stored or changed in any case.

/// The error of every object API, with the HTTP status (and S3 code) a client acts on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObjectError {
    /// A malformed request other than a bad name.
    #[error("{0}")]
    Invalid(String),
    /// A bucket name outside S3's rules.
    #[error("{0}")]
    InvalidBucket(String),
    /// An object key outside the rules.
    #[error("{0}")]
    InvalidKey(String),
    /// The bucket was never created (or was deleted).
    #[error("bucket {0} does not exist")]
    NoSuchBucket(String),
    /// The object does not exist.
    #[error("object {0} does not exist")]
    NoSuchKey(String),
    /// Deleting a bucket that still holds objects.
    #[error("bucket {0} is not empty")]
    BucketNotEmpty(String),
    /// An object over the node's size limit.
    #[error("object of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// What was sent.
        size: u64,
        /// `objects.max_object_bytes`.
        limit: u64,
    },
    /// The store did not answer (or failed): nothing was acknowledged.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    /// The write-back queue is full: retry after the flusher catches up.
    #[error("write-back queue full ({0} bytes not yet in the store): retry later")]
    Full(u64),
    /// No credentials, or unknown ones.
    #[error("missing or unknown credentials: send Authorization: Bearer $BATON_API_TOKEN")]
    Unauthorized,
    /// Credentials for another namespace.
    #[error("{0}")]
    Forbidden(String),
}

impl ObjectError {
    /// The HTTP status the APIs answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            ObjectError::Invalid(_)
            | ObjectError::InvalidBucket(_)
            | ObjectError::InvalidKey(_) => 400,
            ObjectError::NoSuchBucket(_) | ObjectError::NoSuchKey(_) => 404,
            ObjectError::BucketNotEmpty(_) => 409,
            ObjectError::TooLarge { .. } => 413,
            ObjectError::Unavailable(_) | ObjectError::Full(_) => 503,
            ObjectError::Unauthorized => 401,
            ObjectError::Forbidden(_) => 403,
        }
    }

    /// The S3 error code of the same meaning.
    pub fn s3_code(&self) -> &'static str {
        match self {
            ObjectError::Invalid(_) => "InvalidArgument",
            ObjectError::InvalidBucket(_) => "InvalidBucketName",
            ObjectError::InvalidKey(_) => "InvalidArgument",
            ObjectError::NoSuchBucket(_) => "NoSuchBucket",
            ObjectError::NoSuchKey(_) => "NoSuchKey",
            ObjectError::BucketNotEmpty(_) => "BucketNotEmpty",
            ObjectError::TooLarge { .. } => "EntityTooLarge",
            ObjectError::Unavailable(_) => "ServiceUnavailable",
            ObjectError::Full(_) => "SlowDown",
            ObjectError::Unauthorized => "InvalidAccessKeyId",
            ObjectError::Forbidden(_) => "AccessDenied",
        }
    }

    /// Maps the store's error: a missing object is the caller's news, anything else means the
    /// store cannot be trusted with the request now.
    pub(crate) fn from_store(error: object_store::Error, what: &dyn std::fmt::Display) -> Self {
        match error {
            object_store::Error::NotFound { .. } => ObjectError::NoSuchKey(what.to_string()),
            other => ObjectError::Unavailable(other.to_string()),
        }
    }
}
