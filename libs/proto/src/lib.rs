//! The generated gRPC contracts of FastBreak (messages, clients, servers) and the encoded file
//! descriptor set that server reflection serves.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![allow(missing_docs)] // the generated code carries the proto comments; a few items have none

pub mod codec;

/// The encoded `FileDescriptorSet` of every FastBreak contract, for server reflection and for
/// clients that discover methods at run time.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fastbreak_descriptor.bin"));

macro_rules! package {
    ($name:ident, $package:literal) => {
        #[doc = concat!("`", $package, "`")]
        pub mod $name {
            /// Version 1 of the contract.
            pub mod v1 {
                tonic::include_proto!($package);
            }
        }
    };
}

package!(common, "fastbreak.common.v1");
package!(gateway, "fastbreak.gateway.v1");
package!(user, "fastbreak.user.v1");
package!(strategy, "fastbreak.strategy.v1");
package!(risk, "fastbreak.risk.v1");
package!(marketplace, "fastbreak.marketplace.v1");
package!(scouting, "fastbreak.scouting.v1");
package!(trading, "fastbreak.trading.v1");
package!(notification, "fastbreak.notification.v1");
package!(agents, "fastbreak.agents.v1");
