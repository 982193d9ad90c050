//! Immutable values that events share by reference count instead of copying.
//!
//! The sensor attaches the same executable path, arguments, user name, host name and
//! ancestry to every event of a process. Owned `String`s and `Vec`s made it allocate, copy
//! and free all of them for each event, which was half of the reader's time in an event
//! storm; these types make attaching them a reference-count increment. They serialize
//! exactly as the `String` and `Vec` they replace, so the wire format is unchanged.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Immutable text shared between events; clones are reference-count increments.
///
/// It reads like a `&str` (through `Deref`), compares with `str`, `&str` and `String`, and
/// serializes as a JSON string. The empty text (most events' `loginname`, `group`, a host
/// process's container id) holds no allocation, so creating, cloning and dropping it costs
/// nothing.
#[derive(Clone, Default)]
pub struct SharedStr(Option<Arc<str>>);

impl SharedStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or_default()
    }
}

impl Deref for SharedStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<std::ffi::OsStr> for SharedStr {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.as_str().as_ref()
    }
}

impl AsRef<std::path::Path> for SharedStr {
    fn as_ref(&self) -> &std::path::Path {
        self.as_str().as_ref()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &SharedStr) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &SharedStr) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for SharedStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), formatter)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), formatter)
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> SharedStr {
        SharedStr((!text.is_empty()).then(|| Arc::from(text)))
    }
}

impl From<&String> for SharedStr {
    fn from(text: &String) -> SharedStr {
        SharedStr::from(text.as_str())
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> SharedStr {
        SharedStr((!text.is_empty()).then(|| Arc::from(text)))
    }
}

impl From<std::borrow::Cow<'_, str>> for SharedStr {
    fn from(text: std::borrow::Cow<'_, str>) -> SharedStr {
        SharedStr((!text.is_empty()).then(|| Arc::from(text)))
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> String {
        text.as_str().to_owned()
    }
}

macro_rules! str_comparisons {
    ($($other:ty),*) => {$(
        impl PartialEq<$other> for SharedStr {
            fn eq(&self, other: &$other) -> bool {
                self.as_str() == &**other
            }
        }

        impl PartialEq<SharedStr> for $other {
            fn eq(&self, other: &SharedStr) -> bool {
                &**self == other.as_str()
            }
        }
    )*};
}

str_comparisons!(&str, String);

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SharedStr, D::Error> {
        String::deserialize(deserializer).map(SharedStr::from)
    }
}

/// An immutable list shared between events; clones are reference-count increments.
///
/// It reads like a slice (through `Deref`), compares with slices, arrays and `Vec`s of
/// comparable items, and serializes as a JSON array. Like [`SharedStr`], the empty list
/// holds no allocation.
pub struct SharedSlice<T>(Option<Arc<[T]>>);

impl<T> SharedSlice<T> {
    /// The items.
    pub fn as_slice(&self) -> &[T] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl<T> Clone for SharedSlice<T> {
    fn clone(&self) -> SharedSlice<T> {
        SharedSlice(self.0.clone())
    }
}

impl<T> Default for SharedSlice<T> {
    fn default() -> SharedSlice<T> {
        SharedSlice(None)
    }
}

impl<T> Deref for SharedSlice<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> AsRef<[T]> for SharedSlice<T> {
    fn as_ref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: fmt::Debug> fmt::Debug for SharedSlice<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_slice(), formatter)
    }
}

impl<T> From<Vec<T>> for SharedSlice<T> {
    fn from(items: Vec<T>) -> SharedSlice<T> {
        SharedSlice((!items.is_empty()).then(|| Arc::from(items)))
    }
}

impl<T, const N: usize> From<[T; N]> for SharedSlice<T> {
    fn from(items: [T; N]) -> SharedSlice<T> {
        SharedSlice((N > 0).then(|| Arc::from(items)))
    }
}

impl<T: Clone> From<&[T]> for SharedSlice<T> {
    fn from(items: &[T]) -> SharedSlice<T> {
        SharedSlice((!items.is_empty()).then(|| Arc::from(items)))
    }
}

impl<T> FromIterator<T> for SharedSlice<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> SharedSlice<T> {
        SharedSlice::from(items.into_iter().collect::<Vec<T>>())
    }
}

impl<'a, T> IntoIterator for &'a SharedSlice<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<T: PartialEq<U>, U> PartialEq<SharedSlice<U>> for SharedSlice<T> {
    fn eq(&self, other: &SharedSlice<U>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Eq> Eq for SharedSlice<T> {}

impl<T: std::hash::Hash> std::hash::Hash for SharedSlice<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl<T: PartialEq<U>, U> PartialEq<[U]> for SharedSlice<T> {
    fn eq(&self, other: &[U]) -> bool {
        self.as_slice() == other
    }
}

impl<T: PartialEq<U>, U> PartialEq<&[U]> for SharedSlice<T> {
    fn eq(&self, other: &&[U]) -> bool {
        self.as_slice() == *other
    }
}

impl<T: PartialEq<U>, U, const N: usize> PartialEq<[U; N]> for SharedSlice<T> {
    fn eq(&self, other: &[U; N]) -> bool {
        self.as_slice() == other
    }
}

impl<T: PartialEq<U>, U> PartialEq<Vec<U>> for SharedSlice<T> {
    fn eq(&self, other: &Vec<U>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Serialize> Serialize for SharedSlice<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for SharedSlice<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SharedSlice<T>, D::Error> {
        Vec::<T>::deserialize(deserializer).map(SharedSlice::from)
    }
}

/// `Option<Arc<T>>` as `Option<T>` on the wire, for `#[serde(with)]` (serde's own `Arc`
/// support needs its `rc` feature, which would change serde's features for the whole
/// workspace's build).
pub(crate) mod option_arc {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Arc<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_deref().serialize(serializer)
    }

    pub(crate) fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Arc<T>>, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map(Arc::new))
    }
}

#[cfg(test)]
mod tests {
    use crate::{SharedSlice, SharedStr};

    #[test]
    fn shared_values_read_compare_and_serialize_like_owned_ones() {
        let text = SharedStr::from("/usr/bin/bash");
        assert_eq!(text, "/usr/bin/bash");
        assert_eq!("/usr/bin/bash".to_owned(), text);
        assert!(text.ends_with("bash"));
        assert_eq!(
            format!("{text} {text:?}"),
            "/usr/bin/bash \"/usr/bin/bash\""
        );
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"/usr/bin/bash\"");
        let back: SharedStr = serde_json::from_str("\"/usr/bin/bash\"").unwrap();
        assert_eq!(back, text);

        let args = SharedSlice::from(vec!["-c".to_owned(), "id".to_owned()]);
        assert_eq!(args, ["-c", "id"]);
        assert_eq!(args.join(" "), "-c id");
        assert_eq!(serde_json::to_string(&args).unwrap(), r#"["-c","id"]"#);
        let back: SharedSlice<String> = serde_json::from_str(r#"["-c","id"]"#).unwrap();
        assert_eq!(back, args);
        assert!(SharedSlice::<String>::default().is_empty());
    }
}
