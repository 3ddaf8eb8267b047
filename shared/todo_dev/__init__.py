"""Development tooling, kept out of the runtime library: the images do not contain it.

``deploy`` generates the cluster manifests, ``stack`` runs the real stack on one machine (``make run
STACK=real``, the system tests, the benchmarks), ``ports`` says where everything listens.
"""
