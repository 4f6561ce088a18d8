#!/usr/bin/env python3
"""Checks of deploy/ that the command-line tools do not do themselves; run by scripts/check-deploy.

  validate --kube-version V [--expect-kinds K,..] [--case VALUES.yaml] RENDERED.yaml
      every object against the Kubernetes JSON schemas of kubernetes-validate, strictly (unknown
      fields fail); the CRD kinds (ServiceMonitor, cert-manager's Certificate) against the schemas
      here written from their CRDs (equally strict); then the chart's policy (security context,
      probes, grace period, TLS and authentication settings, secrets only as read-only files) on
      Deployments, the authorization policy files the release renders (parsed as the services
      parse them) and the NetworkPolicies (only the ports served, messaging -> registry
      admitted). A case's values file names the kinds it must render (`# expect-kinds: A,B`)
      and may name kinds it must not (`# absent-kinds: C`), objects it must or must not render
      (`# expect-objects: Kind/name,..`, `# absent-objects: ..`), and variables every
      Deployment's environment must hold (`# expect-env: NAME=value,..`) or lack (`# absent-env:
      NAME,..`)
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
from fnmatch import fnmatchcase
from pathlib import Path
from urllib.parse import urlsplit

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


# Kinds defined by CRDs, so not in kubernetes-validate's schemas: validated against a strict
# schema written here from the CRD.
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.schema.json",
    ("cert-manager.io/v1", "Certificate"): "certificate.schema.json",
}


def validate_schemas(docs: list[dict], kube_version: str) -> list[str]:
    import jsonschema
    import kubernetes_validate

    crd_validators = {
        key: jsonschema.Draft202012Validator(json.loads((HERE / file).read_text(encoding="utf-8")))
        for key, file in CRD_SCHEMAS.items()
    }
    problems = []
    for doc in docs:
        name = object_name(doc)
        validator = crd_validators.get((doc.get("apiVersion"), doc.get("kind")))
        if validator is not None:
            for error in validator.iter_errors(doc):
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


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|DATABASE_URL|CREDENTIAL")
# the deprecated messaging.kafka.credentials: secretKeyRef variables, the only secrets allowed in env
DEPRECATED_SECRET_ENV = re.compile(r"^KAFKA_CREDENTIAL_[0-9]+$")
SECRET_MODES = (0o400, 0o440)


def secret_sources(docs: list[dict]) -> dict[str, set[str] | None]:
    """Secrets the release itself provides: name -> keys (None: written by cert-manager, whose
    Secrets hold tls.crt, tls.key and ca.crt)."""
    found: dict[str, set[str] | None] = {}
    for doc in docs:
        if doc["kind"] == "Secret":
            found[doc["metadata"]["name"]] = set(doc.get("data", {})) | set(doc.get("stringData", {}))
        elif doc["kind"] == "Certificate":
            found[doc["spec"]["secretName"]] = {"tls.crt", "tls.key", "ca.crt"}
    return found


def security_policy(where: str, env: dict, container: dict, pod: dict, secrets: dict, config_maps: dict) -> list[str]:
    """Secrets only as files of read-only Secret volumes; TLS and authentication settings that hang
    together; every *_FILE variable names a file of a mounted volume."""
    problems = []
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"].rstrip("/"): m for m in container.get("volumeMounts", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        if "secret" in volume or "configMap" in volume:
            if mount.get("readOnly") is not True:
                problems.append(f"{where}: volume {mount['name']} (secret/configMap) is not mounted readOnly")
            if mount.get("subPath"):
                problems.append(f"{where}: volume {mount['name']} uses subPath (its files would never be updated)")
        if "secret" in volume:
            mode = volume["secret"].get("defaultMode")
            if mode not in SECRET_MODES:
                problems.append(f"{where}: secret volume {mount['name']} has defaultMode {mode!r}, not 0400/0440")
            elif mode == 0o440 and pod.get("securityContext", {}).get("fsGroup") is None:
                problems.append(f"{where}: secret volume {mount['name']} is 0440 (group-readable) but the pod has no fsGroup")
            name = volume["secret"].get("secretName")
            if name in secrets and secrets[name] is not None:
                missing = [i["key"] for i in volume["secret"].get("items", []) if i["key"] not in secrets[name]]
                if missing:
                    problems.append(f"{where}: volume {mount['name']} wants keys {missing} that the rendered Secret/{name} lacks")
        if "configMap" in volume:
            name = volume["configMap"].get("name")
            if name in config_maps:
                missing = [i["key"] for i in volume["configMap"].get("items", []) if i["key"] not in config_maps[name]]
                if missing:
                    problems.append(f"{where}: volume {mount['name']} wants keys {missing} that the rendered ConfigMap/{name} lacks")
    # the files the variables name must be in those volumes
    for key, value in sorted(env.items()):
        if not key.endswith("_FILE") or value is None:
            continue
        directory, _, file = value.rpartition("/")
        mount = mounts.get(directory)
        if mount is None:
            problems.append(f"{where}: {key}={value} is not in a mounted volume")
            continue
        volume = volumes.get(mount["name"], {})
        source = volume.get("secret") or volume.get("configMap") or {}
        items = source.get("items")
        if items is not None and file not in {i["path"] for i in items}:
            problems.append(f"{where}: {key}={value}: volume {mount['name']} has no item with path {file}")
    # nothing secret in plain values, args or the ConfigMap; secretKeyRef only on the deprecated path
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None and not DEPRECATED_SECRET_ENV.match(entry["name"]):
            problems.append(f"{where}: {entry['name']} comes from a secretKeyRef: secrets must be mounted files (*_FILE)")
        if "value" in entry and SECRET_NAME.search(entry["name"]) and not entry["name"].endswith("_FILE"):
            problems.append(f"{where}: {entry['name']} is a secret in a plain env value")
    for field in ("command", "args"):
        if container.get(field):
            problems.append(f"{where}: sets {field} (the chart configures through the environment only)")
    # TLS
    tls = env.get("TLS")
    if tls not in ("on", "off"):
        problems.append(f"{where}: TLS is {tls!r}, must be set to on or off")
    if tls == "on":
        for key in ("TLS_CERT_FILE", "TLS_KEY_FILE"):
            if not env.get(key):
                problems.append(f"{where}: TLS=on without {key}")
    if env.get("METRICS_TLS") == "on" and tls != "on":
        problems.append(f"{where}: METRICS_TLS=on with TLS={tls}")
    client_auth = env.get("TLS_CLIENT_AUTH", "off")
    if client_auth != "off" and not env.get("TLS_CLIENT_CA_FILE"):
        problems.append(f"{where}: TLS_CLIENT_AUTH={client_auth} without TLS_CLIENT_CA_FILE")
    # authentication
    methods = (env.get("AUTH") or "").split(",")
    if not env.get("AUTH"):
        problems.append(f"{where}: AUTH is not set (no method is a startup error; none must be explicit)")
    elif "none" in methods and len(methods) > 1:
        problems.append(f"{where}: AUTH={env['AUTH']} combines none with methods")
    if "basic" in methods and not env.get("AUTH_USERS_FILE"):
        problems.append(f"{where}: AUTH has basic without AUTH_USERS_FILE")
    if "jwt" in methods:
        if not (env.get("AUTH_JWT_ISSUER") and env.get("AUTH_JWT_AUDIENCE")):
            problems.append(f"{where}: AUTH has jwt without AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE")
        if bool(env.get("AUTH_JWKS_FILE")) == bool(env.get("AUTH_JWKS_URL")):
            problems.append(f"{where}: AUTH has jwt: needs exactly one of AUTH_JWKS_FILE, AUTH_JWKS_URL")
    if "mtls" in methods and (client_auth == "off" or tls != "on"):
        problems.append(f"{where}: AUTH has mtls with TLS={tls} TLS_CLIENT_AUTH={client_auth}")
    # authorization: with authentication, a policy file or an explicit AUTHZ=none (the services
    # refuse to start with neither); never both
    authz, policy_file = env.get("AUTHZ"), env.get("AUTHZ_POLICY_FILE")
    if authz not in (None, "none", "policy"):
        problems.append(f"{where}: AUTHZ={authz!r}, must be none or policy")
    if authz == "none" and policy_file:
        problems.append(f"{where}: AUTHZ=none with AUTHZ_POLICY_FILE (the service refuses both)")
    if authz == "policy" and not policy_file:
        problems.append(f"{where}: AUTHZ=policy without AUTHZ_POLICY_FILE")
    if env.get("AUTH") and "none" not in methods and authz != "none" and not policy_file:
        problems.append(f"{where}: AUTH={env['AUTH']} without AUTHZ_POLICY_FILE or AUTHZ=none (the service refuses to start)")
    if "none" in methods and policy_file:
        problems.append(f"{where}: AUTHZ_POLICY_FILE without authentication (every caller is `anonymous`)")
    for key in ("LIMIT_REQUESTS_PER_SECOND", "LIMIT_BURST", "LIMIT_CONCURRENT_STREAMS"):
        if key in env and not re.fullmatch(r"[0-9]+", str(env[key])):
            problems.append(f"{where}: {key}={env[key]!r} is not a whole number")
    # messaging -> registry
    url = env.get("REGISTRY_URL")
    if url is not None:
        if url.startswith("http://") and tls == "on":
            problems.append(f"{where}: REGISTRY_URL {url} is plaintext while the release serves TLS")
        credentials = [k for k in ("REGISTRY_PASSWORD_FILE", "REGISTRY_BEARER_TOKEN_FILE", "REGISTRY_CLIENT_CERT_FILE") if env.get(k)]
        if len(credentials) > 1:
            problems.append(f"{where}: several registry credentials: {credentials}")
        if env.get("REGISTRY_PASSWORD_FILE") and not env.get("REGISTRY_USERNAME"):
            problems.append(f"{where}: REGISTRY_PASSWORD_FILE without REGISTRY_USERNAME")
        if bool(env.get("REGISTRY_CLIENT_CERT_FILE")) != bool(env.get("REGISTRY_CLIENT_KEY_FILE")):
            problems.append(f"{where}: REGISTRY_CLIENT_CERT_FILE and REGISTRY_CLIENT_KEY_FILE go together")
    return problems


def deployment_policy(docs: list[dict]) -> list[str]:
    """What the brief, the observability contract and the security interface require of every
    rendered Deployment."""
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    secrets = secret_sources(docs)
    problems = []
    for config_name, data in config_maps.items():
        for key in data:
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                problems.append(f"ConfigMap/{config_name}: {key} is a secret and must be a file from a Secret (*_FILE)")
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
            env = {}
            for ref in container.get("envFrom", []):
                env.update(config_maps.get(ref.get("configMapRef", {}).get("name"), {}))
            env.update({e["name"]: e.get("value") for e in container.get("env", [])})
            # HTTP probes on the metrics port (kubelet's gRPC probes cannot speak TLS)
            scheme = "HTTPS" if env.get("METRICS_TLS") == "on" else "HTTP"
            expected = {"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}
            for probe, path in expected.items():
                get = container.get(probe, {}).get("httpGet")
                if (
                    not get
                    or get.get("path") != path
                    or get.get("port") not in ("metrics", ports.get("metrics"))
                    or get.get("scheme", "HTTP") != scheme
                ):
                    problems.append(f"{where}: {probe} must be httpGet {{port: metrics, path: {path}, scheme: {scheme}}}, is {get}")
            problems += security_policy(where, env, container, pod, secrets, config_maps)
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
    problems += authz_policies(docs, config_maps)
    problems += network_policies(docs, config_maps)
    # a ServiceMonitor scrapes with the scheme the pods serve, verifying with a CA the release has
    metrics_tls = {
        doc["metadata"]["name"]: any(
            config_maps.get(ref.get("configMapRef", {}).get("name"), {}).get("METRICS_TLS") == "on"
            for c in doc["spec"]["template"]["spec"]["containers"]
            for ref in c.get("envFrom", [])
        )
        for doc in docs
        if doc["kind"] == "Deployment"
    }
    for doc in docs:
        if doc["kind"] != "ServiceMonitor":
            continue
        tls = metrics_tls.get(doc["metadata"]["name"], False)
        for endpoint in doc["spec"]["endpoints"]:
            scheme = endpoint.get("scheme", "http").lower()
            if scheme != ("https" if tls else "http"):
                problems.append(f"{object_name(doc)}: scheme {scheme} while the pods' METRICS_TLS is {'on' if tls else 'off'}")
            if tls:
                ca = endpoint.get("tlsConfig", {}).get("ca", {}).get("secret", {})
                if not ca or (ca.get("name") in secrets and secrets[ca["name"]] is not None and ca.get("key") not in secrets[ca["name"]]):
                    problems.append(f"{object_name(doc)}: https without a tlsConfig.ca the release provides: {ca}")
                if not endpoint.get("tlsConfig", {}).get("serverName"):
                    problems.append(f"{object_name(doc)}: https without tlsConfig.serverName (the certificate has no pod IPs)")
    return problems


# --- authorization policies --------------------------------------------------------------------

# What crates/security/src/authz/policy.rs accepts: the actions of each kind of resource.
POLICY_KINDS = {
    "subject": {"read", "write", "delete", "delete-permanent", "import", "config"},
    "registry": {"read", "config"},
    "topic": {"produce", "consume", "describe", "create", "delete", "alter"},
    "group": {"read", "commit"},
    "cluster": {"describe", "admin"},
}
NAMED_KINDS = {"subject", "topic", "group"}


def container_env(container: dict, config_maps: dict) -> dict:
    env = {}
    for ref in container.get("envFrom", []):
        env.update(config_maps.get(ref.get("configMapRef", {}).get("name"), {}))
    env.update({e["name"]: e.get("value") for e in container.get("env", [])})
    return env


def principal_pattern_problems(patterns, context: str) -> list[str]:
    if not isinstance(patterns, list) or not patterns:
        return [f"{context}: needs a list of principals"]
    problems = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not (
            pattern == "*" or re.fullmatch(r"(user|group):\S+", pattern)
        ):
            problems.append(f"{context}: {pattern!r} is not user:<name>, group:<name> or *")
    return problems


def resource_pattern(pattern) -> tuple[str, str | None] | None:
    """(kind, name glob or None for all) of a rule's `on` entry; None when malformed."""
    if not isinstance(pattern, str):
        return None
    kind, sep, name = pattern.partition(":")
    if kind in ("registry", "cluster"):
        return (kind, None) if not sep else None
    if kind in NAMED_KINDS and sep and name:
        return kind, (None if name == "*" else name)
    return None


