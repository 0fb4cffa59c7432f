"""The xds package's one exception.

Owns: ``XdsError``, raised for misuse of the xds API (bad socket path, server not started,
resources of an unknown type). Protocol trouble from a proxy (a NACK, a stale nonce) is
*not* an exception: it is recorded in the node's status and reported as an event, because a
proxy rejecting config is an expected, observable state, not a control-plane failure.
"""


class XdsError(Exception):
    """Misuse of the xds server API; the message says what to change."""
