"""The HTTP server: the LitServe API, its idle-friendly loop, its request middleware and the drawing
pad.

Try it: python serve.py, then open http://127.0.0.1:8000
"""
