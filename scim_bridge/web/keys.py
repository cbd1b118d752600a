"""Typed keys: the application's collaborators (set up by `create_app`) and per-request values."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from scim_bridge.config import BridgeSettings
from scim_bridge.metrics import Metrics
from scim_bridge.provisioning.context import RequestContext
from scim_bridge.provisioning.service import Provisioner
from scim_bridge.sonarqube import SonarQubeConnection
from scim_bridge.store import StateStore
from scim_bridge.web.auth import Authenticator
from scim_bridge.web.proxy import ReverseProxy


@dataclass(slots=True)
class Serving:
    """Whether the bridge is winding down after SIGTERM (readiness fails at once then)."""

    draining: bool = False


SETTINGS = web.AppKey("settings", BridgeSettings)
PROVISIONER = web.AppKey("provisioner", Provisioner)
AUTHENTICATOR = web.AppKey[Authenticator]("authenticator")
PROXY = web.AppKey("proxy", ReverseProxy)
SONAR = web.AppKey("sonar", SonarQubeConnection)
STORE = web.AppKey[StateStore]("store")
METRICS = web.AppKey("metrics", Metrics)
SERVING = web.AppKey("serving", Serving)
ADMIN_OF = web.AppKey("admin_of", web.Application)  # on the admin application: the bridge it reports on

REQUEST_ID = web.RequestKey("request_id", str)
SCIM_CONTEXT = web.RequestKey("scim_context", RequestContext)
