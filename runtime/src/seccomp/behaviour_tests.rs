//! Behaviour tests: load compiled filters in forked children.
