//! The QuickSight calls of `medallion dashboard deploy`: create, or update when it exists, the
//! data source, each data set and each dashboard, from the generated JSON.
//!
//! Invariants: idempotent — "already exists" turns a create into an update; one line is
//! returned per resource; a request that cannot be built fails before any call is made for it.

use serde_json::Value;

use super::{typed, DeployError, Requests, Target, DATA_SOURCE_ID};

/// The publish options of the generated JSON (ad-hoc filtering and CSV export on, controls shown).
fn publish_options() -> aws_sdk_quicksight::types::DashboardPublishOptions {
    use aws_sdk_quicksight::types::{
        AdHocFilteringOption, DashboardBehavior, DashboardPublishOptions, DashboardUiState,
        ExportToCsvOption, SheetControlsOption,
    };
    DashboardPublishOptions::builder()
        .ad_hoc_filtering_option(
            AdHocFilteringOption::builder()
                .availability_status(DashboardBehavior::Enabled)
                .build(),
        )
        .export_to_csv_option(
            ExportToCsvOption::builder()
                .availability_status(DashboardBehavior::Enabled)
                .build(),
        )
        .sheet_controls_option(
            SheetControlsOption::builder()
                .visibility_state(DashboardUiState::Expanded)
                .build(),
        )
        .build()
}

/// A QuickSight client on the project's settings (endpoint and retries as the other clients).
async fn client(aws: &crate::aws::Aws) -> aws_sdk_quicksight::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(aws.cfg.region.clone()));
    if let Some(ep) = &aws.cfg.endpoint {
        loader = loader
            .endpoint_url(ep)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1));
    }
    aws_sdk_quicksight::Client::new(&loader.load().await)
}

/// What a create call came to.
enum Sent {
    Done,
    /// HTTP 2xx, but the answer did not parse (moto returns `VersionArn` as a number).
    Unparsed,
    Exists,
    Failed(String),
}

fn sent<T, E: std::fmt::Debug>(
    r: Result<
        T,
        aws_sdk_quicksight::error::SdkError<E, aws_sdk_quicksight::config::http::HttpResponse>,
    >,
) -> Sent {
    match r {
        Ok(_) => Sent::Done,
        Err(e) => {
            if let aws_sdk_quicksight::error::SdkError::ServiceError(se) = &e {
                if se.raw().status().is_success() {
                    return Sent::Unparsed;
                }
            }
            let text = format!("{e:?}");
            if text.contains("ResourceExists") || text.contains("already exists") {
                Sent::Exists
            } else {
                Sent::Failed(text)
            }
        }
    }
}

fn line(verb: &str, what: &str, unparsed: bool) -> String {
    if unparsed {
        format!("{verb}  {what} (HTTP 2xx; the answer did not parse)")
    } else {
        format!("{verb}  {what}")
    }
}

