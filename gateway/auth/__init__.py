"""Identity and access (DESIGN section 6): who an agency system is, and what its token allows.

    agencies.py        the agency registry (FHIR Organizations)
    clients.py         registered agency systems: public keys, scopes, revocation
    scopes.py          SMART system scopes (v1 and v2) and the gateway's own (admin, audit)
    signing.py         the gateway's signing keys: encrypted in the database, rotated, published
    assertion.py       the client assertion check (RFC 7523, SMART Backend Services)
    token_endpoint.py  POST /auth/token on authlib's authorization server
    access.py          access-token verification, with a per-process cache -> Caller
    gateway_tokens.py  the gateway's own tokens, its identity on Kafka (SASL OAUTHBEARER)
    policy.py          what one request's caller may do: scopes per interaction, the ledger, the registry
    issuers.py         external identity providers trusted by issuer and JWKS
    replay.py          used assertion ids, as database rows
    security_events.py refusals, recorded without secrets
    commands.py        the `gateway agency|client|keys rotate-signing` commands
"""
