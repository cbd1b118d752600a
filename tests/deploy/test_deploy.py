"""deploy/ agrees with the code: settings, ports, probe paths, command lines and grace periods are the code's.

Kubernetes manifests are checked against Kubernetes' own schemas; the sidecar of each Helm values file is
checked as a Pod. Facts come from the code (`BridgeSettings`, `_parser()`, `scim_bridge.web.admin`), never
from copies of them here. Not run here: a cluster, a container build, Helm itself (the chart is not
rendered); `systemd-analyze verify` runs where systemd is installed.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final, get_args

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from scim_bridge.cli import _parser
from scim_bridge.config import ENV_PREFIX, BridgeSettings, load_settings
from scim_bridge.web.admin import HEALTHZ, METRICS_PATH, READYZ

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    SettingsFrom = Callable[[Mapping[str, str]], BridgeSettings]

ROOT: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = ROOT / "deploy"
KUBERNETES: Final = DEPLOY / "kubernetes"
PLAIN: Final = KUBERNETES / "manifests"
COMPANION: Final = KUBERNETES / "helm-companion.yaml"
MANIFEST_FILES: Final = (*sorted(PLAIN.glob("*.yaml")), COMPANION)
HELM_VALUES: Final = tuple(sorted(KUBERNETES.glob("helm-values-*.yaml")))
SYSTEMD: Final = DEPLOY / "systemd"
UNIT: Final = SYSTEMD / "scim-bridge.service"
DROP_INS: Final = tuple(sorted((SYSTEMD / "scim-bridge.service.d").glob("*.conf")))
ENVIRONMENT_FILE: Final = SYSTEMD / "scim-bridge.env"
DOCKERFILE: Final = DEPLOY / "docker" / "Dockerfile"
DOCKERIGNORE: Final = ROOT / ".dockerignore"
DOCS: Final = (ROOT / "docs" / "deploy.md", KUBERNETES / "README.md")
NAMING_FILES: Final = (*sorted(DEPLOY.rglob("*.yaml")), UNIT, *DROP_INS, ENVIRONMENT_FILE, DOCKERFILE, *DOCS)

KUBERNETES_VERSIONS: Final = ("1.30.0", "1.35.0")  # an old release still met in the field, and a current one
BRIDGE: Final = "scim-bridge"  # the bridge's container in every pod
CONFIG_VARIABLE: Final = f"{ENV_PREFIX}CONFIG"  # names the TOML file (`--config`); the one non-setting twin
# After shutdown_grace the process still closes its store and exits: whatever stops it waits this much longer.
MARGIN_SECONDS: Final = 5.0
# The sonarqube chart does not template terminationGracePeriodSeconds (deprecated and unused since chart
# 10.8.0): its pod gets Kubernetes' default.
KUBERNETES_DEFAULT_GRACE: Final = 30
CHART_VOLUMES: Final = frozenset({"sonarqube", "tmp-dir"})  # volumes the chart's pod always has
CHART_SERVICE: Final = "sonarqube-sonarqube"  # the chart's own Service, for a release called "sonarqube"
OPERATOR_COMMANDS: Final = frozenset({"serve", "check", "audit"})
PROGRAM: Final = re.compile(r"(?:/?(?:[\w.-]+/)*bin/)?scim-bridge")
IMAGE: Final = re.compile(r"(?:[\w.-]+/)+scim-bridge:[\w.-]+")
NAMED_VARIABLE: Final = re.compile(rf"\b{ENV_PREFIX}[A-Z0-9_]+\b")
ASSIGNMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
SHELL_BLOCKS: Final = frozenset({"console", "sh", "bash", "shell"})
SHELL_OPERATORS: Final = frozenset({"|", "||", "&&", ";", ">", ">>", "<", "&"})
PROBES: Final = ("startupProbe", "livenessProbe", "readinessProbe")


# -- reading the files ----------------------------------------------------------------------------------


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def _manifests(*paths: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{_where(path)}#{index}", document)
        for path in paths or MANIFEST_FILES
        for index, document in enumerate(_documents(path))
    ]


def _of_kind(kind: str, *paths: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(name, document) for name, document in _manifests(*paths) if document["kind"] == kind]


def _values(path: Path) -> dict[str, Any]:
    (values,) = _documents(path)
    return values


@dataclass(frozen=True)
class Pod:
    """A pod running the bridge: the plain manifests' StatefulSet, or the chart's pod as a values file shapes
    it."""

    path: Path
    spec: dict[str, Any]
    labels: dict[str, str]
    annotations: dict[str, str]
    grace_seconds: int
    helm: bool

    @property
    def bridge(self) -> dict[str, Any]:
        (container,) = [container for container in self.spec["containers"] if container["name"] == BRIDGE]
        return dict(container)

    @property
    def environment(self) -> dict[str, str]:
        return {entry["name"]: entry["value"] for entry in self.bridge.get("env", []) if "value" in entry}


def _pods() -> list[Pod]:
    pods = []
    for path in sorted(PLAIN.glob("*.yaml")):
        for _, workload in (*_of_kind("StatefulSet", path), *_of_kind("Deployment", path)):
            template = workload["spec"]["template"]
            pods.append(
                Pod(
                    path=path,
                    spec=template["spec"],
                    labels=template["metadata"].get("labels", {}),
                    annotations=template["metadata"].get("annotations", {}),
                    grace_seconds=template["spec"].get(
                        "terminationGracePeriodSeconds", KUBERNETES_DEFAULT_GRACE
                    ),
                    helm=False,
                )
            )
    for path in HELM_VALUES:
        values = _values(path)
        pods.append(
            Pod(
                path=path,
                spec={"containers": values["extraContainers"], "volumes": values.get("extraVolumes", [])},
                labels={},
                annotations=values.get("annotations", {}),
                grace_seconds=KUBERNETES_DEFAULT_GRACE,
                helm=True,
            )
        )
    return pods


def _pod_parameters() -> list[Any]:
    return [pytest.param(pod, id=_where(pod.path)) for pod in _pods()]


def _commented_static_environment(path: Path) -> dict[str, str]:
    """The static-auth `env` entries a file offers as comments, as they read once uncommented."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(number for number, line in enumerate(lines) if "auth static instead" in line)
    start = next(number for number in range(start, len(lines)) if re.match(r"^\s*# - ", lines[number]))
    block: list[str] = []
    for line in lines[start:]:
        found = re.match(r"^(\s*)# ((?:- |  ).*)$", line)
        if found is None:
            break
        block.append(found.group(1) + found.group(2))
    entries: list[dict[str, str]] = yaml.safe_load("\n".join(block))
    return {entry["name"]: entry["value"] for entry in entries}


