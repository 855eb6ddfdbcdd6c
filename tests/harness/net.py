"""Network helpers for the fixtures (they live in ``auditstream.ports``)."""

from auditstream.ports import free_port, wait_for_port, wait_port_closed

__all__ = ["free_port", "wait_for_port", "wait_port_closed"]
