//! The doctor's wiring: the AWS adapters behind [`Doctor`], for the Lambda event
//! (`{"doctor": {}}`, through [`doctor_for`]) and for the `doctor [--json]` command
//! ([`doctor_command`]), which also copes with settings that are invalid and buckets that do not
//! exist, since finding those is its purpose.

use std::process::ExitCode;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::aws::{doctor_clients, AwsInspect, Clients};
use crate::doctor::{report_for_invalid_settings, Check, Doctor, Report, Status};
use crate::ports::{StateStore, SystemClock};
use crate::settings::Settings;

/// The doctor over these clients, with `base`'s credentials for `GetCallerIdentity`.
pub fn doctor_for(
    base: &SdkConfig,
    settings: &Settings,
    clients: &Clients,
    setup_problems: Vec<(&'static str, String)>,
) -> Doctor {
    Doctor {
        settings: settings.clone(),
        inspect: Arc::new(AwsInspect::new(base, clients)),
        list: Arc::new(clients.audit.clone()),
        state: clients
            .state
            .clone()
            .map(|s| Arc::new(s) as Arc<dyn StateStore>),
        clock: Arc::new(SystemClock),
        setup_problems,
        queue: settings.backfill_queue_url.as_ref().map(|url| {
            Arc::new(crate::aws::SqsQueue::new(base, url)) as Arc<dyn crate::ports::Queue>
        }),
        queue_age: settings.backfill_queue_url.as_ref().map(|url| {
            let region = crate::settings::queue::queue_region(url);
            Arc::new(crate::aws::CloudWatchMetrics::new(base, region))
                as Arc<dyn crate::ports::ReadMetrics>
        }),
        lake: clients.lake.as_ref().map(|(buckets, _)| {
            Arc::new(buckets.clone()) as Arc<dyn crate::doctor::lake::LakeProbe>
        }),
    }
}

/// Every check with `settings` and `base`'s configuration (tests pass one for moto).
pub async fn checkup(base: &SdkConfig, settings: &Settings) -> Report {
    match doctor_clients(base, settings).await {
        Ok((clients, problems)) => {
            doctor_for(base, settings, &clients, problems)
                .run(&clients.audit)
                .await
        }
        Err(e) => Report {
            ok: false,
            checks: vec![Check {
                number: 1,
                name: "settings",
                status: Status::Failed,
                detail: format!("cannot build the AWS clients: {e}"),
                fix: Some(
                    "Set AWS_REGION (Lambda sets it) or a profile's region, and check the bucket settings."
                        .into(),
                ),
                objects: Vec::new(),
            }],
        },
    }
}

/// `doctor [--json]`: the report on stdout, one line per check (or one JSON object); exit status
/// 1 when any check failed.
pub async fn doctor_command(json: bool) -> ExitCode {
    let report = match Settings::from_env() {
        Err(e) => report_for_invalid_settings(&e),
        Ok(settings) => {
            let base = aws_config::defaults(BehaviorVersion::latest()).load().await;
            checkup(&base, &settings).await
        }
    };
    if json {
        println!("{}", crate::report::clean_document(&report));
    } else {
        print!(
            "{}",
            crate::mask::clean(&report.text(), crate::mask::LOG_LINE_BYTES)
        );
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
