"""The worker role: the voice state machines (``handlers.voice``) run on the generic runtime.

``orchestrator worker`` consumes ``voice.events`` in the ``voice-worker`` group, keeps one flow
state per flow key (restored from ``voice.state``), and produces outcomes to ``voice.outcomes`` and
commands to ``voice.commands``. See :mod:`orchestrator.worker.voice_app` for the application and
:mod:`orchestrator.runtime` for the runtime it runs on.
"""
