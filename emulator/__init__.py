"""An emulated MySQL Enterprise Audit source, spoken to over the real MySQL protocol.

``python -m emulator`` serves one (see ``docs/emulator.md``); ``emulator.logfile`` writes and
``emulator.logindex`` reads audit log files as the plugin does; ``emulator.traffic`` generates
realistic events.
"""
