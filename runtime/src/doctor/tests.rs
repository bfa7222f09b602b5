use super::*;

/// A node that passes every check.
fn healthy() -> NodeFacts {
    NodeFacts {
        kernel: "Linux 6.18.0".into(),
        max_user_namespaces: Some(63000),
        seccomp_actions: Some(
            "kill_process kill_thread trap errno user_notif trace log allow"
                .split(' ')
                .map(str::to_string)
                .collect(),
        ),
        landlock_abi: Some(6),
        oom_score_adj_floor: None,
        cgroup: CgroupVersion::V2,
        cgroup_controllers: vec!["cpu".into(), "io".into(), "memory".into(), "pids".into()],
        systemd_init: false,
        idmap: vec![IdmapProbe {
            path: "/var/lib/containerd".into(),
            fs_type: "ext4".into(),
            error: None,
        }],
        node_config: NodeConfigFacts {
            path: "/etc/stockade/config.toml".into(),
            found: true,
            error: None,
            default_profile: Some("default".into()),
            profiles: vec![ProfileFacts {
                name: "default".into(),
                error: None,
                landlock_min_abi: Some(3),
                landlock_best_effort: true,
                requires_userns: true,
            }],
        },
        containerd: ContainerdFacts {
            path: "/etc/containerd/config.toml".into(),
            version: Some(2),
            error: None,
            cri_disabled: false,
            default_runtime: Some("runc".into()),
            default_runtime_defined: true,
            handlers: vec![HandlerFacts {
                name: "stockade".into(),
                runtime_type: STOCKADE_RUNTIME_TYPE.into(),
                pod_annotations: vec!["org.stockade.*".into()],
                binary_name: None,
            }],
        },
        shim: Some("/usr/local/bin/containerd-shim-stockade-v2".into()),
        protected_binary: Ok("/run/stockade/bin/fe00-1a2b/stockade".into()),
    }
}

fn problems(f: &NodeFacts) -> Vec<(Status, &'static str, String)> {
    assess(f)
        .into_iter()
        .filter(|x| x.status != Status::Ok)
        .map(|x| {
            assert!(x.fix.is_some(), "{x:?} has no fix");
            (x.status, x.check, x.detail)
        })
        .collect()
}

#[test]
fn a_healthy_node_has_no_problems() {
    assert_eq!(problems(&healthy()), vec![]);
    assert_eq!(worst(&assess(&healthy())), Status::Ok);
}

#[test]
fn each_defect_is_reported_with_its_fix() {
    type Mutate = fn(&mut NodeFacts);
    let table: &[(Mutate, Status, &str, &str)] = &[
        (
            |f| f.max_user_namespaces = Some(0),
            Status::Fail,
            "user namespaces",
            "unavailable",
        ),
        (
            |f| f.seccomp_actions = None,
            Status::Fail,
            "seccomp",
            "unavailable",
        ),
        (
            |f| f.seccomp_actions = Some(vec!["allow".into(), "errno".into()]),
            Status::Fail,
            "seccomp",
            "kill_process",
        ),
        (
            |f| {
                f.node_config.profiles[0].landlock_best_effort = false;
                f.landlock_abi = Some(2);
            },
            Status::Fail,
            "landlock",
            "requires ABI 3",
        ),
        (
            |f| f.landlock_abi = None,
            Status::Warn,
            "landlock",
            "unavailable",
        ),
        (
            |f| f.oom_score_adj_floor = Some(1),
            Status::Warn,
            "oom_score_adj",
            "raised to 1",
        ),
        (
            |f| f.protected_binary = Err("Read-only file system (os error 30)".into()),
            Status::Warn,
            "runtime binary",
            "sealed memfd",
        ),
        (
            |f| f.cgroup_controllers = vec!["cpu".into()],
            Status::Fail,
            "cgroups",
            "memory, pids",
        ),
        (
            |f| {
                f.idmap[0].fs_type = "tmpfs".into();
                f.idmap[0].error = Some("EINVAL".into());
            },
            Status::Warn,
            "idmapped mounts",
            "cannot be idmapped",
        ),
        (
            |f| f.node_config.error = Some("bad".into()),
            Status::Fail,
            "node config",
            "bad",
        ),
        (
            |f| f.node_config.found = false,
            Status::Warn,
            "node config",
            "compiled-in",
        ),
        (
            |f| f.node_config.profiles[0].error = Some("unknown key".into()),
            Status::Fail,
            "profile",
            "unknown key",
        ),
        (
            |f| f.node_config.default_profile = Some("strict".into()),
            Status::Fail,
            "profile",
            "\"strict\" is not in the profiles dir",
        ),
        (
            |f| f.containerd.cri_disabled = true,
            Status::Fail,
            "containerd",
            "CRI plugin is disabled",
        ),
        (
            |f| f.containerd.default_runtime_defined = false,
            Status::Fail,
            "containerd",
            "no runtime table",
        ),
        (
            |f| f.containerd.handlers.clear(),
            Status::Fail,
            "containerd",
            "no Stockade runtime handler",
        ),
        (
            |f| f.containerd.handlers[0].pod_annotations.clear(),
            Status::Warn,
            "containerd handler",
            "org.stockade.*",
        ),
        (
            |f| f.shim = None,
            Status::Fail,
            "containerd handler",
            "not on PATH",
        ),
        (
            |f| f.containerd.error = Some("missing".into()),
            Status::Warn,
            "containerd",
            "missing",
        ),
    ];
    for (mutate, status, check, text) in table {
        let mut f = healthy();
        mutate(&mut f);
        let got = problems(&f);
        assert!(
            got.iter()
                .any(|(s, c, d)| s == status && c == check && d.contains(text)),
            "expected {status:?} {check}: …{text}…, got {got:?}"
        );
        assert_eq!(worst(&assess(&f)), *status, "{got:?}");
    }
}

#[test]
fn landlock_best_effort_profiles_run_on_any_abi() {
    let mut f = healthy();
    f.landlock_abi = Some(1);
    assert_eq!(problems(&f), vec![]);
}

#[test]
fn a_runc_shim_handler_driving_stockade_counts() {
    let mut f = healthy();
    f.containerd.handlers[0].runtime_type = "io.containerd.runc.v2".into();
    f.containerd.handlers[0].binary_name = Some("/usr/local/bin/stockade".into());
    f.shim = None;
    assert_eq!(problems(&f), vec![]);
}
