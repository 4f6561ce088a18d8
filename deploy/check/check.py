#!/usr/bin/env python3
"""Checks of deploy/ that the command-line tools do not do themselves; run by scripts/check-deploy.

  validate --kube-version V [--expect-kinds K,..] RENDERED.yaml
      every object against the Kubernetes JSON schemas of kubernetes-validate, strictly (unknown
      fields fail); a ServiceMonitor against servicemonitor.schema.json (equally strict); then
      the chart's policy (security context, gRPC probes, grace period, secrets) on Deployments
  alert-coverage ALERTS.yaml TESTS.yaml
      every alert has a promtool unit test where it fires and one where it must not
  dashboard-rules DASHBOARD.json
      prints every PromQL expression of the dashboard (Grafana variables substituted) as
      recording rules, for `promtool check rules`
  metric-names METRICS.txt FILE...
      every metric selected in the dashboard/alert expressions is a known metric
  values-doc CHART [--write]
      the values table in the chart's README.md is what values.yaml's `# --` comments give
  sdk-lint CHART [VALUES] / sdk-template CHART OUT [VALUES]
      helm lint / helm template through the Helm Go SDK (PyPI helm-python-sdk), the fallback
      when the helm CLI cannot be built
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def fail(problems: list[str], what: str) -> None:
    if problems:
        for problem in problems:
            print(f"  FAIL {problem}", file=sys.stderr)
        sys.exit(f"{what}: {len(problems)} problem(s)")


# --- validate ----------------------------------------------------------------------------------


def load_documents(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def object_name(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def validate_schemas(docs: list[dict], kube_version: str) -> list[str]:
    import jsonschema
    import kubernetes_validate

    servicemonitor = jsonschema.Draft202012Validator(
        json.loads((HERE / "servicemonitor.schema.json").read_text(encoding="utf-8"))
    )
    problems = []
    for doc in docs:
        name = object_name(doc)
        if doc.get("kind") == "ServiceMonitor":
            for error in servicemonitor.iter_errors(doc):
                path = ".".join(str(p) for p in error.absolute_path)
                problems.append(f"{name}: {path}: {error.message}")
            continue
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            problems.append(f"{name}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{name}: no schema: {error.message}")
    return problems


def deployment_policy(docs: list[dict]) -> list[str]:
    """What the brief and the observability contract require of every rendered Deployment."""
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    problems = []
    for config_name, data in config_maps.items():
        for key in data:
            if re.search(r"PASSWORD|SECRET|TOKEN|DATABASE_URL", key):
                problems.append(f"ConfigMap/{config_name}: {key} is a secret and must come from a Secret")
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        name = object_name(doc)
        pod = doc["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext", {})
        if pod_sc.get("runAsNonRoot") is not True:
            problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
        if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod seccompProfile is not RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: automountServiceAccountToken is not false")
        if "checksum/config" not in doc["spec"]["template"]["metadata"].get("annotations", {}):
            problems.append(f"{name}: no checksum/config annotation (config changes would not roll the pods)")
        for container in pod["containers"]:
            where = f"{name} container {container['name']}"
            sc = container.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities do not drop ALL")
            if not container.get("resources", {}).get("requests"):
                problems.append(f"{where}: no resource requests")
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            if "grpc" not in ports or ports.get("metrics") != 9464:
                problems.append(f"{where}: needs ports grpc and metrics=9464, has {ports}")
            expected = {"startupProbe": "liveness", "livenessProbe": "liveness", "readinessProbe": ""}
            for probe, service in expected.items():
                grpc = container.get(probe, {}).get("grpc")
                if not grpc or grpc.get("service") != service or grpc.get("port") != ports.get("grpc"):
                    problems.append(
                        f"{where}: {probe} must be grpc {{port: {ports.get('grpc')}, service: {service!r}}}, is {grpc}"
                    )
            env = {}
            for ref in container.get("envFrom", []):
                env.update(config_maps.get(ref.get("configMapRef", {}).get("name"), {}))
            env.update({e["name"]: e.get("value") for e in container.get("env", [])})
            drain_ms = next((v for k, v in env.items() if k.endswith("_SHUTDOWN_TIMEOUT_MS")), None)
            if drain_ms is None:
                problems.append(f"{where}: no *_SHUTDOWN_TIMEOUT_MS in its environment")
                continue
            pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            needed = pre_stop + math.ceil(int(drain_ms) / 1000)
            grace = pod.get("terminationGracePeriodSeconds", 30)
            if grace <= needed:
                problems.append(
                    f"{where}: terminationGracePeriodSeconds {grace} leaves no margin over preStop {pre_stop}s + drain {drain_ms}ms"
                )
            if env.get("LOG_FORMAT") not in ("json", "text"):
                problems.append(f"{where}: LOG_FORMAT is {env.get('LOG_FORMAT')!r}")
            for e in container.get("env", []):
                if re.search(r"PASSWORD|DATABASE_URL|CREDENTIAL", e["name"]) and "secretKeyRef" not in e.get("valueFrom", {}):
                    problems.append(f"{where}: {e['name']} must come from a secretKeyRef")
    return problems


def cmd_validate(args: list[str]) -> None:
    kube_version, expect, path = None, [], None
    while args:
        arg = args.pop(0)
        if arg == "--kube-version":
            kube_version = args.pop(0)
        elif arg == "--expect-kinds":
            expect = args.pop(0).split(",")
        else:
            path = arg
    docs = load_documents(path)
    kinds = sorted({d["kind"] for d in docs})
    problems = validate_schemas(docs, kube_version)
    problems += deployment_policy(docs)
    problems += [f"no {kind} rendered" for kind in expect if kind not in kinds]
    fail(problems, Path(path).name)
    print(f"  {Path(path).name}: {len(docs)} objects valid for Kubernetes {kube_version} (strict), policy ok: {', '.join(kinds)}")


# --- alert-coverage ----------------------------------------------------------------------------


def cmd_alert_coverage(args: list[str]) -> None:
    rules = yaml.safe_load(Path(args[0]).read_text(encoding="utf-8"))
    tests = yaml.safe_load(Path(args[1]).read_text(encoding="utf-8"))
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    fires, quiet = set(), set()
    for test in tests["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    problems = [f"alert {a} has no test where it fires" for a in alerts if a not in fires]
    problems += [f"alert {a} has no test where it stays quiet (exp_alerts: [])" for a in alerts if a not in quiet]
    problems += [f"tests name unknown alert {a}" for a in (fires | quiet) - set(alerts)]
    fail(problems, args[1])
    print(f"  {len(alerts)} alerts, each tested firing and quiet")


# --- dashboard ---------------------------------------------------------------------------------

VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*\w+\)$")


def substitute(expr: str) -> str:
    """Grafana variables to values PromQL accepts where the dashboard uses them: durations for
    the interval variables, a label value for the others (they only appear in matchers)."""

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return "5m" if name.startswith("__") else "x"

    return VARIABLE.sub(value, expr)


def dashboard_expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    found = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"panel {panel.get('title')!r} ref {target.get('refId')}", target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        inner = LABEL_VALUES.match(query or "")
        found.append((f"variable {variable['name']}", inner.group(1) if inner else query))
    return found


def cmd_dashboard_rules(args: list[str]) -> None:
    dashboard = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": substitute(expr), "labels": {"source": where}}
        for i, (where, expr) in enumerate(dashboard_expressions(dashboard))
    ]
    if not rules:
        sys.exit(f"{args[0]}: no PromQL expressions found")
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sys.stdout, sort_keys=False, width=1000)
    print(f"  {len(rules)} dashboard expressions", file=sys.stderr)


# --- metric-names ------------------------------------------------------------------------------

SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
HISTOGRAM_SERIES = re.compile(r"_(bucket|count|sum)$")


def expressions_of(path: str) -> list[str]:
    if path.endswith(".json"):
        return [expr for _, expr in dashboard_expressions(json.loads(Path(path).read_text(encoding="utf-8")))]
    rules = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return [str(r["expr"]) for g in rules["groups"] for r in g["rules"]]


def cmd_metric_names(args: list[str]) -> None:
    known = {
        line.split("#")[0].strip()
        for line in Path(args[0]).read_text(encoding="utf-8").splitlines()
        if line.split("#")[0].strip()
    }
    problems, used = [], set()
    for path in args[1:]:
        for expr in expressions_of(path):
            names = SELECTOR.findall(expr)
            if not names:
                problems.append(f"{path}: selects no metric with a {{...}} matcher: {expr}")
            for name in names:
                base = HISTOGRAM_SERIES.sub("", name) if HISTOGRAM_SERIES.sub("", name) in known else name
                used.add(base)
                if base not in known:
                    problems.append(f"{path}: unknown metric {name} in: {expr}")
    fail(problems, "metric names")
    print(f"  {len(used)} metrics used, all in {args[0]}")


# --- values-doc --------------------------------------------------------------------------------

KEY_LINE = re.compile(r"^(\s*)([A-Za-z0-9_.-]+):")
BEGIN, END = "<!-- values:begin (generated by deploy/check/check.py values-doc) -->", "<!-- values:end -->"


def values_table(values_path: Path) -> str:
    """The chart README's table of values: every key with a `# --` comment in values.yaml, its
    default and that comment (continued by the `#` lines under it)."""
    values = yaml.safe_load(values_path.read_text(encoding="utf-8"))
    rows, stack, comment = [], [], None
    for line in values_path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
        elif stripped.startswith("#") and comment is not None:
            comment.append(stripped[1:].strip())
        elif (match := KEY_LINE.match(line)) and not stripped.startswith("-"):
            indent, key = len(match.group(1)), match.group(2)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, key))
            if comment is not None:
                path = [k for _, k in stack]
                default = values
                for k in path:
                    default = default[k]
                shown = json.dumps(default, separators=(", ", ": ")).replace("|", "\\|")
                meaning = " ".join(comment).replace("|", "\\|")
                rows.append(f"| `{'.'.join(path)}` | `{shown}` | {meaning} |")
            comment = None
        elif not stripped:
            comment = None
    return "\n".join(["| value | default | meaning |", "|---|---|---|", *rows])


def cmd_values_doc(args: list[str]) -> None:
    """values-doc CHART [--write]: the README's values table is up to date (or rewrite it)."""
    chart = Path(args[0])
    readme = chart / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    table = values_table(chart / "values.yaml")
    if "--write" in args:
        readme.write_text(text[:start] + "\n" + table + "\n" + text[end:], encoding="utf-8")
    elif text[start:end].strip() != table:
        sys.exit(f"{readme}: the values table is stale: run 'python3 deploy/check/check.py values-doc {chart} --write'")
    print(f"  {readme}: {table.count(chr(10)) - 1} values documented")


