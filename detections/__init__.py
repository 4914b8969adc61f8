"""Detections as code for zoom-oplog-shipper's events (development tooling, not part of the program).

``rules/`` holds the Sigma rules, ``native/`` the queries Sigma cannot express (ES|QL, SPL and the
SQL they are tested as), ``converted/`` every rule converted for each backend, and ``pipelines.py``
the processing pipelines that map a rule's ECS fields to each destination. ``python -m
detections`` regenerates ``converted/``; ``evaluate.py`` runs rules on events in SQLite with
Elasticsearch's field semantics. pySigma and its backends are a development extra
(``pip install -e '.[detections]'``), never a dependency of the program. See docs/detections.md.
"""
