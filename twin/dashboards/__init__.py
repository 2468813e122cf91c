"""The Grafana dashboards and alert rules, generated from the plant file (docs/dashboards.md).

- :mod:`twin.dashboards.influxql`: the InfluxQL of every target (the sink's schema, ``$database``, ``$site``);
- :mod:`twin.dashboards.board`: a board as Grafana JSON (grid placement, targets, variables, annotations);
- :mod:`twin.dashboards.boards`: the boards, thresholds from the plant file's ``[alarms]`` and contract;
- :mod:`twin.dashboards.alerts`: the provisioned alert rules;
- :mod:`twin.dashboards.layout`: each board's panel layout as a picture for the docs;
- :mod:`twin.dashboards.build`: writes or ``--check``s them all (``python deploy/grafana/build.py``).
"""
