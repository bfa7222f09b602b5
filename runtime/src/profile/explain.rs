//! Plain-language summary of a profile.
