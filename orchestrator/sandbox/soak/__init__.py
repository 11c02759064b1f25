"""The soak: the whole product as real processes under kills, restarts and a faulty Voice API.

``orchestrator soak`` (``make soak``) runs it and then the history checker; see
:mod:`orchestrator.sandbox.soak.run`. It is part of the sandbox, so users can re-run the proof
on their own machines (and with ``--contacts 100000``).
"""
