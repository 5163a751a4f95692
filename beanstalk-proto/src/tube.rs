//! Tube names, validated once so that no malformed name reaches the wire.

use core::fmt;
use core::ops::Deref;

use alloc::string::String;
use bytes::Bytes;

use crate::error::CommandError;

/// The longest tube name beanstalkd accepts.
pub const MAX_TUBE_NAME_LEN: usize = 200;

/// A valid tube name: 1 to 200 bytes of `A-Z a-z 0-9 - + / ; . $ _ ( )`,
/// not starting with `-`.
///
/// Cheap to clone (it shares its bytes), and constructed only through
/// validation, so a `Tube` can always be sent as is.
///
/// ```
/// use beanstalk_proto::{CommandError, Tube};
///
/// let tube = Tube::new("emails.outgoing")?;
/// assert_eq!(tube.as_str(), "emails.outgoing");
/// assert_eq!(Tube::new("-x"), Err(CommandError::TubeNameLeadingHyphen));
/// assert_eq!(Tube::new(""), Err(CommandError::EmptyTubeName));
/// assert!(Tube::new("a b").is_err());
/// # Ok::<(), CommandError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tube(Bytes);

impl Tube {
    /// The tube every connection uses and watches at first.
    pub const DEFAULT: Self = Self(Bytes::from_static(b"default"));

    /// Validates `name` and copies it.
    pub fn new(name: &str) -> Result<Self, CommandError> {
        validate(name.as_bytes())?;
        Ok(Self(Bytes::copy_from_slice(name.as_bytes())))
    }

    /// Validates a `'static` name without copying it.
    pub fn from_static(name: &'static str) -> Result<Self, CommandError> {
        validate(name.as_bytes())?;
        Ok(Self(Bytes::from_static(name.as_bytes())))
    }

    /// Wraps bytes already known to be a valid name (from a server reply).
    pub(crate) fn from_validated(name: Bytes) -> Self {
        debug_assert!(is_valid_tube_name(&name));
        Self(name)
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        // Validation admits only ASCII, so this cannot fail; an empty string
        // keeps the accessor panic-free regardless.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The name as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Checks a name against the protocol's rules.
pub(crate) fn validate(name: &[u8]) -> Result<(), CommandError> {
    match name {
        [] => Err(CommandError::EmptyTubeName),
        _ if name.len() > MAX_TUBE_NAME_LEN => {
            Err(CommandError::TubeNameTooLong { len: name.len() })
        }
        [b'-', ..] => Err(CommandError::TubeNameLeadingHyphen),
        _ => match name.iter().position(|&b| !is_name_byte(b)) {
            Some(index) => Err(CommandError::TubeNameInvalidByte {
                byte: name.get(index).copied().unwrap_or_default(),
                index,
            }),
            None => Ok(()),
        },
    }
}

/// Whether `name` is a valid tube name.
pub(crate) fn is_valid_tube_name(name: &[u8]) -> bool {
    validate(name).is_ok()
}

const fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'+' | b'/' | b';' | b'.' | b'$' | b'_' | b'(' | b')'
        )
}

impl Deref for Tube {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Tube {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Tube {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Tube {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tube({:?})", self.as_str())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Tube {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for Tube {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Tube {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl TryFrom<&str> for Tube {
    type Error = CommandError;
    fn try_from(name: &str) -> Result<Self, CommandError> {
        Self::new(name)
    }
}

impl TryFrom<String> for Tube {
    type Error = CommandError;
    fn try_from(name: String) -> Result<Self, CommandError> {
        validate(name.as_bytes())?;
        Ok(Self(Bytes::from(name.into_bytes())))
    }
}

/// Anything a command accepts as a tube name: `&str`, `String` or an already
/// validated [`Tube`] (which is then not checked or copied again).
pub trait IntoTube {
    /// Validates (if needed) and converts.
    fn into_tube(self) -> Result<Tube, CommandError>;
}

impl IntoTube for Tube {
    fn into_tube(self) -> Result<Tube, CommandError> {
        Ok(self)
    }
}

impl IntoTube for &Tube {
    fn into_tube(self) -> Result<Tube, CommandError> {
        Ok(self.clone())
    }
}

impl IntoTube for &str {
    fn into_tube(self) -> Result<Tube, CommandError> {
        Tube::new(self)
    }
}

impl IntoTube for String {
    fn into_tube(self) -> Result<Tube, CommandError> {
        Tube::try_from(self)
    }
}

impl IntoTube for &String {
    fn into_tube(self) -> Result<Tube, CommandError> {
        Tube::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn length_boundary() {
        let ok = "a".repeat(200);
        let too_long = "a".repeat(201);
        assert!(Tube::new(&ok).is_ok());
        assert_eq!(
            Tube::new(&too_long),
            Err(CommandError::TubeNameTooLong { len: 201 })
        );
    }

    #[test]
    fn every_byte_is_classified() {
        for b in 0..=255u8 {
            let name = [b'a', b];
            let expected = b.is_ascii_alphanumeric() || b"-+/;.$_()".contains(&b);
            assert_eq!(is_valid_tube_name(&name), expected, "byte {b:#04x}");
        }
        for bad in ["a\r", "a\n", "a\0", "a b", "a\t", "a*b", "é"] {
            assert!(Tube::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Tube::new("ab\0"),
            Err(CommandError::TubeNameInvalidByte { byte: 0, index: 2 })
        );
        assert!(Tube::try_from("x-".to_string()).is_ok());
    }
}
