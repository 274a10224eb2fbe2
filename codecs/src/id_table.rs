//! [`id_table!`](macro@crate::id_table): a protocol's message ids written once.
//!
//! Why: a gateway labels its metrics by message id and must keep the label set bounded (a
//! device must not grow a metric's cardinality with made-up ids), and a protocol crate names
//! the same ids in its decoder and encoder. Kept apart, those lists drift. One table per
//! protocol generates the constants, the list of known ids and the labels.

/// Generates, in the calling module, one constant per row, `KNOWN` (every id, in table
/// order) and `label(id)` (the row's label, `"other"` for an id not in the table).
///
/// ```
/// mod id {
///     codecs::id_table! { u8;
///         /// 0x01 login.
///         LOGIN = 0x01, "0x01";
///     }
/// }
/// assert_eq!(id::label(id::LOGIN), "0x01");
/// assert_eq!(id::label(0x7f), "other");
/// assert_eq!(id::KNOWN, &[0x01]);
/// ```
#[macro_export]
macro_rules! id_table {
    ($ty:ty; $($(#[doc = $doc:literal])* $name:ident = $id:literal, $label:literal;)*) => {
        $($(#[doc = $doc])* pub const $name: $ty = $id;)*

        /// Every id of the table, in table order.
        pub const KNOWN: &[$ty] = &[$($id),*];

        /// A bounded metric label for an id: a known id as its lowercase hex, anything
        /// else (vendor ids, garbage) as `other`.
        pub fn label(id: $ty) -> &'static str {
            match id {
                $($id => $label,)*
                _ => "other",
            }
        }
    };
}
