"""mnist-lit: an MNIST trainer on PyTorch Lightning + Hydra, and the reader of the digits people
draw.

Try it: python train.py trainer.fast_dev_run=true

The layers, and the one way their imports point (docs/architecture.md):
serving -> inference -> reading        training -> data
Both sides share what sits here: MnistLitError, MNIST's sizes, the answer format, checkpoint
reading, the schema.
"""

# MNIST's pictures are 28x28
IMAGE_SIZE = 28
# the digits 0-9
NUM_CLASSES = 10


class MnistLitError(Exception):
    """A problem with the user's input (data, config, checkpoint); the CLI prints it as one line and
    exits non-zero."""


def first_line(err: BaseException) -> str:
    """What an exception says, on one line: its message's first line, or its type's name when it
    says nothing."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
