"""The HTTP surface: SCIM 2.0 routes at the configured base path, authentication, error rendering, the
reverse proxy and the admin listener.

keys        the typed application and request keys the handlers read their collaborators from
middleware  request id and access log, the one SCIM error renderer, authentication inside a deadline
auth        bearer tokens: SonarQube user tokens (default) or static SCIM tokens, with limits on refusals
forwarded   which client and proxy addresses are believed (`trusted_proxies`)
wire        request bodies (JSON objects only, nesting bounded), `application/scim+json` responses, locations
resources   /Users and /Groups
discovery   /ServiceProviderConfig, /ResourceTypes, /Schemas; the unsupported /Bulk, /Me and POST .search
routes      the route table
proxy       every other path streamed to SonarQube
admin       the admin listener: /healthz, /readyz, /metrics
tls         HTTPS with certificates reloaded when their files change
"""

from scim_bridge.web.middleware import scim_middlewares
from scim_bridge.web.routes import add_scim_routes

__all__ = ["add_scim_routes", "scim_middlewares"]
