"""The one exception type the PKI builder raises for anything a user can fix."""
from __future__ import annotations


class PKIError(Exception):
    """A failure the caller can act on; the message says what to do next.

    The CLI prints it as ``error: <message>`` and exits with status 2,
    without a traceback.
    """
