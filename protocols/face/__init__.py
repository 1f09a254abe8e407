"""Face detection and recognition maths shared by the door (edge) and enrollment (cloud).

Arrays in, typed values out. The ONNX sessions are injected as `Runner` callables, so the same
code computes an embedding at the door and in the cloud, and tests feed it plain arrays.
"""
