//! What a process started by `exec` may hold: never more than the container's init.
//!
//! containerd's shims hand `exec` a process.json of their own making (its default
//! capability set, whatever noNewPrivileges the caller chose), which knows nothing of
//! the profile that hardened the init. Every capability set is therefore cut to the
//! init's, no_new_privs is kept if the init has it, and so is the init's LSM
//! confinement (AppArmor profile, SELinux label) when the caller names none; its
//! `oomScoreAdj` is never below the init's (containerd sends the container's own,
//! which admission may have raised to what the runtime can set on this host). Whatever
//! the caller *asks* for (user, cwd, LSM labels) is then judged by the profile
//! (`profile::gate::exec`). Pure: unit-tested.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, Process, User};

/// Why a caller's process document (`exec --process`) is not a process to run.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("not a valid OCI process{}", crate::bundle::at_field(.field))]
    Parse {
        /// JSON path of the offending value (`capabilities.bounding[2]`); `.` when the
        /// document itself is at fault.
        field: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("args: empty (the process needs a program to run)")]
    EmptyArgs,
}

/// Parse a caller's process document (`exec --process`). Pure: the same parser the
/// fuzz target `exec_process` drives. Errors name the JSON field; a process without
/// a program is refused here, before the vendored libcontainer could index `args[0]`.
/// A document that says nothing of `user` runs as `default_user` (the container's
/// user), never as the uid 0 that an absent field decodes to in runc 1.1 (Go's zero
/// value; measured by `runc_parity::exec_process_user`).
pub fn parse_process(bytes: &[u8], default_user: &User) -> Result<Process, ProcessError> {
    let parse_error = |(field, source)| ProcessError::Parse { field, source };
    // The whole document must be JSON, also where the typed parse would only skip
    // (an unknown field's string that is not UTF-8): one reading of it decides both
    // whether `user` is there and what the process is.
    let mut doc: serde_json::Value = crate::bundle::parse_json(bytes).map_err(parse_error)?;
    // OCI's `user` is required; runc fills it in, and so do we, before the typed parse
    // (whose errors then still name the caller's fields).
    if let serde_json::Value::Object(map) = &mut doc {
        if !map.contains_key("user") {
            let user = serde_json::to_value(default_user)
                .map_err(|source| parse_error(("user".to_string(), source)))?;
            map.insert("user".into(), user);
        }
    }
    let process: Process =
        crate::bundle::parse_json(doc.to_string().as_bytes()).map_err(parse_error)?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(ProcessError::EmptyArgs);
    }
    Ok(process)
}

/// Cut `requested` down to what `init` holds.
pub fn clamp_process(requested: &mut Process, init: &Process) {
    let init_caps = init.capabilities().clone().unwrap_or_default();
    let empty = Capabilities::new();
    let cut = |want: &Option<Capabilities>, have: &Option<Capabilities>| -> Option<Capabilities> {
        let have = have.as_ref().unwrap_or(&empty);
        Some(
            want.as_ref()
                .unwrap_or(&empty)
                .intersection(have)
                .copied()
                .collect(),
        )
    };
    let want = requested.capabilities().clone().unwrap_or_default();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(cut(want.bounding(), init_caps.bounding()));
    caps.set_effective(cut(want.effective(), init_caps.effective()));
    caps.set_permitted(cut(want.permitted(), init_caps.permitted()));
    caps.set_inheritable(cut(want.inheritable(), init_caps.inheritable()));
    caps.set_ambient(cut(want.ambient(), init_caps.ambient()));
    requested.set_capabilities(Some(caps));
    if init.no_new_privileges() == Some(true) {
        requested.set_no_new_privileges(Some(true));
    }
    if requested.apparmor_profile().is_none() {
        requested.set_apparmor_profile(init.apparmor_profile().clone());
    }
    if requested.selinux_label().is_none() {
        requested.set_selinux_label(init.selinux_label().clone());
    }
    if let (Some(want), Some(floor)) = (requested.oom_score_adj(), init.oom_score_adj()) {
        requested.set_oom_score_adj(Some(want.max(floor)));
    }
}

/// The flags of runc's argv form of `exec`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecFlags<'a> {
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a Path>,
    /// `--user UID[:GID]`; without a GID the init's is kept (as runc).
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: &'a [u32],
    pub tty: bool,
    pub apparmor: Option<&'a str>,
    pub process_label: Option<&'a str>,
    pub no_new_privs: bool,
    /// `--cap NAME` additions (already filtered by [`allowed_extra_caps`]).
    pub caps: &'a [String],
}

