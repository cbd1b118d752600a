"""Every endpoint the emulator serves matches SonarQube's own API definition of the version it emulates.

The definitions are SonarQube's `api/webservices/list` (v1) and `/api/v2/api-docs` (v2) output, kept in
`tests/data/sonarqube-api/` (see the README there). Profiles map to them as follows:

- "9.9": the 9.9.8 LTS web services (v1 only).
- "10.8": no 10.x definition is available; the nearest one, 2025.6, stands in for it, exactly as for
  "2025.6" below (v1 and v2).
- "2025.6": the 2025.6 OpenAPI document. Its v2 part is used as is. Its v1 part gives the endpoints,
  methods, parameter names and required flags, but it renders every parameter as a bare string, without
  length limits, value limits, possible values or defaults, and it leaves out internal actions such as
  `api/users/current`. Those details, and those actions, come from the Community Build 25.12 web services,
  whose names and required flags are identical to the 2025.6 rendering.
- "26.7": the Community Build 26.7 web services (v1) and api-docs (v2).

A minimum length of 0 (the 26.x api-docs declare it on some fields) means no minimum and is compared as
none. Defaults are compared only where both sides declare one. v2 path parameters and headers are not
parameters in the emulator's sense: `params` holds query parameters, `body` the JSON body fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from scim_bridge.emulator import PROFILES, EndpointSpec, ParamSpec, endpoint_specs

DATA = Path(__file__).parent.parent / "data" / "sonarqube-api"

# Parameters SonarQube declares that the emulator may deliberately leave out, as (profile, path, parameter),
# each with a comment giving the reason. Empty: the emulator models every parameter of every endpoint it
# serves, down to 9.9's deprecated group `id` and the internal v2 filters (`groupId`, `userId`).
ALLOWED_OMISSIONS: frozenset[tuple[str, str, str]] = frozenset()

# Endpoints scim-bridge calls, on every profile.
RELIED_ON_V1: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "api/server/version"),
        ("GET", "api/system/status"),
        ("GET", "api/authentication/validate"),
        ("POST", "api/users/create"),
        ("POST", "api/users/update"),
        ("POST", "api/users/deactivate"),
        ("POST", "api/users/anonymize"),
        ("POST", "api/users/update_login"),
        ("POST", "api/users/update_identity_provider"),
        ("GET", "api/users/search"),
        ("GET", "api/users/groups"),
        ("GET", "api/users/current"),
        ("POST", "api/user_groups/create"),
        ("POST", "api/user_groups/update"),
        ("POST", "api/user_groups/delete"),
        ("POST", "api/user_groups/add_user"),
        ("POST", "api/user_groups/remove_user"),
        ("GET", "api/user_groups/search"),
        ("GET", "api/user_groups/users"),
        ("POST", "api/user_tokens/generate"),
    }
)

# The v2 endpoints scim-bridge calls on 10.8 and later.
RELIED_ON_V2: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v2/users-management/users"),
        ("POST", "/api/v2/users-management/users"),
        ("GET", "/api/v2/users-management/users/{id}"),
        ("PATCH", "/api/v2/users-management/users/{id}"),
        ("DELETE", "/api/v2/users-management/users/{id}"),
        ("GET", "/api/v2/authorizations/groups"),
        ("POST", "/api/v2/authorizations/groups"),
        ("GET", "/api/v2/authorizations/groups/{id}"),
        ("PATCH", "/api/v2/authorizations/groups/{id}"),
        ("DELETE", "/api/v2/authorizations/groups/{id}"),
        ("GET", "/api/v2/authorizations/group-memberships"),
        ("POST", "/api/v2/authorizations/group-memberships"),
        ("DELETE", "/api/v2/authorizations/group-memberships/{id}"),
    }
)
V2_PROFILES = frozenset({"10.8", "2025.6", "26.7"})


@dataclass(frozen=True)
class Declared:
    """One endpoint as a definition declares it: query (v1: all) parameters and JSON body fields by name."""

    params: Mapping[str, ParamSpec]
    body: Mapping[str, ParamSpec]


# Endpoints keyed by (HTTP method, path as the emulator writes it).
Definitions = Mapping[tuple[str, str], Declared]


@cache
def load(name: str) -> dict[str, Any]:
    """One definition file, parsed once per test session."""
    document: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return document


def webservices(name: str) -> dict[tuple[str, str], Declared]:
    """The v1 endpoints of an `api/webservices/list` output; a non-POST action is a GET."""
    return {
        ("POST" if action["post"] else "GET", f"{service['path']}/{action['key']}"): Declared(
            params={
                param["key"]: ParamSpec(
                    name=param["key"],
                    required=param["required"],
                    max_length=param.get("maximumLength"),
                    min_length=param.get("minimumLength"),
                    max_value=param.get("maximumValue"),
                    possible_values=tuple(param["possibleValues"]) if "possibleValues" in param else None,
                    default=param.get("defaultValue"),
                )
                for param in action.get("params", [])
            },
            body={},
        )
        for service in load(name)["webServices"]
        for action in service["actions"]
    }


def openapi_default(value: object) -> str | None:
    """An OpenAPI default as the string a client would send (`true`, `50`)."""
    if value is None:
        return None
    return json.dumps(value) if isinstance(value, bool) else str(value)


def openapi_param(name: str, schema: Mapping[str, Any], *, required: bool) -> ParamSpec:
    """A query parameter or body field from its OpenAPI schema (the files declare no `enum`)."""
    return ParamSpec(
        name=name,
        required=required,
        max_length=schema.get("maxLength"),
        min_length=schema.get("minLength"),
        max_value=schema.get("maximum"),
        default=openapi_default(schema.get("default")),
    )


def openapi_body(document: Mapping[str, Any], operation: Mapping[str, Any]) -> dict[str, ParamSpec]:
    """The JSON body fields of an operation, from the component schema its request body refers to."""
    if "requestBody" not in operation:
        return {}
    (content,) = operation["requestBody"]["content"].values()
    schema = document["components"]["schemas"][content["schema"]["$ref"].rsplit("/", 1)[1]]
    required = set(schema.get("required", []))
    return {
        name: openapi_param(name, field, required=name in required)
        for name, field in schema["properties"].items()
    }


def openapi(name: str, *, under: str, mounted_at: str) -> dict[tuple[str, str], Declared]:
    """The operations of an OpenAPI document whose paths start with `under`, re-rooted at `mounted_at`."""
    document = load(name)
    return {
        (method.upper(), mounted_at + path.removeprefix(under)): Declared(
            params={
                param["name"]: openapi_param(param["name"], param["schema"], required=param["required"])
                for param in operation.get("parameters", [])
                if param["in"] == "query"
            },
            body=openapi_body(document, operation),
        )
        for path, item in document["paths"].items()
        if path.startswith(under)
        for method, operation in item.items()
        if method in {"get", "post", "patch", "delete"}
    }


def v1_with_limits(rendered: Definitions, limits: Definitions) -> dict[tuple[str, str], Declared]:
    """v1 endpoints whose names and required flags come from `rendered`, everything else from `limits`.

    Actions `rendered` leaves out are taken from `limits` whole.
    """
    merged = dict(limits)
    for key, endpoint in rendered.items():
        known = limits[key].params
        merged[key] = Declared(
            params={
                name: replace(known[name], required=param.required) for name, param in endpoint.params.items()
            },
            body={},
        )
    return merged


@cache
def definitions(profile: str) -> Definitions:
    """Every endpoint SonarQube declares in the version that `profile` emulates (see the module docstring)."""
    match profile:
        case "9.9":
            return webservices("sonarqube-9.9.8-webservices.json")
        case "10.8" | "2025.6":
            document = "sonarqube-2025.6-openapi.json"
            v1 = v1_with_limits(
                openapi(document, under="/api/", mounted_at="api/"),
                webservices("sonarqube-cb-25.12-webservices.json"),
            )
            return v1 | openapi(document, under="/v2/", mounted_at="/api/v2/")
        case "26.7":
            v1 = webservices("sonarqube-cb-26.7-webservices.json")
            return v1 | openapi("sonarqube-cb-26.7-api-v2.json", under="/", mounted_at="/api/v2/")
    raise ValueError(f"no definitions for profile {profile!r}")


def constraints(params: Iterable[ParamSpec], other: Mapping[str, ParamSpec]) -> dict[str, object]:
    """What each parameter also present in `other` declares, as `{"name.facet": value}`.

    Possible values become a set, a minimum length of 0 becomes none, and the default is included only
    where the same parameter in `other` declares one as well.
    """
    facets: dict[str, object] = {}
    for param in params:
        if param.name not in other:
            continue
        facets[f"{param.name}.required"] = param.required
        facets[f"{param.name}.max_length"] = param.max_length
        facets[f"{param.name}.min_length"] = param.min_length or None
        facets[f"{param.name}.max_value"] = param.max_value
        facets[f"{param.name}.possible_values"] = (
            None if param.possible_values is None else set(param.possible_values)
        )
        if param.default is not None and other[param.name].default is not None:
            facets[f"{param.name}.default"] = param.default
    return facets


def served(api: str | None = None) -> list[tuple[str, EndpointSpec]]:
    """Every (profile, endpoint) the emulator serves, optionally only those of one API."""
    return [
        (profile, spec)
        for profile in PROFILES
        for spec in endpoint_specs(profile)
        if api is None or spec.api == api
    ]


def endpoint_cases(api: str | None = None) -> list[Any]:
    """`served()` as parameter sets named after the profile, method and path."""
    return [
        pytest.param(profile, spec, id=f"{profile}-{spec.method}-{spec.path}")
        for profile, spec in served(api)
    ]


def declared(profile: str, spec: EndpointSpec) -> Declared:
    """The definition of the endpoint `spec` describes; fails the test when SonarQube has none."""
    endpoint = definitions(profile).get((spec.method, spec.path))
    if endpoint is None:
        pytest.fail(f"SonarQube {profile} declares no {spec.method} {spec.path}")
    return endpoint


@pytest.mark.parametrize(("profile", "spec"), endpoint_cases())
def test_endpoint_is_declared_with_its_method(profile: str, spec: EndpointSpec) -> None:
    """SonarQube declares the endpoint with this HTTP method (v1: POST exactly when the action is POST)."""
    methods = sorted(method for method, path in definitions(profile) if path == spec.path)
    assert spec.method in methods, f"SonarQube {profile} declares {spec.path} with methods {methods}"


@pytest.mark.parametrize(("profile", "spec"), endpoint_cases())
def test_parameter_names_match(profile: str, spec: EndpointSpec) -> None:
    """The emulator declares exactly SonarQube's parameters, less only allowed omissions."""
    expected = set(declared(profile, spec).params)
    actual = {param.name for param in spec.params}
    allowed = {name for p, path, name in ALLOWED_OMISSIONS if (p, path) == (profile, spec.path)}
    assert {"not in SonarQube": actual - expected, "left out": expected - actual - allowed} == {
        "not in SonarQube": set(),
        "left out": set(),
    }


