"""Answering pictures: the model interface, a checkpoint on torch or an exported file on
onnxruntime, the predictor, the ONNX export and annotated pictures. No Lightning; with an .onnx
model, no torch either.

Try it: python predict.py image=path/to/pictures/
"""
