//! Node configuration.