def _unit_settings(*paths: Path) -> dict[str, list[str]]:
    """Every `Key=value` of a unit and its drop-ins, in order."""
    settings: dict[str, list[str]] = {}
    for path in paths:
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if line and not line.startswith(("#", ";", "[")):
                key, _, value = line.partition("=")
                settings.setdefault(key, []).append(value)
    return settings


def _unit_environment(*paths: Path) -> dict[str, str]:
    """`Environment=` assignments, split and unquoted as systemd does."""
    environment: dict[str, str] = {}
    for value in _unit_settings(*paths).get("Environment", []):
        for assignment in shlex.split(value):
            name, _, setting = assignment.partition("=")
            environment[name] = setting
    return environment


def _environment_file(path: Path) -> dict[str, str]:
    """`EnvironmentFile=` as systemd reads it: quotes are removed as a shell would remove them."""
    environment: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            environment[name.strip()] = " ".join(shlex.split(value.strip()))
    return environment


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile()
    last = max(index for index, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last:]


def _instruction(keyword: str) -> list[str]:
    return [arguments for found, arguments in _final_stage() if found == keyword]


def _dockerfile_environment() -> dict[str, str]:
    environment: dict[str, str] = {}
    for arguments in _instruction("ENV"):
        for assignment in shlex.split(arguments):
            name, _, value = assignment.partition("=")
            environment[name] = value
    return environment


def _exec_form(keyword: str) -> list[str]:
    (arguments,) = _instruction(keyword)
    value: list[str] = json.loads(arguments)
    return value


def _exec_user() -> int:
    (user,) = _instruction("USER")
    return int(user.split(":")[0])


def _shell_lines() -> list[tuple[str, list[str]]]:
    """The documentation's lines in shell code blocks, continuations joined and prompts dropped."""
    found: list[tuple[str, list[str]]] = []
    for path in DOCS:
        in_block = in_shell = False
        pending = ""
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if raw.lstrip().startswith("```"):
                in_block = not in_block
                in_shell = in_block and raw.strip().removeprefix("```") in SHELL_BLOCKS
                continue
            line = raw.strip()
            if not in_shell:
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line = (pending + line).removeprefix("$ ")
            pending = ""
            if line and not line.startswith("#"):
                found.append((f"{_where(path)}:{number}", shlex.split(line, comments=True)))
    return found


