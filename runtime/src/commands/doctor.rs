//! `stockade doctor` as text: one line a finding, the fix under each problem, and a
//! closing count.

use crate::doctor::{Finding, Status};

pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let tag = match f.status {
            Status::Ok => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!("{tag}  {:<19} {}\n", f.check, f.detail));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("{:<25}fix: {fix}\n", ""));
        }
    }
    let count = |s| findings.iter().filter(|f| f.status == s).count();
    out.push_str(&format!(
        "doctor: {} failed, {} warnings, {} ok\n",
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Ok)
    ));
    out
}