# --- Helm SDK fallback -------------------------------------------------------------------------


def cmd_sdk_lint(args: list[str]) -> None:
    import helm_python as helm

    values = yaml.safe_load(Path(args[1]).read_text(encoding="utf-8")) if len(args) > 1 else None
    result = helm.lint(args[0], values, strict=True)
    print(result)
    if result.get("errors"):
        sys.exit(1)


def cmd_sdk_template(args: list[str]) -> None:
    import helm_python as helm

    values = yaml.safe_load(Path(args[2]).read_text(encoding="utf-8")) if len(args) > 2 else {}
    with helm.Chart.load(args[0]) as chart:
        manifests = chart.render(values, name="tributary", namespace="tributary")
    with open(args[1], "w", encoding="utf-8") as out:
        for source, text in sorted(manifests.items()):
            if text.strip() and source.endswith(".yaml"):
                out.write(f"---\n# Source: {source}\n{text.strip()}\n")


COMMANDS = {
    "validate": cmd_validate,
    "alert-coverage": cmd_alert_coverage,
    "dashboard-rules": cmd_dashboard_rules,
    "metric-names": cmd_metric_names,
    "values-doc": cmd_values_doc,
    "sdk-lint": cmd_sdk_lint,
    "sdk-template": cmd_sdk_template,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2:])
