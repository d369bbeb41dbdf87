"""The runner (``stq worker``) and the API's client it shares with the command line.

``run_worker`` (``stq.worker.run``) claims attempts over HTTP and runs their
commands; ``stq.worker.client`` is the client the CLI uses too. Nothing is
imported here, so the CLI's ``import stq.worker.client`` does not load the
runner's loop.
"""
