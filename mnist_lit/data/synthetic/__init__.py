"""Synthetic pictures for teaching "not a digit": non-digit drawings (negatives), the Hershey stroke
fonts' glyphs, pictograms, and the ink operations that lay them out as MNIST lays out a digit.
Torch, no Lightning.

Try it: python -m mnist_lit.data.synthetic.negatives outputs/negatives.png
"""