/// The process runc's argv form starts: the init's own process (user, cwd, rlimits,
/// AppArmor profile, SELinux label, ...) with what the flags override. The caller
/// still clamps and judges it like a `--process` document.
pub fn argv_process(init: &Process, f: &ExecFlags<'_>) -> Process {
    let mut p = init.clone();
    p.set_args(Some(f.args.to_vec()));
    p.set_command_line(None);
    p.set_terminal(Some(f.tty));
    p.set_console_size(None);
    let mut env = init.env().clone().unwrap_or_default();
    for (k, v) in f.env {
        let prefix = format!("{k}=");
        env.retain(|e| !e.starts_with(&prefix));
        env.push(format!("{k}={v}"));
    }
    p.set_env(Some(env));
    if let Some(cwd) = f.cwd {
        p.set_cwd(cwd.to_path_buf());
    }
    let user = p.user_mut();
    if let Some((uid, gid)) = f.user {
        user.set_uid(uid);
        if let Some(gid) = gid {
            user.set_gid(gid);
        }
    }
    if !f.additional_gids.is_empty() {
        user.set_additional_gids(Some(f.additional_gids.to_vec()));
    }
    if let Some(a) = f.apparmor {
        p.set_apparmor_profile(Some(a.to_owned()));
    }
    if let Some(l) = f.process_label {
        p.set_selinux_label(Some(l.to_owned()));
    }
    if f.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !f.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let extra: Capabilities = f
            .caps
            .iter()
            .filter_map(|n| {
                n.strip_prefix("CAP_")
                    .unwrap_or(n)
                    .parse::<Capability>()
                    .ok()
            })
            .collect();
        let add = |set: &Option<Capabilities>| -> Option<Capabilities> {
            Some(
                set.clone()
                    .unwrap_or_default()
                    .union(&extra)
                    .copied()
                    .collect(),
            )
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
        p.set_capabilities(Some(caps));
    }
    p
}

