"""The front door: the member portal and JSON API (FastAPI on uvicorn), with real identities.

People log in with a password (a session cookie, CSRF-protected forms); machines send an API
token. Who may do what is one policy table (``pipelines.portal.policy``) that every endpoint
consults; every access is recorded (``pipelines.portal.accesslog``), sealed into the lake beside
the audit trail. Users, tokens and sessions live in the identity database
(``pipelines.portal.db``), which several API processes share.
"""
