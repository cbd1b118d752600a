"""SCIM intent → SonarQube operations: what each SCIM request does to SonarQube and to the state store.

service         `Provisioner`: the user and group services of one application
users           /Users: create or adopt, update, deactivate and reactivate, forget
groups          /Groups: create or adopt, rename, member deltas, delete
lifecycle       the steps users and groups share: new identities, stored records, writes under a lock,
                adoptions, renames that may have happened already, filtered pages
mapping         pure SCIM ↔ SonarQube mapping: names, e-mails, group names, the resources returned
logins          SonarQube logins for SCIM userNames
saml            whether accounts are linked to SAML (`saml_link`, SonarQube's own setting)
audit           one audit event per change, in the store and the log
locks           per-resource serialisation inside one process
translate       SonarQube errors as SCIM errors
collaborators   what the services work with: store, settings, locks, SAML policy, audit trail, clock
context         `RequestContext`: the SonarQube client, the actor and the request id of one request
"""