/// `exec --cap NAME` additions the init's bounding set allows; others are dropped.
pub fn allowed_extra_caps(requested: &[String], init: &Process) -> Vec<String> {
    let bounding: HashSet<Capability> = init
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    requested
        .iter()
        .filter(|name| {
            // oci-spec parses the bare name (`KILL`); accept runc's `CAP_KILL` too.
            name.strip_prefix("CAP_")
                .unwrap_or(name)
                .parse::<Capability>()
                .map(|c| bounding.contains(&c))
                .unwrap_or(false)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(json: serde_json::Value) -> Process {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn process_documents_name_the_field_at_fault_and_need_a_program() {
        let p = parse_process(
            br#"{"args":["/bin/sh"],"cwd":"/","user":{"uid":0,"gid":0}}"#,
            &User::default(),
        )
        .expect("a process");
        assert_eq!(p.args().as_deref(), Some(&["/bin/sh".to_string()][..]));
        for doc in [
            &br#"{"args":[],"cwd":"/","user":{"uid":0,"gid":0}}"#[..],
            br#"{"cwd":"/","user":{"uid":0,"gid":0}}"#,
        ] {
            assert!(matches!(
                parse_process(doc, &User::default()),
                Err(ProcessError::EmptyArgs)
            ));
        }
        let e = parse_process(
            br#"{"args":["x"],"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_NOPE"]}}"#,
            &User::default(),
        )
        .expect_err("an unknown capability");
        assert!(
            e.to_string()
                .starts_with("not a valid OCI process at capabilities.bounding[0]"),
            "{e}"
        );
    }

    #[test]
    fn a_document_that_is_not_json_throughout_is_refused() {
        // Found by the exec_process fuzz target: a typed parse skips an unknown
        // field's string without checking its UTF-8; the document is still not JSON.
        let doc = b"{\"args\":[\"sh\"],\"cwd\":\"/\",\"x\":\"\xf2\"}";
        assert!(matches!(
            parse_process(doc, &User::default()),
            Err(ProcessError::Parse { .. })
        ));
    }

    #[test]
    fn a_process_without_user_runs_as_the_containers_user() {
        let mut init_user = User::default();
        init_user.set_uid(1000);
        init_user.set_gid(1000);
        let p = parse_process(br#"{"args":["/bin/id"],"cwd":"/"}"#, &init_user).unwrap();
        assert_eq!(p.user(), &init_user);
        let p = parse_process(
            br#"{"args":["/bin/id"],"cwd":"/","user":{"uid":0,"gid":0}}"#,
            &init_user,
        )
        .unwrap();
        assert_eq!(
            p.user().uid(),
            0,
            "a user the caller names is kept (and judged)"
        );
    }

    #[test]
    fn caps_are_cut_to_the_inits_and_nnp_kept() {
        let init = process(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "noNewPrivileges": true,
            "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"],
                             "permitted": ["CAP_KILL"]}
        }));
        let mut req = process(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "noNewPrivileges": false,
            "capabilities": {"bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN"],
                             "effective": ["CAP_KILL", "CAP_SYS_ADMIN"],
                             "permitted": ["CAP_KILL", "CAP_NET_RAW"],
                             "ambient": ["CAP_KILL"], "inheritable": ["CAP_KILL"]}
        }));
        clamp_process(&mut req, &init);
        let caps = req.capabilities().clone().unwrap();
        let set = |c: &[Capability]| c.iter().copied().collect::<Capabilities>();
        assert_eq!(caps.bounding().clone().unwrap(), set(&[Capability::Chown]));
        assert_eq!(caps.effective().clone().unwrap(), set(&[Capability::Kill]));
        assert_eq!(caps.permitted().clone().unwrap(), set(&[Capability::Kill]));
        assert!(caps.ambient().clone().unwrap().is_empty());
        assert!(caps.inheritable().clone().unwrap().is_empty());
        assert_eq!(req.no_new_privileges(), Some(true));
    }

    #[test]
    fn oom_score_adj_is_never_below_the_inits() {
        let init = process(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0}, "oomScoreAdj": 1
        }));
        for (asked, got) in [(Some(-997), Some(1)), (Some(500), Some(500)), (None, None)] {
            let mut req = process(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}}));
            req.set_oom_score_adj(asked);
            clamp_process(&mut req, &init);
            assert_eq!(req.oom_score_adj(), got, "asked {asked:?}");
        }
    }

    #[test]
    fn argv_form_starts_from_the_init_and_carries_its_lsm_labels() {
        let init = process(serde_json::json!({
            "cwd": "/srv", "args": ["init"], "env": ["A=1", "B=2"],
            "user": {"uid": 1000, "gid": 1000}, "noNewPrivileges": true,
            "apparmorProfile": "cri-containerd.apparmor.d",
            "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
            "capabilities": {"bounding": ["CAP_KILL"], "effective": [], "permitted": []}
        }));
        let args = ["sh".to_string()];
        let env = [("B".to_string(), "3".to_string())];
        let caps = ["CAP_KILL".to_string()];
        let p = argv_process(
            &init,
            &ExecFlags {
                args: &args,
                env: &env,
                user: Some((0, None)),
                caps: &caps,
                ..Default::default()
            },
        );
        assert_eq!(p.args().clone().unwrap(), args);
        assert_eq!(p.env().clone().unwrap(), ["A=1", "B=3"]);
        assert_eq!(p.cwd(), Path::new("/srv"));
        assert_eq!((p.user().uid(), p.user().gid()), (0, 1000));
        assert_eq!(
            p.apparmor_profile().as_deref(),
            Some("cri-containerd.apparmor.d")
        );
        assert_eq!(
            p.selinux_label().as_deref(),
            Some("system_u:system_r:container_t:s0:c1,c2")
        );
        let eff = p
            .capabilities()
            .clone()
            .unwrap()
            .effective()
            .clone()
            .unwrap();
        assert!(eff.contains(&Capability::Kill));
        let p = argv_process(
            &init,
            &ExecFlags {
                apparmor: Some("unconfined"),
                process_label: Some("u:r:spc_t:s0"),
                ..Default::default()
            },
        );
        assert_eq!(p.apparmor_profile().as_deref(), Some("unconfined"));
        assert_eq!(p.selinux_label().as_deref(), Some("u:r:spc_t:s0"));
    }

    #[test]
    fn a_process_document_without_lsm_labels_keeps_the_inits() {
        let init = process(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "apparmorProfile": "localhost/p", "selinuxLabel": "u:r:container_t:s0"
        }));
        let mut req = process(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}}));
        clamp_process(&mut req, &init);
        assert_eq!(req.apparmor_profile().as_deref(), Some("localhost/p"));
        assert_eq!(req.selinux_label().as_deref(), Some("u:r:container_t:s0"));
    }

    #[test]
    fn init_without_caps_gives_exec_none() {
        let init = process(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}}));
        let mut req = process(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_SYS_ADMIN"], "effective": ["CAP_SYS_ADMIN"]}
        }));
        clamp_process(&mut req, &init);
        assert!(req
            .capabilities()
            .clone()
            .unwrap()
            .bounding()
            .clone()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn extra_caps_outside_the_bounding_set_are_dropped() {
        let init = process(serde_json::json!({
            "cwd": "/", "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"]}
        }));
        let got = allowed_extra_caps(
            &["CAP_KILL".into(), "SYS_ADMIN".into(), "KILL".into()],
            &init,
        );
        assert_eq!(got, vec!["CAP_KILL".to_string(), "KILL".to_string()]);
    }
}
