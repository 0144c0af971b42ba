//! Secrets as `compareSecret` sees them: the references a program names, and where an
//! evaluation looks them up.

/// A `compareSecret` call whose key, name and namespace are literals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRef {
    /// The key within the Secret's data.
    pub key: String,
    /// The Secret's name.
    pub name: String,
    /// The Secret's namespace; `None` means the trigger's own.
    pub namespace: Option<String>,
}

/// Looks up a Secret's key for `compareSecret`.
pub trait SecretSource {
    /// The value of the Secret's key, or `None` if the Secret or key does not exist. The
    /// bytes are only compared, in constant time; never logged or returned.
    fn secret(&self, reference: &SecretRef) -> Option<&[u8]>;
}
