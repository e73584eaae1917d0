"""Validates AWS request JSON (the files `medallion aws workers --dry-run DIR` writes) against the
service models that ship with botocore. A file `<service>-<operation-in-kebab-case>.json` is the
request of that operation. A Step Functions definition is also checked as a state machine: its
states are reachable from StartAt, every Next names a state, something ends, and every AWS Batch
task's Parameters are a valid Batch SubmitJob request.
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


def check_definition(name, definition, session, out):
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
        if nxt is not None:
            if nxt not in states:
                out.append(f"{name}: {s}.Next {nxt!r} is not a state")
            else:
                todo.append(nxt)
        elif not state.get("End") and state.get("Type") not in ("Succeed", "Fail", "Choice"):
            out.append(f"{name}: {s} neither ends nor has a Next")
        if state.get("Resource", "").startswith("arn:aws:states:::batch:submitJob"):
            op = session.get_service_model("batch").operation_model("SubmitJob")
            report = ParamValidator().validate(camel(state.get("Parameters", {})), op.input_shape)
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
            check_definition(f.name, json.loads(params["definition"]), session, problems)
    for p in problems:
        print(p)
    print(f"checked {len(files)} requests: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
