pub mod manager;
// [stockade patch] the systemd driver on cgroup v1 (see systemd/legacy.rs).
pub mod legacy;
