use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use super::controller::Controller;
use crate::common::{ControllerOpt, WrappedIoError, default_allow_devices, default_devices};

pub struct Devices {}

impl Controller for Devices {
    type Error = WrappedIoError;
    type Resource = ();

    fn apply(controller_opt: &ControllerOpt, cgroup_root: &Path) -> Result<(), Self::Error> {
        tracing::debug!("Apply Devices cgroup config");

        let mut rules: Vec<LinuxDeviceCgroup> = controller_opt
            .resources
            .devices()
            .clone()
            .unwrap_or_default();
        rules.extend(default_devices().iter().map(|d| d.into()));
        rules.extend(default_allow_devices());

        // [stockade patch] The kernel refuses a write of `a` (allow or deny all) to a
        // cgroup with children (EINVAL), so an update of a container that made
        // sub-cgroups failed. As runc's devices emulator: when the cgroup already
        // denies by default and so will the rules, write only the exceptions that
        // change; otherwise (a fresh cgroup, allow-all on either side) write the
        // rules as they are.
        let current = fs::read_to_string(cgroup_root.join("devices.list"))
            .ok()
            .and_then(|list| DeviceState::from_list(&list));
        let target = current.as_ref().map(|_| DeviceState::after(&rules));
        let mut writer = RuleWriter::new(cgroup_root);
        if let (Some(current), Some(Some(target))) = (current, target) {
            for line in current.transition(&target) {
                writer.write(line.file, &line.rule)?;
            }
            return Ok(());
        }
        for d in &rules {
            writer.write(Devices::file_of(d), &d.to_string())?;
        }

        Ok(())
    }

    // always needs to be called due to default devices
    fn needs_to_handle<'a>(_controller_opt: &'a ControllerOpt) -> Option<&'a Self::Resource> {
        Some(&())
    }
}

/// A cgroup v1 devices whitelist: default deny and these exceptions, each
/// `"TYPE MAJOR:MINOR"` (`*` for any) with its access bits (`r`, `w`, `m`).
#[derive(Debug, PartialEq, Eq)]
struct DeviceState {
    exceptions: BTreeMap<String, BTreeSet<char>>,
}

/// One write to `devices.allow` or `devices.deny`.
#[derive(Debug, PartialEq, Eq)]
struct DeviceWrite {
    file: &'static str,
    rule: String,
}

impl DeviceState {
    /// The state `devices.list` shows, if it is a whitelist (`a *:* rwm` means the
    /// cgroup allows everything, whose exceptions the file does not show).
    fn from_list(list: &str) -> Option<Self> {
        let mut exceptions: BTreeMap<String, BTreeSet<char>> = BTreeMap::new();
        for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (dev, access) = line.rsplit_once(' ')?;
            if dev.starts_with('a') {
                return None;
            }
            exceptions
                .entry(dev.to_string())
                .or_default()
                .extend(access.chars());
        }
        Some(Self { exceptions })
    }

    /// The whitelist `rules` make, in order, from a cgroup that denies everything;
    /// `None` when they end allowing everything by default (not a whitelist) or
    /// when a rule is one this emulation does not model exactly (a deny of a
    /// wildcard in a whitelist).
    fn after(rules: &[LinuxDeviceCgroup]) -> Option<Self> {
        let mut state = Self {
            exceptions: BTreeMap::new(),
        };
        let mut default_deny = true;
        let mut whole = false;
        for rule in rules {
            let text = rule.to_string();
            let (dev, access) = text.rsplit_once(' ')?;
            let access: BTreeSet<char> = access.chars().collect();
            if dev.starts_with('a') {
                // `a` resets: deny all (whitelist) or allow all (blacklist).
                state.exceptions.clear();
                default_deny = !rule.allow();
                whole = true;
                continue;
            }
            if !default_deny {
                return None;
            }
            if rule.allow() {
                state
                    .exceptions
                    .entry(dev.to_string())
                    .or_default()
                    .extend(access);
            } else {
                if dev.contains('*') {
                    return None;
                }
                if let Some(have) = state.exceptions.get_mut(dev) {
                    have.retain(|c| !access.contains(c));
                    if have.is_empty() {
                        state.exceptions.remove(dev);
                    }
                }
            }
        }
        // Rules that never reset the cgroup are added to what it has: model them
        // only from a reset.
        (whole && default_deny).then_some(state)
    }

    /// The writes that turn `self` into `target`: denies of what goes, then
    /// allows of what comes (never `a`).
    fn transition(&self, target: &Self) -> Vec<DeviceWrite> {
        let render = |dev: &str, access: &BTreeSet<char>| {
            format!("{dev} {}", access.iter().collect::<String>())
        };
        let mut writes = Vec::new();
        for (dev, have) in &self.exceptions {
            let keep = target.exceptions.get(dev);
            let drop: BTreeSet<char> = have
                .iter()
                .filter(|c| keep.is_none_or(|k| !k.contains(c)))
                .copied()
                .collect();
            if !drop.is_empty() {
                writes.push(DeviceWrite {
                    file: "devices.deny",
                    rule: render(dev, &drop),
                });
            }
        }
        for (dev, want) in &target.exceptions {
            let have = self.exceptions.get(dev);
            let add: BTreeSet<char> = want
                .iter()
                .filter(|c| have.is_none_or(|h| !h.contains(c)))
                .copied()
                .collect();
            if !add.is_empty() {
                writes.push(DeviceWrite {
                    file: "devices.allow",
                    rule: render(dev, &add),
                });
            }
        }
        writes
    }
}

