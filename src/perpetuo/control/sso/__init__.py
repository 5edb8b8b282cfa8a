"""Single sign-on: identity providers (OpenID Connect, Google, GitHub) the operator sets up
for the platform or a workspace sets up for itself; the sign-in flow, the accounts and
memberships it provisions, the role its groups map to, and the domains that must use it.

spec.py describes one provider; directory.py finds them; flow.py runs a sign-in (oidc.py,
github.py talk to the provider); provision.py turns who signed in into a session here;
roles.py maps groups to roles; policy.py refuses passwords where SSO is required; admin.py
manages workspaces' providers and domains.
"""
