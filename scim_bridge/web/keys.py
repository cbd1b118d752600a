"""Typed keys: the application's collaborators (set up by `create_app`) and per-request values."""

from __future__ import annotations

from aiohttp import web

from scim_bridge.config import BridgeSettings
from scim_bridge.provisioning.context import RequestContext
from scim_bridge.provisioning.service import Provisioner
from scim_bridge.web.auth import Authenticator
from scim_bridge.web.proxy import ReverseProxy

SETTINGS = web.AppKey("settings", BridgeSettings)
PROVISIONER = web.AppKey("provisioner", Provisioner)
AUTHENTICATOR = web.AppKey[Authenticator]("authenticator")
PROXY = web.AppKey("proxy", ReverseProxy)

REQUEST_ID = web.RequestKey("request_id", str)
SCIM_CONTEXT = web.RequestKey("scim_context", RequestContext)
