//! Helpers for Prometheus metrics: label values spelled in `snake_case`.

/// Implements `EncodeLabelValue` for a fieldless enum with an explicit spelling per variant:
///
/// ```ignore
/// sluice_runtime::label_values!(Outcome { Accepted => "accepted", NotFound => "not_found" });
/// ```
#[macro_export]
macro_rules! label_values {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl prometheus_client::encoding::EncodeLabelValue for $ty {
            fn encode(
                &self,
                encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
            ) -> ::std::fmt::Result {
                ::std::fmt::Write::write_str(encoder, match self { $(Self::$variant => $text),+ })
            }
        }
    };
}
