"""Validates AWS request JSON (the files `medallion aws workers --dry-run DIR` writes) against the
service models that ship with botocore. A file `<service>-<operation-in-kebab-case>.json` is the
request of that operation. A Step Functions definition is also checked as a state machine: its
states are reachable from StartAt (through Next, a Choice's rules and Default), every Next names
a state, something ends, and every AWS Batch task's Parameters are a valid Batch SubmitJob
request once each `"Key.$": "$.path"` is read from the execution input of
`stepfunctions-start-execution.json` (a path missing there is a problem).
Prints one line per problem; exit 1 when any. Usage: python3 aws_request_validate.py DIR
"""
import json
import pathlib
import sys

import botocore.session
from botocore.validate import ParamValidator


def camel(value):
    """ASL service parameters are PascalCase; the API model's members are camelCase. The value
    of `Parameters` (Batch job parameters) is a user map: its keys stay as written."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: (v if k == "Parameters" else camel(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def resolve(value, execution_input, where, out):
    """Parameters with the JSONPath values (`"Key.$": "$.a.b"`) read from the execution input."""
    if isinstance(value, list):
        return [resolve(v, execution_input, where, out) for v in value]
    if not isinstance(value, dict):
        return value
    resolved = {}
    for k, v in value.items():
        if k.endswith(".$") and isinstance(v, str) and v.startswith("$."):
            node = execution_input
            for part in v[2:].split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                out.append(f"{where}: {k} {v!r} is not in the execution input")
                continue
            resolved[k[:-2]] = node
        else:
            resolved[k] = resolve(v, execution_input, where, out)
    return resolved


def check_definition(name, definition, session, out, execution_input):
    states = definition.get("States", {})
    start = definition.get("StartAt")
    if start not in states:
        out.append(f"{name}: StartAt {start!r} is not a state")
        return
    seen, todo = set(), [start]
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.add(s)
        state = states[s]
        nxt = state.get("Next")
        if state.get("Type") == "Choice":
            targets = [c.get("Next") for c in state.get("Choices", [])]
            if "Default" in state:
                targets.append(state["Default"])
            if not targets:
                out.append(f"{name}: Choice {s} leads nowhere")
            for t in targets:
                if t not in states:
                    out.append(f"{name}: {s} leads to {t!r}, not a state")
                else:
                    todo.append(t)
        if nxt is not None:
            if nxt not in states:
                out.append(f"{name}: {s}.Next {nxt!r} is not a state")
            else:
                todo.append(nxt)
        elif not state.get("End") and state.get("Type") not in ("Succeed", "Fail", "Choice"):
            out.append(f"{name}: {s} neither ends nor has a Next")
        if state.get("Resource", "").startswith("arn:aws:states:::batch:submitJob"):
            op = session.get_service_model("batch").operation_model("SubmitJob")
            params = resolve(state.get("Parameters", {}), execution_input, f"{name}: {s}", out)
            report = ParamValidator().validate(camel(params), op.input_shape)
            if report.has_errors():
                out.append(f"{name}: {s}: {report.generate_report()}")
    for s in states:
        if s not in seen:
            out.append(f"{name}: state {s} is unreachable")


def main(folder):
    session = botocore.session.get_session()
    problems = []
    files = sorted(pathlib.Path(folder).glob("*.json"))
    if not files:
        print(f"no request files in {folder}")
        return 1
    start = pathlib.Path(folder) / "stepfunctions-start-execution.json"
    execution_input = json.loads(json.loads(start.read_text()).get("input", "{}")) if start.exists() else {}
    for f in files:
        service, _, op = f.stem.partition("-")
        operation = "".join(w.capitalize() for w in op.split("-"))
        try:
            model = session.get_service_model(service).operation_model(operation)
        except Exception as e:  # unknown service or operation
            problems.append(f"{f.name}: {e}")
            continue
        params = json.loads(f.read_text())
        report = ParamValidator().validate(params, model.input_shape)
        if report.has_errors():
            problems.append(f"{f.name}: {report.generate_report()}")
        if service == "stepfunctions" and "definition" in params:
            check_definition(f.name, json.loads(params["definition"]), session, problems, execution_input)
    for p in problems:
        print(p)
    print(f"checked {len(files)} requests: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
