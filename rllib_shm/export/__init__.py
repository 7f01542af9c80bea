"""Deployment: a trained ``MemoryRLModule``'s acting path for one step, with its recurrent state as
explicit inputs and outputs, exported to ONNX (``policy.py``, ``onnx_export.py``), and the runtime
side that needs only numpy and onnxruntime (``runtime.py``)."""
