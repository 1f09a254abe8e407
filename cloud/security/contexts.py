"""The associated data each sealed column binds its values to (`crypto.encrypt`'s `context`).

A value opens only under the context it was sealed with, so a sealed secret copied onto another
row does not open there. The areas that seal and `rotation`, which reseals every column, take
their contexts from here: rotation must not import the areas (they import security).
"""

from __future__ import annotations


def door_secret(gateway_id: str, code: str) -> bytes:
    """A door's offline-code secret, bound to the gateway and the door's code."""
    return f"doors.secret:{gateway_id}/{code}".encode()


def access_list(gateway_id: str, version: int) -> bytes:
    """A compiled access list the cloud keeps, bound to its gateway and version."""
    return f"access_lists:{gateway_id}:{version}".encode()


def alarm_secret(user_id: int) -> bytes:
    """A DingTalk robot's signing secret, bound to the user who subscribed it."""
    return f"alarm_subscriptions.secret:{user_id}".encode()


def face_embeddings(tenant_id: int) -> bytes:
    """A tenant's enrolled face embeddings, bound to the tenant."""
    return f"face_enrollments:{tenant_id}".encode()
