//! Protobuf messages the shim sends inside an `Any` (events, metrics), each with its
//! type name spelled out.
//!
//! containerd-shim names a message by reflection (`descriptor_dyn().full_name()`, in
//! `util::convert_to_any`, which `RemotePublisher::publish` calls for every event).
//! The first such call builds the descriptors of the message's whole `.proto` file
//! and of everything it imports — for containerd's events that is gogo.proto and
//! google/protobuf/descriptor.proto, parsed with their source comments — and keeps
//! them for the life of the process: ~300 kB of heap in every shim, most of its heap
//! (bench/README.md, "Shim memory"). The shim only needs the names; a unit test
//! checks each against the descriptor, so a renamed type cannot slip through.

use containerd_shim::protos::{
    cgroups, cgroups_v2,
    events::task::{
        TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
        TaskResumed, TaskStart,
    },
    protobuf::{well_known_types::any::Any, Message},
};

/// A message that knows its fully qualified protobuf type name (an `Any`'s
/// `type_url`, without the `type.googleapis.com/` prefix, as containerd-shim and
/// containerd's Go shims send it).
pub trait Named: Send + 'static {
    /// The message as an `Any`. Encoded through the static `Message` trait: protobuf's
    /// `MessageDyn` encoders ask for the descriptor (for an error message) even when
    /// nothing fails.
    fn to_any(&self) -> Result<Any, containerd_shim::protos::protobuf::Error>;
}

macro_rules! named {
    ($($ty:ty => $name:literal,)*) => {
        $(impl Named for $ty {
            fn to_any(&self) -> Result<Any, containerd_shim::protos::protobuf::Error> {
                Ok(Any {
                    type_url: $name.into(),
                    value: Message::write_to_bytes(self)?,
                    ..Default::default()
                })
            }
        })*

        #[cfg(test)]
        mod names {
            use containerd_shim::protos::protobuf::MessageFull;

            use super::*;

            /// Every spelled-out name is the one reflection gives.
            #[test]
            fn names_match_the_descriptors() {
                $(assert_eq!(
                    <$ty>::default().to_any().unwrap().type_url,
                    <$ty>::descriptor().full_name(),
                    stringify!($ty)
                );)*
            }
        }
    };
}

named! {
    TaskCreate => "containerd.events.TaskCreate",
    TaskStart => "containerd.events.TaskStart",
    TaskDelete => "containerd.events.TaskDelete",
    TaskExit => "containerd.events.TaskExit",
    TaskOOM => "containerd.events.TaskOOM",
    TaskExecAdded => "containerd.events.TaskExecAdded",
    TaskExecStarted => "containerd.events.TaskExecStarted",
    TaskPaused => "containerd.events.TaskPaused",
    TaskResumed => "containerd.events.TaskResumed",
    cgroups::metrics::Metrics => "io.containerd.cgroups.v1.Metrics",
    cgroups_v2::metrics::Metrics => "io.containerd.cgroups.v2.Metrics",
}

#[cfg(test)]
mod tests {
    use containerd_shim::util::convert_to_any;

    use super::*;

    /// The same bytes containerd-shim's reflective `convert_to_any` produces.
    #[test]
    fn same_any_as_containerd_shim() {
        let event = TaskExit {
            container_id: "c1".into(),
            id: "c1".into(),
            pid: 42,
            exit_status: 137,
            ..Default::default()
        };
        let ours = event.to_any().unwrap();
        assert_eq!(ours, convert_to_any(Box::new(event.clone())).unwrap());
        assert_eq!(TaskExit::parse_from_bytes(&ours.value).unwrap(), event);
    }
}
