"""The sandbox: the test bench that proves the product, kept apart from the product itself.

What lives here, each with one job:

- ``simulator``: a local stand-in for ``api.nexmo.com`` (``orchestrator simulate``), for users who
  want to run a campaign before spending money, and for every integration test;
- ``demo``: a campaign on the local stack (``orchestrator demo``, ``make demo``);
- ``soak``: the whole product as real processes under kills and a faulty Voice API
  (``orchestrator soak``, ``make soak``), which switches on the product's deliberately broken
  variants (``ORCHESTRATOR_FAULT``) to show that its checker catches them;
- ``checker``: the history checker (``orchestrator check``);
- ``synthetic``: realistic synthetic call flows for the worker's tests and benchmark.

Arrows point one way: the sandbox uses the product (``orchestrator``, ``handlers``,
``contracts``); no product module imports the sandbox (``tests/unit/test_layering.py``), and the
production image leaves this package out (``deploy/Dockerfile.dockerignore``). The CLI finds the
sandbox's commands by name and, where the sandbox is not installed, says so.

Why a sub-package of ``orchestrator`` rather than a top-level package of its own: the sandbox is
driven by the same ``orchestrator`` command and installed by the same ``pip install``, the
repository keeps the five top-level folders a newcomer expects (``orchestrator``, ``handlers``,
``contracts``, ``deploy``, ``tests``), and one excluded path keeps it out of the image.
"""
