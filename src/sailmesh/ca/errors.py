"""The ca package's one exception.

    CAError            anything the CA refuses: bad plug-in material, an invalid SPIFFE id,
                       a TTL out of bounds, unusable state files.

Messages name the input that is wrong (the `cacerts` key, the file, the argument) and what
to do about it. They never contain private key material: errors raised while parsing a key
are not chained to the parser's exception (`from None`), so a logged traceback cannot carry it.
"""

from __future__ import annotations


class CAError(Exception):
    """The CA cannot do what was asked; the message says which input is wrong and why."""
