//! Curated-stage rules: `quality_rules/<product>.yaml` judged on a product's rows before they
//! are written. `warn` is counted and reported; `fail` stops the build and commits nothing.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use super::products::{self, Inputs};
use super::CuratedConfig;
use crate::contract::{ColumnType, Contract};
use crate::rules::eval::{self, AsOf, RuleResult};
use crate::rules::{RuleSet, RulesError};
use crate::stage::cast::cast_text;
use crate::stage::Result;
use crate::vocab::Stage;

/// A product column's type as rules see it (`None` for types rules cannot judge).
fn rule_type(dtype: &DataType) -> Option<ColumnType> {
    Some(match dtype {
        DataType::String => ColumnType::String,
        DataType::Boolean => ColumnType::Boolean,
        DataType::Date => ColumnType::Date,
        DataType::Datetime(..) => ColumnType::Timestamp,
        d if d.is_integer() => ColumnType::Integer,
        d if d.is_float() => ColumnType::Double,
        _ => return None,
    })
}

/// Columns of a built product frame with their rule types.
pub fn columns_of(df: &DataFrame) -> Vec<(String, Option<ColumnType>)> {
    df.schema()
        .iter()
        .map(|(name, dtype)| (name.to_string(), rule_type(dtype)))
        .collect()
}

fn empty_trusted(contract: &Contract) -> PolarsResult<DataFrame> {
    let mut cols = Vec::with_capacity(contract.trusted.len());
    for c in &contract.trusted {
        let text = Series::new_empty(c.name.as_str().into(), &DataType::String);
        let typed = match c.ty {
            Some(ty) => cast_text(&text, ty)?,
            None => text,
        };
        cols.push(typed.into_column());
    }
    DataFrame::new_infer_height(cols)
}

/// A product's columns, known without any data: the product built over empty trusted inputs
/// shaped by the contracts of attendance, grades and students.
///
/// # Errors
/// polars errors (a product reading a column the contracts do not declare).
pub fn product_columns(
    product: &str,
    cfg: &CuratedConfig,
    attendance: &Contract,
    grades: &Contract,
    students: &Contract,
    engagement: Option<&Contract>,
) -> Result<Vec<(String, Option<ColumnType>)>> {
    let inputs = Inputs {
        attendance: Some(empty_trusted(attendance)?),
        grades: Some(empty_trusted(grades)?),
        students: Some(empty_trusted(students)?),
        engagement: engagement.map(empty_trusted).transpose()?,
    };
    let df = products::build(product, &inputs, cfg)?;
    Ok(columns_of(&df))
}

/// A product's columns with their rule types.
pub type ProductColumns = Vec<(String, Option<ColumnType>)>;

/// A product's columns in a project whose contracts `contract` gives by dataset name (the one
/// place that knows which datasets the products read); `None` when the product cannot be built
/// there (a dataset it reads has no contract, such as engagement in a project without it).
pub fn product_columns_in(
    product: &str,
    cfg: &CuratedConfig,
    contract: &dyn Fn(&str) -> Option<Contract>,
) -> Option<Result<ProductColumns>> {
    let (Some(att), Some(gr), Some(st)) = (
        contract("attendance"),
        contract("grades"),
        contract("students"),
    ) else {
        return None;
    };
    let engagement = contract("engagement");
    match product_columns(product, cfg, &att, &gr, &st, engagement.as_ref()) {
        Ok(c) => Some(Ok(c)),
        Err(_) if engagement.is_none() => None,
        Err(e) => Some(Err(e)),
    }
}

/// Loads a product's rules from `dir/<product>.yaml` (none when absent), checked against the
/// columns of `df`.
///
/// # Errors
/// YAML errors with file:line:column; every problem in the file.
pub fn load(dir: &Path, product: &str, df: &DataFrame) -> Result<RuleSet, RulesError> {
    RuleSet::load_product(
        &dir.join(format!("{product}.yaml")),
        product,
        &columns_of(df),
    )
}

/// Judges a product's rows. A failed `fail` rule stops the build.
///
/// # Errors
/// [`crate::stage::StepError::Stopped`]; polars errors.
pub fn judge(
    product: &str,
    df: &DataFrame,
    rules: &RuleSet,
    history: &HashMap<String, Vec<f64>>,
    as_of: AsOf,
) -> Result<Vec<RuleResult>> {
    if rules.rules.is_empty() {
        return Ok(Vec::new());
    }
    let types: HashMap<String, Option<ColumnType>> = columns_of(df).into_iter().collect();
    let type_of = |c: &str| types.get(c).copied().flatten();
    // Failing values are shown as text: the text form of each column a rule reads is its raw
    // twin (only those: a twin of every column would hold the product twice over, as text).
    let read: std::collections::HashSet<&str> =
        rules.rules.iter().flat_map(|r| r.check.columns()).collect();
    let twins: Vec<Expr> = df
        .get_column_names()
        .iter()
        .filter(|c| read.contains(c.as_str()))
        .map(|c| {
            col(c.as_str())
                .cast(DataType::String)
                .alias(eval::raw_name(c.as_str()))
        })
        .collect();
    let frame = df.clone().lazy().with_columns(twins).collect()?;
    let refs = HashMap::new();
    let cx = eval::Context {
        as_of,
        types: &type_of,
        history,
        refs: &refs,
        delivered: None,
        batch_unique: None,
    };
    let ev = eval::evaluate(frame, rules, &cx)?;
    crate::stage::stop_on_fail(&ev, product, Stage::Curated)?;
    Ok(ev.results)
}
