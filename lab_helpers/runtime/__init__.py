"""What a local "pod" runs: the storage-initializer step and the model runtime process.

`storage` copies a storageUri into the pod's model dir (the init container); `server` serves the
model with the real KServe Python data plane (`kserve.ModelServer`) using the model classes in
`models`. Each runs as its own process, so this package imports nothing at import time.
"""
