"""scim-bridge: SCIM 2.0 provisioning for every SonarQube edition."""

__version__ = "0.1.0.dev0"
