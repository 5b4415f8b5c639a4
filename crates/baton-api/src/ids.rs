//! The identities of the cluster's parts: a sandbox, a worker, a gateway.
//!
//! Each is a string on the wire (the cluster protocol carries them as such) and a distinct
//! type in code, so a worker id can never be passed where a sandbox id is meant: the cluster
//! manager keys maps by all three.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as the wire carries it.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as the wire carries it, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// One sandbox, unique in the cluster (`<function>-<16 hex digits>`).
    SandboxId
);
string_id!(
    /// One worker, as it registers (`--id`, or its host name and port).
    WorkerId
);
string_id!(
    /// One gateway, as it registers.
    GatewayId
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn ids_look_up_by_str_and_print_as_on_the_wire() {
        let mut workers = HashMap::new();
        workers.insert(WorkerId::from("w1"), 1);
        assert_eq!(workers.get("w1"), Some(&1));
        assert_eq!(SandboxId::from("hello-00").to_string(), "hello-00");
        assert_eq!(
            serde_json::to_string(&GatewayId::from("g")).unwrap(),
            "\"g\""
        );
    }
}
