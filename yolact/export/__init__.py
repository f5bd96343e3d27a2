"""Export targets: each module writes the network in one format (``onnx``)."""