@pytest.mark.parametrize(("profile", "spec"), endpoint_cases())
def test_parameter_constraints_match(profile: str, spec: EndpointSpec) -> None:
    """Shared parameters agree on required, lengths, maximum value, possible values and default."""
    expected = declared(profile, spec).params
    actual = {param.name: param for param in spec.params}
    assert constraints(actual.values(), expected) == constraints(expected.values(), actual)


@pytest.mark.parametrize(("profile", "spec"), endpoint_cases("v2"))
def test_body_fields_match(profile: str, spec: EndpointSpec) -> None:
    """The v2 JSON body has SonarQube's fields, with the same required flags, lengths and defaults."""
    expected = declared(profile, spec).body
    actual = {field.name: field for field in spec.body}
    assert {"not in SonarQube": set(actual) - set(expected), "left out": set(expected) - set(actual)} == {
        "not in SonarQube": set(),
        "left out": set(),
    }
    assert constraints(actual.values(), expected) == constraints(expected.values(), actual)


@pytest.mark.parametrize("profile", list(PROFILES))
def test_serves_what_scim_bridge_relies_on(profile: str) -> None:
    """The emulator serves every endpoint scim-bridge calls, v2 ones from 10.8 on."""
    needed = RELIED_ON_V1 | (RELIED_ON_V2 if profile in V2_PROFILES else frozenset())
    assert needed - {(spec.method, spec.path) for spec in endpoint_specs(profile)} == set()