class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans (true/false only), as the services' parser reads them: in YAML 1.1
    (PyYAML's default) the policy's `on:` key would be the boolean true."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_policy(text: str, where: str) -> tuple[dict | None, list[str]]:
    """The policy file format, checked as the services check it (unknown fields, allow xor deny,
    known actions that apply to the rule's resources, bindings naming roles, principal patterns)."""
    try:
        policy = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as error:
        return None, [f"{where}: not YAML: {error}"]
    if policy is None:
        policy = {}
    if not isinstance(policy, dict):
        return None, [f"{where}: not a mapping"]
    problems = [f"{where}: unknown field {key!r}" for key in policy if key not in ("groups", "roles", "bindings")]
    for name, members in (policy.get("groups") or {}).items():
        problems += principal_pattern_problems(members, f"{where}: group {name!r}")
    roles = policy.get("roles") or {}
    for role, spec in roles.items():
        if not isinstance(spec, dict):
            problems.append(f"{where}: role {role!r} is not a mapping")
            continue
        problems += [f"{where}: role {role!r}: unknown field {key!r}" for key in spec if key not in ("rules", "limits")]
        for key, value in (spec.get("limits") or {}).items():
            if key not in ("requests_per_second", "burst", "concurrent_streams") or not isinstance(value, int) or value < 0:
                problems.append(f"{where}: role {role!r}: limits.{key}={value!r} is not a known limit with a whole number")
        for number, rule in enumerate(spec.get("rules") or [], 1):
            context = f"{where}: role {role!r}, rule {number}"
            if not isinstance(rule, dict):
                problems.append(f"{context}: not a mapping")
                continue
            problems += [f"{context}: unknown field {key!r}" for key in rule if key not in ("allow", "deny", "on")]
            if ("allow" in rule) == ("deny" in rule):
                problems.append(f"{context}: give either allow or deny")
                continue
            actions = rule.get("allow", rule.get("deny")) or []
            on = rule.get("on") or []
            if not actions or not on:
                problems.append(f"{context}: needs actions and resources (on)")
                continue
            kinds = set()
            for pattern in on:
                if pattern == "*":
                    kinds |= set(POLICY_KINDS)
                elif (parsed := resource_pattern(pattern)) is None:
                    problems.append(f"{context}: {pattern!r} is not subject:<name>, topic:<name>, group:<name>, registry, cluster or *")
                else:
                    kinds.add(parsed[0])
            for action in actions:
                if action != "*" and not any(action in POLICY_KINDS[kind] for kind in kinds):
                    problems.append(f"{context}: {action!r} applies to none of {on}")
    bindings = policy.get("bindings") or []
    if not isinstance(bindings, list):
        return None, problems + [f"{where}: bindings is not a list"]
    for number, binding in enumerate(bindings, 1):
        context = f"{where}: binding {number}"
        if not isinstance(binding, dict) or set(binding) != {"role", "to"}:
            problems.append(f"{context}: needs exactly role and to")
            continue
        if binding["role"] not in roles:
            problems.append(f"{context}: no role is named {binding['role']!r}")
        problems += principal_pattern_problems(binding["to"], context)
    return (None if problems else policy), problems


def policy_allows(policy: dict, user: str, action: str, kind: str, name: str = "") -> bool:
    """The services' decision for `user:<user>` (no JWT groups): deny by default, deny wins."""
    def who(patterns, groups) -> bool:
        return any(
            p == "*" or (p.startswith("user:") and fnmatchcase(user, p[5:])) or (p.startswith("group:") and any(fnmatchcase(g, p[6:]) for g in groups))
            for p in patterns
        )

    groups = [g for g, members in (policy.get("groups") or {}).items() if who(members, [])]
    verdict = {"allow": False, "deny": False}
    for binding in policy.get("bindings") or []:
        if not who(binding["to"], groups):
            continue
        for rule in policy["roles"][binding["role"]].get("rules") or []:
            effect = "allow" if "allow" in rule else "deny"
            if "*" not in rule[effect] and action not in rule[effect]:
                continue
            for pattern in rule["on"]:
                target = (kind, None) if pattern == "*" else resource_pattern(pattern)
                if target[0] == kind and (target[1] is None or fnmatchcase(name, target[1])):
                    verdict[effect] = True
    return verdict["allow"] and not verdict["deny"]


def authz_policies(docs: list[dict], config_maps: dict) -> list[str]:
    """Every policy file the release renders (a ConfigMap mounted at AUTHZ_POLICY_FILE) parses as
    the services parse it, and grants messaging's registry identity what it needs."""
    problems = []
    policies = {}  # Deployment name -> parsed policy
    parsed = {}  # (ConfigMap, key) -> parsed policy, each file checked once
    messaging_users = []  # (where, REGISTRY_USERNAME, REGISTRY_URL)
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            env = container_env(container, config_maps)
            where = f"{object_name(doc)} container {container['name']}"
            if env.get("REGISTRY_USERNAME"):
                messaging_users.append((where, env["REGISTRY_USERNAME"], env.get("REGISTRY_URL", "")))
            path = env.get("AUTHZ_POLICY_FILE")
            if not path:
                continue
            directory, _, file = path.rpartition("/")
            mount = next((m for m in container.get("volumeMounts", []) if m["mountPath"].rstrip("/") == directory), None)
            source = volumes.get(mount["name"], {}).get("configMap") if mount else None
            if not source or source.get("name") not in config_maps:
                continue  # a Secret or a ConfigMap of the user's: not rendered here
            key = next((i["key"] for i in source.get("items", []) if i["path"] == file), file)
            text = config_maps[source["name"]].get(key)
            if text is None:
                continue  # reported by security_policy
            if (source["name"], key) not in parsed:
                policy, found = parse_policy(text, f"ConfigMap/{source['name']} {key}")
                problems += found
                parsed[source["name"], key] = policy
            policy = parsed[source["name"], key]
            if policy is not None:
                policies[doc["metadata"]["name"]] = policy
    # messaging's identity, on this release's registry: read + write on subjects, read on the registry
    for where, user, url in messaging_users:
        service = (urlsplit(url).hostname or "").split(".")[0]
        policy = policies.get(service)
        if policy is None:
            continue
        needed = [("read", "subject", "any-value"), ("write", "subject", "any-value"), ("read", "registry", "")]
        missing = [f"{a} {k}{':' + n if n else ''}" for a, k, n in needed if not policy_allows(policy, user, a, k, n)]
        if missing:
            problems.append(f"{where}: the registry's policy does not grant REGISTRY_USERNAME={user} {', '.join(missing)}")
    return problems


# --- network policies --------------------------------------------------------------------------

RELEASE_NAMESPACE = "tributary"  # scripts/check-deploy renders with --namespace tributary


def selector_matches(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values):
            return False
        if (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def peer_admits(peer: dict, pod_labels: dict) -> bool:
    """Whether a NetworkPolicyPeer admits a pod of the release's namespace with these labels."""
    if "ipBlock" in peer:
        return False
    namespace = peer.get("namespaceSelector")
    if namespace is not None and not selector_matches(namespace, {"kubernetes.io/metadata.name": RELEASE_NAMESPACE}):
        return False
    pods = peer.get("podSelector")
    return pods is None or selector_matches(pods, pod_labels)


def rule_admits(rule: dict, peers_key: str, pod_labels: dict | None, port: int, protocol: str = "TCP") -> bool:
    """Whether an ingress (peers_key "from") or egress ("to") rule admits `port` with a pod
    (None: any peer at all) on the other end."""
    peers = rule.get(peers_key)
    if peers and pod_labels is not None and not any(peer_admits(p, pod_labels) for p in peers):
        return False
    ports = rule.get("ports")
    return not ports or any(
        p.get("protocol", "TCP") == protocol and (p.get("port") is None or p.get("port") == port or (p.get("endPort") and p["port"] <= port <= p["endPort"]))
        for p in ports
    )


def network_policies(docs: list[dict], config_maps: dict) -> list[str]:
    """When the release renders NetworkPolicies: each Deployment's pods are selected by one, every
    ingress rule names its ports and admits only ports the pods serve, every served port is
    admitted from somewhere, and messaging's pods reach this release's registry (ingress on the
    registry's side, egress on messaging's when egress is restricted, DNS too)."""
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    if not policies:
        return []
    problems = []
    pods = {}  # Deployment name -> (labels, {port name: port})
    for doc in docs:
        if doc["kind"] == "Deployment":
            template = doc["spec"]["template"]
            ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
            pods[doc["metadata"]["name"]] = (template["metadata"].get("labels", {}), ports)
    selecting = {name: [p for p in policies if selector_matches(p["spec"]["podSelector"], labels)] for name, (labels, _) in pods.items()}
    for policy in policies:
        selected = [name for name, found in selecting.items() if policy in found]
        served = {port for name in selected for item in pods[name][1].items() for port in item}
        for number, rule in enumerate(policy["spec"].get("ingress", []), 1):
            if not rule.get("ports"):
                problems.append(f"{object_name(policy)}: ingress rule {number} admits every port")
            for port in rule.get("ports", []):
                if port.get("port") not in served:
                    problems.append(f"{object_name(policy)}: ingress rule {number} admits port {port.get('port')}, which its pods do not serve")
    for name, (labels, ports) in pods.items():
        if not selecting[name]:
            problems.append(f"Deployment/{name}: no NetworkPolicy selects its pods")
            continue
        rules = [r for p in selecting[name] if "Ingress" in p["spec"].get("policyTypes", ["Ingress"]) for r in p["spec"].get("ingress", [])]
        for port_name, port in ports.items():
            if not any(rule_admits(r, "from", None, port) for r in rules):
                problems.append(f"Deployment/{name}: its port {port_name} ({port}) is admitted from nowhere")
    # messaging -> this release's registry
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for doc in docs:
        if doc["kind"] != "Deployment" or not selecting.get(doc["metadata"]["name"]):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            url = container_env(container, config_maps).get("REGISTRY_URL")
            if not url:
                continue
            parts = urlsplit(url)
            service = services.get((parts.hostname or "").split(".")[0])
            if service is None:
                continue  # a registry elsewhere
            port = next((p.get("targetPort") for p in service["spec"]["ports"] if p["port"] == parts.port), None)
            targets = [n for n, (labels, _) in pods.items() if selector_matches({"matchLabels": service["spec"]["selector"]}, labels)]
            me = pods[doc["metadata"]["name"]][0]
            for target in targets:
                target_port = pods[target][1].get(port, port)
                rules = [r for p in selecting.get(target, []) for r in p["spec"].get("ingress", [])]
                if selecting.get(target) and not any(rule_admits(r, "from", me, target_port) for r in rules):
                    problems.append(f"Deployment/{target}: no NetworkPolicy admits {doc['metadata']['name']} (REGISTRY_URL) on port {target_port}")
                egress = [p for p in selecting[doc["metadata"]["name"]] if "Egress" in p["spec"].get("policyTypes", [])]
                if egress:
                    rules = [r for p in egress for r in p["spec"].get("egress", [])]
                    if not any(rule_admits(r, "to", pods[target][0], target_port) for r in rules):
                        problems.append(f"Deployment/{doc['metadata']['name']}: its egress NetworkPolicy does not admit the registry on port {target_port}")
    for name in pods:
        egress = [p for p in selecting.get(name, []) if "Egress" in p["spec"].get("policyTypes", [])]
        rules = [r for p in egress for r in p["spec"].get("egress", [])]
        if egress and not any(rule_admits(r, "to", None, 53, "UDP") for r in rules):
            problems.append(f"Deployment/{name}: its egress NetworkPolicy does not admit DNS (UDP 53)")
    return problems


def case_header(path: str, field: str) -> list[str]:
    """`# field: A,B` from the comment lines at the top of a case's values file."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line[1:].partition(":")
        if key.strip() == field:
            return [k.strip() for k in value.split(",") if k.strip()]
    return []


def cmd_validate(args: list[str]) -> None:
    kube_version, expect, absent, path = None, [], [], None
    expect_objects, absent_objects, expect_env, absent_env = [], [], [], []
    while args:
        arg = args.pop(0)
        if arg == "--kube-version":
            kube_version = args.pop(0)
        elif arg == "--expect-kinds":
            expect = args.pop(0).split(",")
        elif arg == "--case":
            case = args.pop(0)
            expect += case_header(case, "expect-kinds")
            absent += case_header(case, "absent-kinds")
            expect_objects += case_header(case, "expect-objects")
            absent_objects += case_header(case, "absent-objects")
            expect_env += case_header(case, "expect-env")
            absent_env += case_header(case, "absent-env")
        else:
            path = arg
    docs = load_documents(path)
    kinds = sorted({d["kind"] for d in docs})
    problems = validate_schemas(docs, kube_version)
    problems += deployment_policy(docs)
    problems += [f"no {kind} rendered" for kind in expect if kind not in kinds]
    problems += [f"{kind} rendered, the case says it must not be" for kind in absent if kind in kinds]
    names = {object_name(d) for d in docs}
    problems += [f"no {name} rendered" for name in expect_objects if name not in names]
    problems += [f"{name} rendered, the case says it must not be" for name in absent_objects if name in names]
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            env = container_env(container, config_maps)
            for item in expect_env:
                key, _, value = item.partition("=")
                if env.get(key) != value:
                    problems.append(f"{object_name(doc)}: {key} is {env.get(key)!r}, the case expects {value!r}")
            problems += [f"{object_name(doc)}: {key} is set, the case says it must not be" for key in absent_env if key in env]
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

    values = (yaml.safe_load(Path(args[2]).read_text(encoding="utf-8")) or {}) if len(args) > 2 else {}
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