def _until_operator(tokens: list[str]) -> list[str]:
    for index, token in enumerate(tokens):
        if token in SHELL_OPERATORS:
            return tokens[:index]
    return tokens


def _assignments(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """A shell line's leading `NAME=value` assignments, and the rest of the line."""
    count = next((index for index, token in enumerate(tokens) if not ASSIGNMENT.match(token)), len(tokens))
    return dict(token.split("=", 1) for token in tokens[:count]), tokens[count:]


def _bridge_arguments(line: list[str]) -> list[str] | None:
    """What a shell line passes to scim-bridge, or None when it does not run it. Recognised: scim-bridge as
    the line's program, after `--` (kubectl exec), as the program of `systemd-run` or `docker exec`, as the
    image of `docker run`."""
    _, tokens = _assignments(line)
    engine = tokens[:1] in (["docker"], ["podman"])
    if tokens and PROGRAM.fullmatch(tokens[0]):
        return _until_operator(tokens[1:])
    if tokens[:1] == ["systemd-run"]:
        programs = [index for index, token in enumerate(tokens) if index and not token.startswith("-")]
        program = programs[0] if programs and PROGRAM.fullmatch(tokens[programs[0]]) else None
        return None if program is None else _until_operator(tokens[program + 1 :])
    if "--" in tokens:
        after = tokens[tokens.index("--") + 1 :]
        return _until_operator(after[1:]) if after and PROGRAM.fullmatch(after[0]) else None
    if engine and tokens[1:2] == ["run"]:
        images = [index for index, token in enumerate(tokens) if IMAGE.fullmatch(token)]
        return _until_operator(tokens[images[0] + 1 :]) if images else None
    if engine and tokens[1:2] == ["exec"]:
        programs = [index for index, token in enumerate(tokens) if index >= 3 and PROGRAM.fullmatch(token)]
        return _until_operator(tokens[programs[0] + 1 :]) if programs else None
    return None


def _docker_runs() -> list[tuple[str, list[str]]]:
    return [
        (where, tokens)
        for where, tokens in _shell_lines()
        if tokens[:2] in (["docker", "run"], ["podman", "run"]) and _bridge_arguments(tokens) is not None
    ]


def _line_environment(tokens: list[str]) -> dict[str, str]:
    """The SCIM_BRIDGE_* variables a documented command line sets (`docker run` adds the image's own)."""
    leading, rest = _assignments(tokens)
    pairs = itertools.pairwise(rest)
    given = dict(value.split("=", 1) for flag, value in pairs if flag in {"-e", "--env"} and "=" in value)
    image = _dockerfile_environment() if rest[:2] in (["docker", "run"], ["podman", "run"]) else {}
    return {name: value for name, value in (image | leading | given).items() if name.startswith(ENV_PREFIX)}


# -- what the code says ---------------------------------------------------------------------------------


def _twin(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def _takes_paths(annotation: Any) -> bool:
    return annotation is Path or any(_takes_paths(argument) for argument in get_args(annotation))


def _path_variables() -> set[str]:
    return {
        _twin(name) for name, info in BridgeSettings.model_fields.items() if _takes_paths(info.annotation)
    }


def _default(name: str) -> Any:
    return BridgeSettings.model_fields[name].get_default(call_default_factory=True)


@pytest.fixture
def settings_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SettingsFrom:
    """Load `BridgeSettings` from exactly the given SCIM_BRIDGE_* variables. The files that path settings name
    (tokens, certificates) do not exist here: each is replaced by one that does."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)

    def stand_in(name: str, index: int) -> str:
        path = tmp_path / f"{name.lower()}-{index}"
        path.write_text("stand-in\n", encoding="utf-8")
        return str(path)

    def load(environment: Mapping[str, str]) -> BridgeSettings:
        for name, value in environment.items():
            if not name.startswith(ENV_PREFIX):
                continue  # the image's PYTHON* and PIP_* variables
            given = value
            if name in _path_variables():
                many = value.startswith("[")
                stand_ins = [stand_in(name, index) for index in range(len(json.loads(value)) if many else 1)]
                given = json.dumps(stand_ins) if many else stand_ins[0]
            monkeypatch.setenv(name, given)
        return load_settings(BridgeSettings)

    return load


def _environment_sources() -> list[Any]:
    """Every complete environment the files give the bridge."""
    sources = [pytest.param(pod.environment, id=_where(pod.path)) for pod in _pods()]
    sources += [
        pytest.param(
            pod.environment | _commented_static_environment(pod.path), id=f"{_where(pod.path)}+static"
        )
        for pod in _pods()
    ]
    unit, environment_file = _unit_environment(UNIT), _environment_file(ENVIRONMENT_FILE)
    sources.append(pytest.param(unit | environment_file, id="systemd"))
    sources += [
        pytest.param(unit | _unit_environment(drop_in) | environment_file, id=f"systemd+{drop_in.name}")
        for drop_in in DROP_INS
    ]
    sources.append(pytest.param(_dockerfile_environment(), id="Dockerfile"))
    sources += [
        pytest.param(_line_environment(tokens), id=where)
        for where, tokens in _shell_lines()
        if _bridge_arguments(tokens) is not None and _line_environment(tokens)
    ]
    return sources


# -- YAML and Kubernetes' schemas -----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=_where)
def test_yaml_files_load(path: Path) -> None:
    """Every YAML file under deploy/ parses into mappings."""
    documents = _documents(path)
    assert documents
    assert all(isinstance(document, dict) for document in documents)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("name", "manifest"), [pytest.param(*item, id=item[0]) for item in _manifests()])
def test_manifests_match_kubernetes_schemas(name: str, manifest: dict[str, Any], version: str) -> None:
    """Every Kubernetes manifest is valid for Kubernetes' schemas, unknown fields refused."""
    kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", HELM_VALUES, ids=_where)
def test_helm_sidecar_is_a_valid_pod(path: Path, version: str) -> None:
    """The containers and volumes a values file adds to the chart's pod form a valid Pod."""
    values = _values(path)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sonarqube-sonarqube-0", "annotations": values["annotations"]},
        "spec": {"containers": values["extraContainers"], "volumes": values["extraVolumes"]},
    }
    kubernetes_validate.validate(pod, version, strict=True)


@pytest.mark.parametrize("pod", _pod_parameters())
def test_volume_mounts_name_pod_volumes(pod: Pod) -> None:
    """Every volume a container mounts is one of the pod's volumes (or, in the chart, one of the chart's)."""
    volumes = {volume["name"] for volume in pod.spec["volumes"]} | (CHART_VOLUMES if pod.helm else set())
    mounted = {
        mount["name"] for container in pod.spec["containers"] for mount in container.get("volumeMounts", [])
    }
    assert mounted <= volumes


# -- settings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NAMING_FILES, ids=_where)
def test_environment_variables_are_settings(path: Path) -> None:
    """Every SCIM_BRIDGE_* name in a deploy file or its documentation twins a BridgeSettings field."""
    named = set(NAMED_VARIABLE.findall(path.read_text(encoding="utf-8")))
    twins = {_twin(name) for name in BridgeSettings.model_fields}
    assert named - twins - {CONFIG_VARIABLE} == set()


@pytest.mark.parametrize("environment", _environment_sources())
def test_environment_values_are_accepted(environment: dict[str, str], settings_from: SettingsFrom) -> None:
    """Each environment the files give the bridge loads as BridgeSettings (JSON lists included)."""
    assert environment
    settings_from(environment)


@pytest.mark.parametrize("pod", _pod_parameters())
def test_bridge_sets_its_port_explicitly(pod: Pod) -> None:
    """Each bridge container sets SCIM_BRIDGE_PORT itself, so that a Service link variable of that name (from
    a Service called scim-bridge anywhere in the namespace) cannot stand in for it."""
    assert _twin("port") in pod.environment


@pytest.mark.parametrize(
    ("name", "service"), [pytest.param(*item, id=item[0]) for item in _of_kind("Service")]
)
def test_service_names_leave_settings_alone(name: str, service: dict[str, Any]) -> None:
    """No Service is named so that Kubernetes' <SERVICE>_PORT variables would begin with SCIM_BRIDGE_."""
    link_prefix = service["metadata"]["name"].upper().replace("-", "_") + "_"
    assert not link_prefix.startswith(ENV_PREFIX), name


# -- ports, probes, volumes -----------------------------------------------------------------------------


def _resolve(port: int | str, container: Mapping[str, Any]) -> int:
    if isinstance(port, int):
        return port
    (number,) = [entry["containerPort"] for entry in container.get("ports", []) if entry["name"] == port]
    return int(number)


@pytest.mark.parametrize("pod", _pod_parameters())
def test_bridge_ports_are_its_settings(pod: Pod, settings_from: SettingsFrom) -> None:
    """The bridge container declares exactly its port and admin_port, as its environment makes them."""
    settings = settings_from(pod.environment)
    assert {entry["containerPort"] for entry in pod.bridge["ports"]} == {settings.port, settings.admin_port}


@pytest.mark.parametrize("probe", PROBES)
@pytest.mark.parametrize("pod", _pod_parameters())
def test_probes_ask_the_admin_listener(pod: Pod, probe: str, settings_from: SettingsFrom) -> None:
    """Every probe of the bridge asks its admin port for /healthz or /readyz; startup and liveness ask only
    /healthz, so that SonarQube being down never restarts the bridge."""
    settings = settings_from(pod.environment)
    request = pod.bridge[probe]["httpGet"]
    assert _resolve(request["port"], pod.bridge) == settings.admin_port
    assert request["path"] in ({HEALTHZ, READYZ} if probe == "readinessProbe" else {HEALTHZ})


@pytest.mark.parametrize("pod", _pod_parameters())
def test_metrics_annotations_name_the_admin_listener(pod: Pod, settings_from: SettingsFrom) -> None:
    """The pod's Prometheus annotations name the admin port and the metrics path."""
    settings = settings_from(pod.environment)
    assert pod.annotations["prometheus.io/scrape"] == "true"
    assert int(pod.annotations["prometheus.io/port"]) == settings.admin_port
    assert pod.annotations["prometheus.io/path"] == METRICS_PATH


@pytest.mark.parametrize("pod", _pod_parameters())
def test_store_lives_on_its_volume_claim(pod: Pod, settings_from: SettingsFrom) -> None:
    """The SQLite file is on a volume claim mounted into the bridge, not in the container's file system."""
    database = PurePosixPath(settings_from(pod.environment).store.removeprefix("sqlite:///"))
    claims = {volume["name"] for volume in pod.spec["volumes"] if "persistentVolumeClaim" in volume}
    mounts = [mount["mountPath"] for mount in pod.bridge["volumeMounts"] if mount["name"] in claims]
    assert any(database.is_relative_to(mount) for mount in mounts)


@pytest.mark.parametrize("pod", _pod_parameters())
def test_bridge_runs_locked_down(pod: Pod) -> None:
    """The bridge runs as the image's non-root user, on a read-only root file system, without privileges, with
    resource requests."""
    context = pod.bridge["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == _exec_user()
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert pod.bridge["resources"]["requests"]


def test_plain_services_select_the_pod_and_its_ports() -> None:
    """The plain manifests' Services select the StatefulSet's pod and target ports its containers declare."""
    (pod,) = [pod for pod in _pods() if not pod.helm]
    declared = {entry["name"] for container in pod.spec["containers"] for entry in container.get("ports", [])}
    services = _of_kind("Service", *PLAIN.glob("*.yaml"))
    assert services
    for name, service in services:
        assert service["spec"]["selector"].items() <= pod.labels.items(), name
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= declared, name


@pytest.mark.parametrize("path", HELM_VALUES, ids=_where)
def test_helm_companion_service_targets_the_sidecar(path: Path) -> None:
    """The Service in front of the chart's pod targets a port that the values file's sidecar declares."""
    (pod,) = [pod for pod in _pods() if pod.path == path]
    declared = {entry["name"] for entry in pod.bridge["ports"]}
    ((_, service),) = _of_kind("Service", COMPANION)
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= declared


def _backends() -> list[Any]:
    """(Service name, Service port) of every Ingress path and HTTPRoute backend the files define."""
    backends: list[Any] = []
    for name, ingress in _of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                service = path["backend"]["service"]
                port = service["port"].get("number", service["port"].get("name"))
                backends.append(pytest.param(service["name"], port, id=f"{name}:{path['path']}"))
    for values_path in HELM_VALUES:
        values = _values(values_path)
        backends += [
            pytest.param(
                host["serviceName"], host["servicePort"], id=f"{values_path.name}:ingress:{host['path']}"
            )
            for host in values["ingress"]["hosts"]
            if "serviceName" in host
        ]
        backends += [
            pytest.param(
                reference["name"], reference["port"], id=f"{values_path.name}:httproute:{reference['name']}"
            )
            for rule in values["httproute"]["rules"]
            for reference in rule["backendRefs"]
            if reference["name"] != CHART_SERVICE  # the chart's own, on its service.externalPort
        ]
    return backends


@pytest.mark.parametrize(("service", "port"), _backends())
def test_routes_name_defined_services_and_ports(service: str, port: int | str) -> None:
    """Every ingress or HTTPRoute backend is a Service the deploy files define, on a port it has."""
    services = {document["metadata"]["name"]: document for _, document in _of_kind("Service")}
    ports = services[service]["spec"]["ports"]
    assert port in {entry["port"] for entry in ports} | {entry["name"] for entry in ports}


@pytest.mark.parametrize(
    ("name", "workload"), [pytest.param(*item, id=item[0]) for item in _of_kind("StatefulSet")]
)
def test_one_replica_per_store(name: str, workload: dict[str, Any]) -> None:
    """One replica: a SQLite store allows one bridge process."""
    assert workload["spec"]["replicas"] == 1, name


@pytest.mark.parametrize(("name", "secret"), [pytest.param(*item, id=item[0]) for item in _of_kind("Secret")])
def test_secrets_hold_marked_examples_only(name: str, secret: dict[str, Any]) -> None:
    """Every value of an example Secret is marked EXAMPLE, so that none passes for a real one."""
    assert secret["stringData"], name
    assert all(value.startswith("EXAMPLE") for value in secret["stringData"].values()), name


# -- grace periods --------------------------------------------------------------------------------------


@pytest.mark.parametrize("pod", _pod_parameters())
def test_pod_grace_covers_the_drain(pod: Pod, settings_from: SettingsFrom) -> None:
    """The pod's termination grace period leaves the bridge its shutdown_grace and a margin."""
    assert pod.grace_seconds >= settings_from(pod.environment).shutdown_grace + MARGIN_SECONDS


@pytest.mark.parametrize("path", HELM_VALUES, ids=_where)
def test_helm_values_leave_out_the_ignored_grace(path: Path) -> None:
    """The values files do not set terminationGracePeriodSeconds, which the chart ignores."""
    assert "terminationGracePeriodSeconds" not in _values(path)


def test_systemd_waits_for_the_drain(settings_from: SettingsFrom) -> None:
    """systemd's stop timeout leaves the bridge its shutdown_grace and a margin."""
    settings = settings_from(_unit_environment(UNIT) | _environment_file(ENVIRONMENT_FILE))
    (timeout,) = _unit_settings(UNIT)["TimeoutStopSec"]
    assert float(timeout.removesuffix("s")) >= settings.shutdown_grace + MARGIN_SECONDS


def test_docker_stop_timeout_covers_the_drain(settings_from: SettingsFrom) -> None:
    """Every `docker run` of the documentation gives `docker stop` time for shutdown_grace and a margin."""
    assert _docker_runs()
    for where, tokens in _docker_runs():
        settings = settings_from(_line_environment(tokens))
        assert "--stop-timeout" in tokens, where
        timeout = float(tokens[tokens.index("--stop-timeout") + 1])
        assert timeout >= settings.shutdown_grace + MARGIN_SECONDS, where


# -- command lines --------------------------------------------------------------------------------------


def _documented_commands() -> list[tuple[str, list[str]]]:
    image = [*_exec_form("ENTRYPOINT")[1:], *_exec_form("CMD")]
    commands = []
    for where, tokens in _shell_lines():
        argv = _bridge_arguments(tokens)
        if argv is not None:
            commands.append((where, argv or image))
    return commands


def _command_lines() -> list[Any]:
    """Every scim-bridge command line of the deploy files and their documentation, as argv after the
    program (a container without `command` runs the image's ENTRYPOINT, without `args` its CMD)."""
    lines = [pytest.param([*_exec_form("ENTRYPOINT")[1:], *_exec_form("CMD")], id="Dockerfile")]
    for pod in _pods():
        command = pod.bridge.get("command", _exec_form("ENTRYPOINT"))
        lines.append(
            pytest.param([*command[1:], *pod.bridge.get("args", _exec_form("CMD"))], id=_where(pod.path))
        )
    for path in (UNIT, *DROP_INS):
        for value in _unit_settings(path).get("ExecStart", []):
            program, *argv = shlex.split(value.lstrip("-@:+!"))
            if PROGRAM.fullmatch(program):
                lines.append(pytest.param(argv, id=f"{path.name}:ExecStart"))
    lines += [pytest.param(argv, id=where) for where, argv in _documented_commands()]
    return lines


@pytest.mark.parametrize("argv", _command_lines())
def test_command_lines_parse(argv: list[str]) -> None:
    """Every scim-bridge command line in the files is one the program's parser accepts."""
    try:
        parsed = _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`scim-bridge {shlex.join(argv)}` does not parse")
    assert parsed.command


def test_documentation_shows_the_operator_commands() -> None:
    """The documentation runs serve, check and audit, so that the flags it shows for them are checked."""
    assert {word for _, argv in _documented_commands() for word in argv} >= OPERATOR_COMMANDS


def test_image_runs_the_console_script() -> None:
    """The image's entry point is the console script that pyproject.toml installs."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (program,) = _exec_form("ENTRYPOINT")
    assert re.search(rf'^{program} = "scim_bridge\.cli:main"$', pyproject, re.MULTILINE)


# -- the Dockerfile -------------------------------------------------------------------------------------


def test_image_listens_outside_on_the_ports_it_exposes(settings_from: SettingsFrom) -> None:
    """Inside the container both listeners take connections from outside, on the ports the image exposes."""
    settings = settings_from(_dockerfile_environment())
    exposed = {int(port.split("/")[0]) for arguments in _instruction("EXPOSE") for port in arguments.split()}
    assert exposed == {settings.port, settings.admin_port}
    assert ipaddress.ip_address(settings.host).is_unspecified
    assert ipaddress.ip_address(settings.admin_host).is_unspecified


def test_image_keeps_the_store_in_its_volume(settings_from: SettingsFrom) -> None:
    """The store file lies in a declared volume whose directory the image's user owns."""
    database = PurePosixPath(settings_from(_dockerfile_environment()).store.removeprefix("sqlite:///"))
    (volumes,) = [json.loads(arguments) for arguments in _instruction("VOLUME")]
    assert any(database.is_relative_to(volume) for volume in volumes)
    assert f"install -d -o {_exec_user()} -g 0 -m 0770 {database.parent}" in " ".join(_instruction("RUN"))


def test_image_user_is_numeric_and_not_root() -> None:
    """The image's user is numeric (so Kubernetes' runAsNonRoot can check it) and not root."""
    assert _exec_user() > 0


def test_final_stage_has_no_build_tools() -> None:
    """The final stage installs the builder's wheels into a slim image, with no index and no compiler."""
    stages = [arguments for keyword, arguments in _dockerfile() if keyword == "FROM"]
    assert len(stages) >= 2
    assert "slim" in stages[-1]
    run = " ".join(_instruction("RUN"))
    assert "--no-index" in run
    assert not re.search(r"apt-get|apk |gcc|build-essential|\bmake\b", run)


def _healthcheck_code() -> str:
    (arguments,) = _instruction("HEALTHCHECK")
    command: list[str] = json.loads(arguments[arguments.index("CMD") + len("CMD") :])
    assert command[:2] == ["python", "-c"]
    return command[2]


class _AdminListener(BaseHTTPRequestHandler):
    """Answers `status` on /healthz and 404 elsewhere."""

    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == HEALTHZ else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        """Quiet."""


@pytest.fixture
def admin_listener() -> Iterator[ThreadingHTTPServer]:
    """A throw-away admin listener on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AdminListener)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)], ids=["serving", "failing"])
def test_healthcheck_asks_healthz_on_the_admin_port(
    admin_listener: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch, status: int, healthy: bool
) -> None:
    """The image's HEALTHCHECK command succeeds exactly when /healthz on the admin port answers 200."""
    monkeypatch.setattr(_AdminListener, "status", status)
    environment = {name: value for name, value in os.environ.items() if "proxy" not in name.lower()}
    environment[_twin("admin_port")] = str(admin_listener.server_address[1])
    done = subprocess.run(  # noqa: S603 - the Dockerfile's own command, run by this interpreter
        [sys.executable, "-c", _healthcheck_code()],
        env=environment,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode == 0) is healthy, done.stderr.decode()


def test_healthcheck_falls_back_to_the_default_admin_port() -> None:
    """Without SCIM_BRIDGE_ADMIN_PORT the HEALTHCHECK asks admin_port's default."""
    assert f'"{_twin("admin_port")}", "{_default("admin_port")}"' in _healthcheck_code()


def _sent_to_docker() -> Callable[[str], bool]:
    """Whether .dockerignore lets a path into the build context, by Docker's rules closely enough for these
    paths: the last matching pattern wins, `!` lets back in, a pattern matching a directory matches its
    contents."""
    rules: list[tuple[re.Pattern[str], bool]] = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            pattern = line.removeprefix("!").strip("/")
            pieces = re.findall(r"\*\*/|\*\*|\*|\?|[^*?]+", pattern)
            wildcards = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
            regex = "".join(wildcards.get(piece, re.escape(piece)) for piece in pieces)
            rules.append((re.compile(regex), line.startswith("!")))

    def sent(path: str) -> bool:
        parts = PurePosixPath(path).parts
        candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        verdict = True
        for pattern, lets_in in rules:
            if any(pattern.fullmatch(candidate) for candidate in candidates):
                verdict = lets_in
        return verdict

    return sent


def test_build_context_holds_what_the_build_needs() -> None:
    """.dockerignore lets in the package's sources and metadata that the wheel needs, and nothing else."""
    sent = _sent_to_docker()
    copied = [
        source
        for keyword, arguments in _dockerfile()
        if keyword == "COPY" and "--from" not in arguments
        for source in arguments.split()[:-1]
    ]
    package = [
        _where(path)
        for path in (ROOT / "scim_bridge").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    assert copied
    assert all((ROOT / source).exists() and sent(source) for source in copied)
    assert all(sent(path) for path in package)
    unwanted = (
        ".git/HEAD",
        ".venv/bin/python",
        "tests/conftest.py",
        "state/scim-bridge.db",
        "deploy/docker/Dockerfile",
    )
    assert not any(sent(path) for path in unwanted)
    assert not sent("scim_bridge/__pycache__/cli.cpython-311.pyc")


# -- systemd --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [UNIT, *DROP_INS], ids=lambda path: path.name)
def test_credentials_come_through_load_credential(path: Path) -> None:
    """Every %d/<credential> a unit file gives the bridge is loaded by LoadCredential= in that file."""
    unit = _unit_settings(path)
    loaded = {value.split(":", 1)[0] for value in unit.get("LoadCredential", [])}
    referenced = set(re.findall(r"%d/([\w.-]+)", " ".join(unit.get("Environment", []))))
    assert referenced <= loaded


def test_environment_file_holds_no_secret() -> None:
    """The environment file carries no token, nor the auth mode that the static drop-in sets."""
    secrets = {
        _twin(name) for name in ("sonar_token", "sonar_token_file", "scim_tokens", "scim_token_files", "auth")
    }
    assert _environment_file(ENVIRONMENT_FILE).keys() & secrets == set()


def test_environment_file_restates_the_unit() -> None:
    """The environment file sets every setting the unit sets, to the same value, so that a command given only
    the file (`scim-bridge check` through systemd-run) sees what the service sees."""
    unit, environment_file = _unit_environment(UNIT), _environment_file(ENVIRONMENT_FILE)
    assert {name: environment_file.get(name) for name in unit} == unit


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` has nothing to say about the unit and its drop-ins."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip(
            "systemd-analyze is not installed: `apt-get install systemd` to verify deploy/systemd here"
        )
    # verify insists that ExecStart='s program exists: a stand-in takes the venv's place, nothing else does.
    stand_in = tmp_path / "scim-bridge"
    stand_in.write_text("#!/bin/sh\n", encoding="utf-8")
    stand_in.chmod(0o755)
    (exec_start,) = _unit_settings(UNIT)["ExecStart"]
    program = shlex.split(exec_start)[0]
    assert PROGRAM.fullmatch(program)
    unit = UNIT.read_text(encoding="utf-8").replace(f"ExecStart={program}", f"ExecStart={stand_in}")
    (tmp_path / UNIT.name).write_text(unit, encoding="utf-8")
    (tmp_path / f"{UNIT.name}.d").mkdir()
    for drop_in in DROP_INS:
        shutil.copy(drop_in, tmp_path / f"{UNIT.name}.d" / drop_in.name)
    done = subprocess.run(  # noqa: S603 - a fixed program on this repository's files
        [analyze, "verify", "--man=no", str(tmp_path / UNIT.name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
