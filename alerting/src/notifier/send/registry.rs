//! The registry of integrations: [`integrations!`] turns the list of `*_configs` keys and
//! their configuration types (each implementing [`super::Integration`]) into the
//! [`Receiver`] type of the configuration, the list of kinds the metrics are kept for, the
//! keys a receiver may have, the load-time checks of every entry and the integrations a
//! receiver delivers to. Adding a receiver kind is one line in [`super`]'s list.

/// Generates [`Receiver`] and the registry functions from `key => Type` lines.
macro_rules! integrations {
    ($($key:ident => $ty:ty),+ $(,)?) => {
        /// A named receiver; fields are the YAML keys.
        #[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct Receiver {
            /// `name`, unique.
            pub name: String,
            $(
                #[allow(missing_docs)]
                #[serde(
                    deserialize_with = "crate::notifier::config::scalar::or_default",
                    skip_serializing_if = "Vec::is_empty"
                )]
                pub $key: Vec<$ty>,
            )+
        }

        impl Receiver {
            /// Checks every entry and applies the `global` fallbacks; the error names the
            /// entry (`email_configs[0]`).
            pub(crate) fn resolve_integrations(
                &mut self,
                global: &crate::notifier::config::GlobalConfig,
            ) -> Result<(), (String, $crate::notifier::send::FieldError)> {
                use $crate::notifier::send::Integration as _;
                $(
                    for (j, c) in self.$key.iter_mut().enumerate() {
                        c.resolve(global)
                            .map_err(|e| (format!("{}[{j}]", stringify!($key)), e))?;
                    }
                )+
                Ok(())
            }

            /// The integrations of the receiver with their index among those of the
            /// same kind, in registry order.
            pub fn integrations(
                &self,
            ) -> Vec<(usize, Box<dyn $crate::notifier::send::Integration>)> {
                let mut out: Vec<(usize, Box<dyn $crate::notifier::send::Integration>)> =
                    Vec::new();
                $(
                    for (j, c) in self.$key.iter().enumerate() {
                        out.push((j, Box::new(c.clone())));
                    }
                )+
                out
            }
        }

        /// The `*_configs` keys a receiver may have.
        pub const KEYS: &[&str] = &[$(stringify!($key)),+];

        /// The kinds of the registered integrations (`webhook`, `email`, …), in order.
        pub fn kinds() -> Vec<&'static str> {
            use $crate::notifier::send::Integration as _;
            vec![$(<$ty>::default().kind()),+]
        }
    };
}

pub(super) use integrations;
