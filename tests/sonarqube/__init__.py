"""Tests of the SonarQube client (a package so its conftest and helpers get unique module names)."""
