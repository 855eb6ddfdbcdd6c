"""Operator tools: the top layer, above the services (``producer``, ``consumer``, ``emulator``).

- :mod:`ops.cli`: the ``auditstream`` console script, one front door over every command.
- :mod:`ops.verify`: the per-server hash chains of every store.
- :mod:`ops.reconcile`: source vs topic vs archive vs dumps, key by key.
- :mod:`ops.status`, :mod:`ops.setup`, :mod:`ops.bookmark`, :mod:`ops.demo` (a package).

These may import the services and the kernel; nothing below imports them (the layer contract
in ``pyproject.toml``, checked by ``make lint`` and ``tests/test_layers.py``).
"""
