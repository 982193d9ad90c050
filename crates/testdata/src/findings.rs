//! Findings as an agent reports them, for tests that only need some to send and count.

use palisade_model::{
    AffectedAsset, AlertDetails, Details, FindingReport, ProcessInfo, Severity, Timestamp,
};

/// Alert number `index`: a shell in pod `web-<index>` of cluster `prod`, with its own title,
/// pod and command line, so that no two of them aggregate.
pub fn shell_alert(index: u32) -> FindingReport {
    FindingReport {
        id: uuid::Uuid::now_v7(),
        observed_at: Timestamp::now(),
        severity: Severity::High,
        rule: "Terminal shell in container".into(),
        title: format!("shell {index}"),
        asset: AffectedAsset {
            cluster: "prod".into(),
            namespace: Some("shop".into()),
            pod: Some(format!("web-{index}")),
            container_name: Some("app".into()),
            ..Default::default()
        },
        details: Details::Alert(AlertDetails {
            process: ProcessInfo {
                pid: 100 + index,
                ppid: 1,
                exe: "/bin/sh".into(),
                cmdline: format!("sh -c job-{index}"),
                user: "root".into(),
            },
            ..Default::default()
        }),
        demo: false,
    }
}
