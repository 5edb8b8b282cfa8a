"""Control-plane operations (accounts, workspaces, keys, credentials, models, audit).

The business rules live here, shared by the admin API and the CLI: role checks, audit
records, cache invalidation. Storage is store/; HTTP is api/admin/.
"""
