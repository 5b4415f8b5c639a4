//! Carrying [`ApiError`] over gRPC: each kind maps to one status code and back, so a 409
//! from the control plane is a 409 at every gateway.

use crate::{ApiError, ErrorKind};
use tonic::{Code, Status};

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let code = match error.kind {
            ErrorKind::BadRequest => Code::InvalidArgument,
            ErrorKind::Unauthorized => Code::Unauthenticated,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::Conflict => Code::AlreadyExists,
            ErrorKind::RequestTimeout => Code::Cancelled,
            ErrorKind::PayloadTooLarge => Code::OutOfRange,
            ErrorKind::Overloaded => Code::ResourceExhausted,
            ErrorKind::FunctionFailed => Code::Aborted,
            ErrorKind::BadGateway => Code::DataLoss,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::Timeout => Code::DeadlineExceeded,
            ErrorKind::Internal => Code::Internal,
        };
        Status::new(code, error.message)
    }
}

impl From<Status> for ApiError {
    fn from(status: Status) -> Self {
        let kind = match status.code() {
            Code::InvalidArgument => ErrorKind::BadRequest,
            Code::Unauthenticated => ErrorKind::Unauthorized,
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::Conflict,
            Code::Cancelled => ErrorKind::RequestTimeout,
            Code::OutOfRange => ErrorKind::PayloadTooLarge,
            Code::ResourceExhausted => ErrorKind::Overloaded,
            Code::Aborted => ErrorKind::FunctionFailed,
            Code::DataLoss => ErrorKind::BadGateway,
            Code::DeadlineExceeded => ErrorKind::Timeout,
            Code::Unavailable => {
                return ApiError::new(
                    ErrorKind::Unavailable,
                    format!("control plane unavailable: {}", status.message()),
                );
            }
            _ => ErrorKind::Internal,
        };
        ApiError::new(kind, status.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_survives_the_round_trip() {
        for kind in [
            ErrorKind::BadRequest,
            ErrorKind::Unauthorized,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::PayloadTooLarge,
            ErrorKind::Overloaded,
            ErrorKind::FunctionFailed,
            ErrorKind::BadGateway,
            ErrorKind::Timeout,
            ErrorKind::Internal,
        ] {
            let back = ApiError::from(Status::from(ApiError::new(kind, "m")));
            assert_eq!(back, ApiError::new(kind, "m"));
        }
    }
}
