//! serde shape of an ODCS v3 contract, as much of it as medallion reads. Unknown keys are
//! rejected so a typo never passes silently; ODCS fields medallion does not interpret are
//! accepted as opaque values.
#![allow(missing_docs)] // fields mirror the ODCS v3 keys one to one; see the ODCS specification

use serde::Deserialize;
use serde_yaml::Value;

/// An ODCS v3 data contract straight out of serde.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawContract {
    pub api_version: String,
    pub kind: String,
    pub id: String,
    pub name: String,
    pub version: String,
    pub status: String,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub data_product: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub description: Option<RawDescription>,
    #[serde(default)]
    pub schema: Vec<RawSchemaObject>,
    #[serde(default)]
    pub team: Vec<RawTeamMember>,
    #[serde(default)]
    pub roles: Option<Value>,
    #[serde(default)]
    pub support: Option<Value>,
    #[serde(default)]
    pub servers: Option<Value>,
    #[serde(default)]
    pub price: Option<Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub sla_default_element: Option<String>,
    #[serde(default)]
    pub sla_properties: Vec<RawSla>,
    #[serde(default)]
    pub authoritative_definitions: Option<Value>,
    #[serde(default)]
    pub custom_properties: Vec<CustomProperty>,
    #[serde(default)]
    pub contract_created_ts: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawDescription {
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub usage: Option<String>,
    #[serde(default)]
    pub limitations: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTeamMember {
    pub username: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSla {
    pub property: String,
    pub value: Value,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub element: Option<String>,
}

/// An ODCS `customProperties` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProperty {
    pub property: String,
    pub value: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSchemaObject {
    pub name: String,
    #[serde(default)]
    pub physical_name: Option<String>,
    #[serde(default)]
    pub physical_type: Option<String>,
    #[serde(default)]
    pub logical_type: Option<String>,
    #[serde(default)]
    pub business_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub data_granularity_description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub quality: Option<Value>,
    #[serde(default)]
    pub custom_properties: Vec<CustomProperty>,
    #[serde(default)]
    pub properties: Vec<RawProperty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawProperty {
    pub name: String,
    #[serde(default)]
    pub logical_type: Option<String>,
    #[serde(default)]
    pub physical_type: Option<String>,
    #[serde(default)]
    pub logical_type_options: Option<RawTypeOptions>,
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub unique: Option<bool>,
    #[serde(default)]
    pub primary_key: Option<bool>,
    #[serde(default)]
    pub primary_key_position: Option<i64>,
    #[serde(default)]
    pub classification: Option<String>,
    #[serde(default)]
    pub critical_data_element: Option<bool>,
    #[serde(default)]
    pub business_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub examples: Option<Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub quality: Option<Value>,
    #[serde(default)]
    pub partitioned: Option<bool>,
    #[serde(default)]
    pub transform_description: Option<String>,
    #[serde(default)]
    pub custom_properties: Vec<CustomProperty>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTypeOptions {
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub min_length: Option<u64>,
    #[serde(default)]
    pub max_length: Option<u64>,
    #[serde(default)]
    pub minimum: Option<Value>,
    #[serde(default)]
    pub maximum: Option<Value>,
}