/// [stockade patch] Writes device rules in order, each in its own write(2) (the
/// kernel parses one rule per write), through one open file per control file:
/// a create wrote a dozen rules, each with its own open and close.
struct RuleWriter<'a> {
    cgroup_root: &'a Path,
    open: Vec<(&'static str, fs::File)>,
}

impl<'a> RuleWriter<'a> {
    fn new(cgroup_root: &'a Path) -> Self {
        Self {
            cgroup_root,
            open: Vec::with_capacity(2),
        }
    }

    fn write(&mut self, file: &'static str, rule: &str) -> Result<(), WrappedIoError> {
        use std::io::Write;
        let path = self.cgroup_root.join(file);
        let index = match self.open.iter().position(|(f, _)| *f == file) {
            Some(i) => i,
            None => {
                let opened = fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|err| WrappedIoError::Open {
                        err,
                        path: path.clone(),
                    })?;
                self.open.push((file, opened));
                self.open.len() - 1
            }
        };
        self.open[index]
            .1
            .write_all(rule.as_bytes())
            .map_err(|err| WrappedIoError::Write {
                err,
                path,
                data: rule.into(),
            })
    }
}

impl Devices {
    /// The control file a rule is written to.
    fn file_of(device: &LinuxDeviceCgroup) -> &'static str {
        if device.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }

    #[cfg(test)]
    fn apply_device(device: &LinuxDeviceCgroup, cgroup_root: &Path) -> Result<(), WrappedIoError> {
        crate::common::write_cgroup_file_str(cgroup_root.join(Self::file_of(device)), &device.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::fs::read_to_string;

    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};

    use super::*;
    use crate::test::set_fixture;

    fn rule(allow: bool, typ: Option<LinuxDeviceType>, dev: Option<(i64, i64)>, access: &str) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow).access(access);
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some((major, minor)) = dev {
            b = b.major(major).minor(minor);
        }
        b.build().unwrap()
    }

    /// [stockade patch] An update of a whitelisted cgroup writes only what changes,
    /// never `a` (EINVAL once the cgroup has children).
    #[test]
    fn rule_writer_writes_each_file_in_order_through_one_open() {
        let tmp = tempfile::tempdir().unwrap();
        set_fixture(tmp.path(), "devices.allow", "").unwrap();
        set_fixture(tmp.path(), "devices.deny", "").unwrap();
        let mut writer = RuleWriter::new(tmp.path());
        writer.write("devices.deny", "a").unwrap();
        writer.write("devices.allow", "c 1:3 rwm").unwrap();
        writer.write("devices.allow", "c 1:5 rwm").unwrap();
        // A regular file keeps each write after the one before (cgroupfs takes
        // each as a rule): one open, both rules, in order.
        assert_eq!(
            read_to_string(tmp.path().join("devices.allow")).unwrap(),
            "c 1:3 rwmc 1:5 rwm"
        );
        assert_eq!(read_to_string(tmp.path().join("devices.deny")).unwrap(), "a");

        let missing = tmp.path().join("gone");
        let err = RuleWriter::new(&missing)
            .write("devices.allow", "a")
            .unwrap_err();
        assert!(
            matches!(&err, WrappedIoError::Open { path, .. } if *path == missing.join("devices.allow")),
            "{err:?}"
        );
    }

    #[test]
    fn whitelist_update_writes_only_the_changes() {
        let current = DeviceState::from_list("c 1:3 rwm\nc 1:5 rwm\nc *:* m\n").unwrap();
        let rules = [
            rule(false, None, None, "rwm"),
            rule(true, Some(LinuxDeviceType::C), Some((1, 3)), "rwm"),
            rule(true, Some(LinuxDeviceType::C), Some((1, 11)), "rw"),
            rule(true, Some(LinuxDeviceType::C), None, "m"),
        ];
        let target = DeviceState::after(&rules).unwrap();
        let writes: Vec<(&str, String)> = current
            .transition(&target)
            .into_iter()
            .map(|w| (w.file, w.rule))
            .collect();
        assert_eq!(
            writes,
            vec![
                ("devices.deny", "c 1:5 mrw".to_string()),
                ("devices.allow", "c 1:11 rw".to_string()),
            ]
        );
        // Allow-all on either side is not a whitelist: written as it is.
        assert!(DeviceState::from_list("a *:* rwm\n").is_none());
        assert!(DeviceState::after(&[rule(true, None, None, "rwm")]).is_none());
        // Rules that never reset add to what the cgroup has: not modelled.
        assert!(DeviceState::after(&rules[1..]).is_none());
    }

    #[test]
    fn test_set_default_devices() {
        let tmp = tempfile::tempdir().unwrap();

        default_allow_devices().iter().for_each(|d| {
            // NOTE: We reset the fixtures every iteration because files aren't appended
            // so what happens in the tests is you get strange overwrites which can contain
            // remaining bytes from the last iteration. Resetting the files more appropriately
            // mocks the behavior of cgroup files.
            set_fixture(tmp.path(), "devices.allow", "").expect("create allowed devices list");
            set_fixture(tmp.path(), "devices.deny", "").expect("create denied devices list");

            Devices::apply_device(d, tmp.path()).expect("Apply default device");
            println!("Device: {}", d);
            if d.allow() {
                let allowed_content =
                    read_to_string(tmp.path().join("devices.allow")).expect("read to string");
                assert_eq!(allowed_content, d.to_string());
            } else {
                let denied_content =
                    read_to_string(tmp.path().join("devices.deny")).expect("read to string");
                assert_eq!(denied_content, d.to_string());
            }
        });
    }

    #[test]
    fn test_set_mock_devices() {
        let tmp = tempfile::tempdir().unwrap();
        [
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(10)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::A)
                .minor(200)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .typ(LinuxDeviceType::P)
                .major(10)
                .minor(200)
                .access("m")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .typ(LinuxDeviceType::U)
                .access("rw")
                .build()
                .unwrap(),
        ]
        .iter()
        .for_each(|d| {
            set_fixture(tmp.path(), "devices.allow", "").expect("create allowed devices list");
            set_fixture(tmp.path(), "devices.deny", "").expect("create denied devices list");

            Devices::apply_device(d, tmp.path()).expect("Apply default device");
            println!("Device: {}", d);
            if d.allow() {
                let allowed_content =
                    read_to_string(tmp.path().join("devices.allow")).expect("read to string");
                assert_eq!(allowed_content, d.to_string());
            } else {
                let denied_content =
                    read_to_string(tmp.path().join("devices.deny")).expect("read to string");
                assert_eq!(denied_content, d.to_string());
            }
        });
    }

    quickcheck! {
        fn property_test_apply_device(device: LinuxDeviceCgroup) -> bool {
            let tmp = tempfile::tempdir().unwrap();
            set_fixture(tmp.path(), "devices.allow", "").expect("create allowed devices list");
            set_fixture(tmp.path(), "devices.deny", "").expect("create denied devices list");
            Devices::apply_device(&device, tmp.path()).expect("Apply default device");
            if device.allow() {
                let allowed_content =
                    read_to_string(tmp.path().join("devices.allow")).expect("read to string");
                allowed_content == device.to_string()
            } else {
                let denied_content =
                    read_to_string(tmp.path().join("devices.deny")).expect("read to string");
                denied_content == device.to_string()
            }
        }

        fn property_test_apply_multiple_devices(devices: Vec<LinuxDeviceCgroup>) -> bool {
            let tmp = tempfile::tempdir().unwrap();
            devices.iter()
                .all(|device| {
                    set_fixture(tmp.path(), "devices.allow", "").expect("create allowed devices list");
                    set_fixture(tmp.path(), "devices.deny", "").expect("create denied devices list");
                    Devices::apply_device(device, tmp.path()).expect("Apply default device");
                    if device.allow() {
                        let allowed_content =
                            read_to_string(tmp.path().join("devices.allow")).expect("read to string");
                        allowed_content == device.to_string()
                    } else {
                        let denied_content =
                            read_to_string(tmp.path().join("devices.deny")).expect("read to string");
                        denied_content == device.to_string()
                    }
                })
        }
    }
}
