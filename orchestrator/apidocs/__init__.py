"""The documents other services code against, generated from the contracts and the topic table.

``orchestrator schema export DIR`` writes them (:func:`orchestrator.apidocs.export.export_all`):
one JSON Schema per record and model, ``index.json`` (model and topic maps), ``asyncapi.yaml``
(every topic as a channel, with roles and Kafka bindings) and ``openapi.json`` (the control API,
without a running server). :mod:`~orchestrator.apidocs.compat` compares the records' schemas with
the last released ones.
"""
