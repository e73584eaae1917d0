"""Validates QuickSight request JSON (the files `medallion dashboard deploy --dry-run DIR` writes)
against the QuickSight service model that ships with botocore.

botocore's ParamValidator checks required members, types and unknown keys (and exactly one
member of a tagged union); it does not check enums, string patterns, lengths or list sizes, so
this script walks the model for those too. Prints one line per problem; exit 1 when any.
Usage: python3 quicksight_validate.py DIR
"""
import json
import pathlib
import re
import sys

import botocore.session
from botocore.validate import ParamValidator

# Structures the QuickSight documentation says take exactly one member ("This is a union type
# structure" / "one of"), which the model does not mark as unions.
ONE_OF = {
    "Visual", "DimensionField", "MeasureField", "Filter", "FilterControl", "ParameterControl",
    "ParameterDeclaration", "PhysicalTable", "VisualCustomActionOperation", "LayoutConfiguration",
    "DataSourceParameters", "FilterScopeConfiguration", "NumericalAggregationFunction",
    "AggregationFunction", "CategoryFilterConfiguration", "TableFieldWells", "ScatterPlotFieldWells",
    "FieldSortOptions", "NumericRangeFilterValue", "TimeRangeFilterValue",
}

OPERATIONS = {"data-source": "CreateDataSource", "data-set": "CreateDataSet", "dashboard": "CreateDashboard"}


def walk(shape, value, path, out):
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            return
        members = shape.members
        if getattr(shape, "is_tagged_union", False) or shape.metadata.get("union") or shape.name in ONE_OF:
            if len([k for k in value if value[k] is not None]) != 1:
                out.append(f"{path}: exactly one of {sorted(members)} must be set, got {sorted(value)}")
        for k, v in value.items():
            if k in members:
                walk(members[k], v, f"{path}.{k}", out)
    elif t == "list":
        if not isinstance(value, list):
            return
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if lo is not None and len(value) < lo:
            out.append(f"{path}: at least {lo} items, got {len(value)}")
        if hi is not None and len(value) > hi:
            out.append(f"{path}: at most {hi} items, got {len(value)}")
        for i, v in enumerate(value):
            walk(shape.member, v, f"{path}[{i}]", out)
    elif t == "map":
        if isinstance(value, dict):
            for k, v in value.items():
                walk(shape.key, k, f"{path}<key {k}>", out)
                walk(shape.value, v, f"{path}.{k}", out)
    elif t == "string":
        if not isinstance(value, str):
            return
        if shape.enum and value not in shape.enum:
            out.append(f"{path}: {value!r} is not one of {shape.enum}")
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if lo is not None and len(value) < lo:
            out.append(f"{path}: shorter than {lo}")
        if hi is not None and len(value) > hi:
            out.append(f"{path}: longer than {hi}")
        pat = shape.metadata.get("pattern")
        if pat and not re.fullmatch(pat.lstrip("^").rstrip("$"), value):
            out.append(f"{path}: {value!r} does not match {pat}")
    elif t in ("integer", "long", "double", "float"):
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if isinstance(value, (int, float)):
            if lo is not None and value < lo:
                out.append(f"{path}: {value} below {lo}")
            if hi is not None and value > hi:
                out.append(f"{path}: {value} above {hi}")


def collect(value, key, out):
    """Every value of `key` anywhere in a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                out.append(v)
            collect(v, key, out)
    elif isinstance(value, list):
        for v in value:
            collect(v, key, out)
    return out


def references(name, params, data_set_ids):
    """Cross-references QuickSight checks when it creates a dashboard (not in the model)."""
    out = []
    d = params.get("Definition", {})
    declared = {x["Identifier"] for x in d.get("DataSetIdentifierDeclarations", [])}
    for x in d.get("DataSetIdentifierDeclarations", []):
        ds = x["DataSetArn"].rsplit("/", 1)[-1]
        if ds not in data_set_ids:
            out.append(f"{name}: data set {ds} is declared but no request creates it")
    for used in set(collect(d, "DataSetIdentifier", [])) - declared:
        out.append(f"{name}: column of undeclared data set identifier {used}")
    for key in ("SheetId", "VisualId", "FilterId", "FilterControlId", "ParameterControlId", "FilterGroupId", "CustomActionId"):
        ids = [i for i in collect(d, key, []) if isinstance(i, str)]
        # SheetId also appears in filter scopes; VisualId only in visuals.
        if key == "SheetId":
            ids = [s["SheetId"] for s in d.get("Sheets", [])]
        if key == "FilterId":
            ids = [f[k]["FilterId"] for g in d.get("FilterGroups", []) for f in g["Filters"] for k in f]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            out.append(f"{name}: {key} used more than once: {sorted(dup)}")
    sheets = {s["SheetId"]: {list(v.values())[0].get("VisualId") for v in s.get("Visuals", [])} for s in d.get("Sheets", [])}
    for s in d.get("Sheets", []):
        ids = sheets[s["SheetId"]]
        for t in collect(s, "TargetVisuals", []):
            for v in t:
                if v not in ids:
                    out.append(f"{name}: action targets {v}, not on sheet {s['SheetId']}")
        layout = [e["ElementId"] for es in collect(s.get("Layouts", []), "Elements", []) for e in es]
        if set(layout) != ids:
            out.append(f"{name}: layout of {s['SheetId']} does not place exactly its visuals")
    filters = {f[k]["FilterId"] for g in d.get("FilterGroups", []) for f in g["Filters"] for k in f}
    for f in collect(d.get("Sheets", []), "SourceFilterId", []):
        if f not in filters:
            out.append(f"{name}: control of unknown filter {f}")
    params_declared = {list(p.values())[0]["Name"] for p in d.get("ParameterDeclarations", [])}
    for p in collect(d.get("Sheets", []), "SourceParameterName", []) + collect(d.get("FilterGroups", []), "ParameterName", []):
        if p not in params_declared:
            out.append(f"{name}: unknown parameter {p}")
    for g in d.get("FilterGroups", []):
        for sc in g["ScopeConfiguration"]["SelectedSheets"]["SheetVisualScopingConfigurations"]:
            for v in sc.get("VisualIds", []):
                if v not in sheets.get(sc["SheetId"], set()):
                    out.append(f"{name}: filter group {g['FilterGroupId']} scopes {v}, not on {sc['SheetId']}")
    return out


def main(folder):
    model = botocore.session.get_session().get_service_model("quicksight")
    problems = []
    files = sorted(pathlib.Path(folder).glob("*.json"))
    if not files:
        print(f"no request files in {folder}")
        return 1
    for f in files:
        prefix = next((p for p in OPERATIONS if f.name.startswith(p + "-") or f.stem == p), None)
        if prefix is None:
            problems.append(f"{f.name}: unknown request kind")
            continue
        op = model.operation_model(OPERATIONS[prefix])
        params = json.loads(f.read_text())
        report = ParamValidator().validate(params, op.input_shape)
        if report.has_errors():
            problems.append(f"{f.name}: {report.generate_report()}")
        extra = []
        walk(op.input_shape, params, f.name, extra)
        problems.extend(extra)
    data_set_ids = {json.loads(f.read_text()).get("DataSetId") for f in files if f.name.startswith("data-set-")}
    for f in files:
        if f.name.startswith("dashboard-"):
            problems.extend(references(f.name, json.loads(f.read_text()), data_set_ids))
    for p in problems:
        print(p)
    print(f"checked {len(files)} requests against QuickSight {model.api_version}: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
