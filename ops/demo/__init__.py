"""``auditstream demo``: the whole mission end to end on embedded components, then a summary.

- :mod:`ops.demo.run`: the settings and the numbered steps (``main``);
- :mod:`ops.demo.corpus`: the audit log files and the operator's filters;
- :mod:`ops.demo.counts`: how each stage is counted;
- :mod:`ops.demo.children`: the ``auditstream`` commands it runs (through ``auditstream.process``);
- :mod:`ops.demo.summary`: the counts and whether they agree;
- :mod:`ops.demo.seal`: ``--seal``, the sealed-evidence variant.
"""
