"""What a local "pod" runs: the storage-initializer step and the model runtime process.

`storage` copies a storageUri into the pod's model dir (the init container); `server` serves the
model with the real KServe Python data plane (`kserve.ModelServer`) using the model classes in
`models`; `triton` is the Triton image's entrypoint, running the real `tritonserver` of the
nvidia-pytriton wheel (`triton_image`) with ONNX models served through `triton_python_model`.
Each runs as its own process, so this package imports nothing at import time.
"""
