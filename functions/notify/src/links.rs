//! Links into the AWS console and Studio for the event's region. Built only from validated regions and
//! domain ids and percent-encoded names, so a hostile event cannot point a reader somewhere else.

use studio_ops_shared::names::is_domain_id;

use crate::sanitize::{is_region, url_segment};

/// The console host of the region's partition.
fn console_host(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "console.amazonaws.cn"
    } else if region.starts_with("us-gov-") {
        "console.amazonaws-us-gov.com"
    } else {
        "console.aws.amazon.com"
    }
}

/// `https://<region>.console.../sagemaker/home?region=<region>#/<fragment>`.
fn sagemaker_console(region: &str, fragment: &str) -> Option<String> {
    is_region(region).then(|| {
        format!(
            "https://{region}.{host}/sagemaker/home?region={region}#/{fragment}",
            host = console_host(region)
        )
    })
}

/// The Studio URL of a domain (commercial partition only; elsewhere Studio lives under other hosts).
pub fn studio(region: &str, domain_id: &str) -> Option<String> {
    (is_region(region)
        && is_domain_id(domain_id)
        && !region.starts_with("cn-")
        && !region.starts_with("us-gov-"))
    .then(|| format!("https://{domain_id}.studio.{region}.sagemaker.aws/"))
}

/// The model package group's page in the SageMaker console's model registry.
pub fn model_group_console(region: &str, group: &str) -> Option<String> {
    sagemaker_console(
        region,
        &format!("model-registry/{}/details", url_segment(group)),
    )
}

/// The training job's page in the SageMaker console.
pub fn training_job_console(region: &str, job: &str) -> Option<String> {
    sagemaker_console(region, &format!("jobs/{}", url_segment(job)))
}

/// The training job's CloudWatch log streams.
pub fn training_job_logs(region: &str, job: &str) -> Option<String> {
    is_region(region).then(|| {
        format!(
            "https://{region}.{host}/cloudwatch/home?region={region}#logStream:group=/aws/sagemaker/TrainingJobs;prefix={job};streamFilter=typeLogStreamPrefix",
            host = console_host(region),
            job = url_segment(job)
        )
    })
}

/// The domain's page (user profiles, spaces, apps) in the SageMaker console.
pub fn domain_console(region: &str, domain_id: &str) -> Option<String> {
    if !is_domain_id(domain_id) {
        return None;
    }
    sagemaker_console(region, &format!("studio/{domain_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_the_region_and_encode_names() {
        assert_eq!(
            studio("eu-west-1", "d-abc123").as_deref(),
            Some("https://d-abc123.studio.eu-west-1.sagemaker.aws/")
        );
        assert_eq!(
            model_group_console("us-east-1", "churn xgb/../x").as_deref(),
            Some(
                "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/model-registry/churn%20xgb%2F..%2Fx/details"
            )
        );
        assert!(
            training_job_console("cn-north-1", "j")
                .unwrap()
                .starts_with("https://cn-north-1.console.amazonaws.cn/")
        );
        assert!(
            training_job_logs("us-east-1", "job-1")
                .unwrap()
                .contains("prefix=job-1;")
        );
    }

    #[test]
    fn hostile_regions_and_domains_give_no_link() {
        assert_eq!(studio("evil.com/x-1", "d-abc"), None);
        assert_eq!(studio("us-east-1", "d-x.evil.com"), None);
        assert_eq!(studio("cn-north-1", "d-abc"), None);
        assert_eq!(model_group_console("", "g"), None);
        assert_eq!(domain_console("us-east-1", "../x"), None);
    }
}
