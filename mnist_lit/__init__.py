"""mnist-lit: an MNIST trainer on PyTorch Lightning + Hydra."""


class MnistLitError(Exception):
    """A problem with the user's input (data, config, checkpoint); the CLI prints it as one line and exits non-zero."""
