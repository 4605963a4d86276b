"""Model integrity: parallel chunked hashing, manifests, and OpenSSF model-signing interop.

* :mod:`~modelshield.integrity.hashing` hashes files in parallel chunks;
* :mod:`~modelshield.integrity.manifest` creates and verifies JSON integrity manifests
  (``modelshield manifest create|verify``);
* :mod:`~modelshield.integrity.model_signing` signs with a local key and verifies signatures in
  the model-signing format (needs the ``signing`` extra).
"""
