//! Profile linter.
