"""MNIST itself: its raw files, its batches, the DataModule. The facts here are torch-free, for the schema.

Try it: pytest tests/data
"""

TRAIN_SIZE = 60_000  # images in the official training set
LOADERS = ("fast", "torchvision")
# name -> (mean, std) applied after scaling pixels to [0, 1]
NORMALIZATIONS = {
    "mnist": (0.1307, 0.3081),  # the training set's own statistics
    "pm1": (0.5, 0.5),  # [-1, 1] scaling
}
