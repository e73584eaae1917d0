//! `medallion dashboard deploy`: the QuickSight requests generated from a dashboard YAML, as
//! the JSON the AWS CLI takes (`--cli-input-json`), and the calls that make them with
//! aws-sdk-quicksight.
//!
//! Invariants: one Athena data source on the `medallion` workgroup; one `DIRECT_QUERY` dataset
//! per dashboard dataset, whose custom SQL is the same SQL the HTML page runs (suppressed cells
//! blanked, unbounded) with `<stage>.<table>` mapped to the Glue databases; one dashboard per
//! YAML whose `Definition` has a sheet per sheet, a visual per visual (ids kept), a filter
//! group (and, for `select` filters, a parameter and its dropdown) per filter, and a
//! data-point-click filter action per `cross_filter`. Every resource grants the configured
//! principal its actions. The generated JSON is checked against QuickSight's service model in
//! the tests (botocore's validator), not only against expectations written here.

use serde_json::{json, Value};

mod definition;
mod deploy;
mod typed;

pub use definition::dashboard;
pub use deploy::deploy;

use super::data;
use super::spec::{ColumnKind, Dashboard};

/// Id of the Athena data source.
pub const DATA_SOURCE_ID: &str = "medallion-athena";

/// Where and for whom to deploy.
#[derive(Debug, Clone)]
pub struct Target {
    /// 12-digit AWS account id.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// QuickSight user or group ARN granted access.
    pub principal: String,
    /// Athena workgroup.
    pub workgroup: String,
    /// Glue database prefix (`curated.x` → `<prefix>_curated.x`).
    pub glue_prefix: String,
    /// IAM role QuickSight assumes for Athena (default: its service role).
    pub role_arn: Option<String>,
}

impl Target {
    fn arn(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:aws:quicksight:{}:{}:{kind}/{id}",
            self.region, self.account_id
        )
    }

    /// ARN of the data source.
    pub fn data_source_arn(&self) -> String {
        self.arn("datasource", DATA_SOURCE_ID)
    }
}

/// The requests deploying one dashboard.
#[derive(Debug, Clone)]
pub struct Requests {
    /// CreateDataSet inputs, by data set id.
    pub data_sets: Vec<(String, Value)>,
    /// CreateDashboard input.
    pub dashboard: Value,
}

const DASHBOARD_ACTIONS: &[&str] = &[
    "quicksight:DescribeDashboard",
    "quicksight:ListDashboardVersions",
    "quicksight:QueryDashboard",
    "quicksight:UpdateDashboard",
    "quicksight:DeleteDashboard",
    "quicksight:UpdateDashboardPermissions",
    "quicksight:DescribeDashboardPermissions",
    "quicksight:UpdateDashboardPublishedVersion",
];
const DATA_SET_ACTIONS: &[&str] = &[
    "quicksight:DescribeDataSet",
    "quicksight:DescribeDataSetPermissions",
    "quicksight:PassDataSet",
    "quicksight:DescribeIngestion",
    "quicksight:ListIngestions",
    "quicksight:UpdateDataSet",
    "quicksight:DeleteDataSet",
    "quicksight:CreateIngestion",
    "quicksight:CancelIngestion",
    "quicksight:UpdateDataSetPermissions",
];
const DATA_SOURCE_ACTIONS: &[&str] = &[
    "quicksight:DescribeDataSource",
    "quicksight:DescribeDataSourcePermissions",
    "quicksight:PassDataSource",
    "quicksight:UpdateDataSource",
    "quicksight:DeleteDataSource",
    "quicksight:UpdateDataSourcePermissions",
];

fn permissions(t: &Target, actions: &[&str]) -> Value {
    json!([{"Principal": t.principal, "Actions": actions}])
}

/// CreateDataSource input: Athena on the workgroup.
pub fn data_source(t: &Target) -> Value {
    let mut athena = json!({"WorkGroup": t.workgroup});
    if let Some(r) = &t.role_arn {
        athena["RoleArn"] = json!(r);
    }
    json!({
        "AwsAccountId": t.account_id,
        "DataSourceId": DATA_SOURCE_ID,
        "Name": "medallion (Athena)",
        "Type": "ATHENA",
        "DataSourceParameters": {"AthenaParameters": athena},
        "Permissions": permissions(t, DATA_SOURCE_ACTIONS),
    })
}

/// `<stage>.<table>` → `<prefix>_<stage>.<table>` for Athena.
pub fn qualify(prefix: &str, sql: &str) -> String {
    let re = regex::Regex::new(r"\b(raw|trusted|curated|ops)\.([A-Za-z_][A-Za-z0-9_]*)")
        .unwrap_or_else(|_| unreachable!("static regex"));
    re.replace_all(sql, |c: &regex::Captures| {
        format!("{prefix}_{}.{}", &c[1], &c[2])
    })
    .into_owned()
}

/// Data set id of a dashboard's dataset.
pub fn data_set_id(d: &Dashboard, ds: &str) -> String {
    format!("medallion-{}-{ds}", d.name).replace('_', "-")
}

fn input_type(c: &super::spec::Column) -> &'static str {
    match c.kind {
        ColumnKind::Number if c.integer => "INTEGER",
        ColumnKind::Number => "DECIMAL",
        ColumnKind::Temporal => "DATETIME",
        ColumnKind::Boolean => "BOOLEAN",
        ColumnKind::Text => "STRING",
    }
}

/// Every request for `d`: its data sets and the dashboard.
///
/// # Errors
/// A named query that cannot be read.
pub fn requests(
    t: &Target,
    d: &Dashboard,
    queries_dir: &std::path::Path,
    small_cell_min: u32,
) -> Result<Requests, crate::query::QueryError> {
    let mut data_sets = Vec::new();
    for (id, ds) in &d.spec.datasets {
        let cols = d.columns.get(id).cloned().unwrap_or_default();
        let inner = data::inner_sql(ds, queries_dir)?;
        let sql = qualify(
            &t.glue_prefix,
            &data::final_sql(ds, &inner, &cols, small_cell_min, false),
        );
        let set_id = data_set_id(d, id);
        let columns: Vec<Value> = cols
            .iter()
            .map(|c| json!({"Name": c.name, "Type": input_type(c)}))
            .collect();
        data_sets.push((
            set_id.clone(),
            json!({
                "AwsAccountId": t.account_id,
                "DataSetId": set_id,
                "Name": format!("{} · {id}", d.spec.title),
                "PhysicalTableMap": {id.replace('_', "-"): {"CustomSql": {
                    "DataSourceArn": t.data_source_arn(),
                    "Name": id,
                    "SqlQuery": sql,
                    "Columns": columns,
                }}},
                "ImportMode": "DIRECT_QUERY",
                "Permissions": permissions(t, DATA_SET_ACTIONS),
            }),
        ));
    }
    Ok(Requests {
        data_sets,
        dashboard: dashboard(t, d),
    })
}

/// Errors deploying.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A request could not be built from the generated JSON.
    #[error("building {what}: {message}")]
    Build {
        /// What was being built.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// A QuickSight call failed.
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
}
