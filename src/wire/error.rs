//! The one error type of the `wire` room: what was wrong with the bytes, never a panic.

use core::fmt;

/// Why a codec rejected its input. `&'static str` names the field, so errors are actionable
/// without allocating on the (possibly hostile) invalid path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The input ended before the named field was complete.
    Truncated(&'static str),
    /// The named field holds a value the format does not allow.
    Malformed(&'static str),
    /// A well-formed value of a newer or optional format this implementation does not accept.
    Unsupported(&'static str),
    /// The named field or the whole object exceeds a protocol or implementation cap.
    TooLarge(&'static str),
}

/// Result alias of the `wire` room.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated(what) => write!(f, "truncated: input ends inside {what}"),
            Error::Malformed(what) => write!(f, "malformed: invalid {what}"),
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
            Error::TooLarge(what) => write!(f, "too large: {what} exceeds its limit"),
        }
    }
}

impl std::error::Error for Error {}
