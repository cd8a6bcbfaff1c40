"""mnist-lit: an MNIST trainer on PyTorch Lightning + Hydra.

Try it: python train.py trainer.fast_dev_run=true
"""

IMAGE_SIZE = 28  # MNIST's pictures are 28x28
NUM_CLASSES = 10  # the digits 0-9


class MnistLitError(Exception):
    """A problem with the user's input (data, config, checkpoint); the CLI prints it as one line and exits non-zero."""
