"""The SCIM vocabulary: scim2-models types read and written the way Microsoft Entra ID needs. Pure, no I/O.

resources   the User and Group models, ENTRA_POLICY, schema URNs
dialect     the one place Entra's deviations are normalised (quirks Q1-Q28 mapped in its docstring)
bodies      POST/PUT bodies -> UserResource / GroupResource
patch       PATCH -> validated PatchOp applied to a user, or a GroupPatchPlan of member deltas
filters     filter parsing, direct look-ups, in-memory matching
listing     query parameters, rendering with attributes/excludedAttributes, ListResponse
discovery   ServiceProviderConfig, ResourceTypes, Schemas
errors      the SCIM error tree and the translation of scim2-models / pydantic errors
"""
