"""The Airflow adapters: everything that knows Airflow is here (and in ``dags/``).

- ``orchestration``: runs a DAG in process with ``dag.test()`` and gives the DAG files their task
  settings and retry rule;
- ``scheduler``: starts and stops a real Airflow (api-server, scheduler, dag-processor) for
  ``make airflow`` and ``insurshare airflow``;
- ``client``: the small part of Airflow 3's REST API that the command line and the tests use.

The stages in ``pipelines`` never import this package: Airflow calls them, not the other way round.
"""
