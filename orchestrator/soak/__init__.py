"""The soak: the whole product as real processes under kills, restarts and a faulty Voice API.

``python -m orchestrator.soak`` (``make soak``) runs it and then the history checker; see
:mod:`orchestrator.soak.run`. It is a test harness shipped with the product so that users can
re-run the proof on their own machines (and with ``--contacts 100000``).
"""