/// Creates the data source, data sets and dashboards, or updates those that exist.
/// Returns one line per resource.
///
/// # Errors
/// A request that cannot be built, or a call that fails other than with "already exists".
pub async fn deploy(
    aws: &crate::aws::Aws,
    t: &Target,
    source: &Value,
    all: &[(String, Requests)],
) -> Result<Vec<String>, DeployError> {
    use aws_sdk_quicksight::types::{AthenaParameters, DataSourceParameters, DataSourceType};
    let qs = client(aws).await;
    let fail = |op: &'static str, text: String| -> DeployError {
        crate::aws::call::<String>("quicksight", op)(text).into()
    };
    let mut out = Vec::new();
    let mut athena = AthenaParameters::builder().work_group(&t.workgroup);
    if let Some(r) = &t.role_arn {
        athena = athena.role_arn(r);
    }
    let params = DataSourceParameters::AthenaParameters(athena.build());
    let name = source["Name"].as_str().unwrap_or(DATA_SOURCE_ID);
    let what = format!("data source {DATA_SOURCE_ID}");
    match sent(
        qs.create_data_source()
            .aws_account_id(&t.account_id)
            .data_source_id(DATA_SOURCE_ID)
            .name(name)
            .r#type(DataSourceType::Athena)
            .data_source_parameters(params.clone())
            .set_permissions(Some(typed::permissions(&source["Permissions"])?))
            .send()
            .await,
    ) {
        Sent::Done => out.push(line("created", &what, false)),
        Sent::Unparsed => out.push(line("created", &what, true)),
        Sent::Exists => {
            match sent(
                qs.update_data_source()
                    .aws_account_id(&t.account_id)
                    .data_source_id(DATA_SOURCE_ID)
                    .name(name)
                    .data_source_parameters(params)
                    .send()
                    .await,
            ) {
                Sent::Done | Sent::Exists => out.push(line("updated", &what, false)),
                Sent::Unparsed => out.push(line("updated", &what, true)),
                Sent::Failed(e) => return Err(fail("UpdateDataSource", e)),
            }
        }
        Sent::Failed(e) => return Err(fail("CreateDataSource", e)),
    }
    for (name, r) in all {
        for (id, v) in &r.data_sets {
            let (key, table) = typed::physical(&v["PhysicalTableMap"])?;
            let set_name = v["Name"].as_str().unwrap_or(id);
            let what = format!("data set {id}");
            match sent(
                qs.create_data_set()
                    .aws_account_id(&t.account_id)
                    .data_set_id(id)
                    .name(set_name)
                    .physical_table_map(key.clone(), table.clone())
                    .import_mode(aws_sdk_quicksight::types::DataSetImportMode::DirectQuery)
                    .set_permissions(Some(typed::permissions(&v["Permissions"])?))
                    .send()
                    .await,
            ) {
                Sent::Done => out.push(line("created", &what, false)),
                Sent::Unparsed => out.push(line("created", &what, true)),
                Sent::Exists => match sent(
                    qs.update_data_set()
                        .aws_account_id(&t.account_id)
                        .data_set_id(id)
                        .name(set_name)
                        .physical_table_map(key, table)
                        .import_mode(aws_sdk_quicksight::types::DataSetImportMode::DirectQuery)
                        .send()
                        .await,
                ) {
                    Sent::Done | Sent::Exists => out.push(line("updated", &what, false)),
                    Sent::Unparsed => out.push(line("updated", &what, true)),
                    Sent::Failed(e) => return Err(fail("UpdateDataSet", e)),
                },
                Sent::Failed(e) => return Err(fail("CreateDataSet", e)),
            }
        }
        let d = &r.dashboard;
        let id = d["DashboardId"].as_str().unwrap_or_default();
        let title = d["Name"].as_str().unwrap_or(name);
        let definition = typed::definition(&d["Definition"])?;
        let what = format!("dashboard {id}");
        match sent(
            qs.create_dashboard()
                .aws_account_id(&t.account_id)
                .dashboard_id(id)
                .name(title)
                .definition(definition.clone())
                .dashboard_publish_options(publish_options())
                .set_permissions(Some(typed::permissions(&d["Permissions"])?))
                .send()
                .await,
        ) {
            Sent::Done => out.push(line("created", &what, false)),
            Sent::Unparsed => out.push(line("created", &what, true)),
            Sent::Exists => match sent(
                qs.update_dashboard()
                    .aws_account_id(&t.account_id)
                    .dashboard_id(id)
                    .name(title)
                    .definition(definition)
                    .dashboard_publish_options(publish_options())
                    .send()
                    .await,
            ) {
                Sent::Done | Sent::Exists => out.push(format!(
                    "updated  {what} (publish the new version: aws quicksight update-dashboard-published-version)"
                )),
                Sent::Unparsed => out.push(line("updated", &what, true)),
                Sent::Failed(e) => return Err(fail("UpdateDashboard", e)),
            },
            Sent::Failed(e) => return Err(fail("CreateDashboard", e)),
        }
    }
    Ok(out)
}
