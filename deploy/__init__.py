"""Deployment tooling: Strimzi topic generation and the offline ``deploy-check``.

Lives outside the installed packages on purpose: nothing here ships in the image. Run it from the
repository root (``python -m deploy.gen_topics``, ``python -m deploy.check``).
"""
