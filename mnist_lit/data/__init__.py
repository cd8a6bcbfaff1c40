"""MNIST itself: its raw files, its batches, the DataModule. The facts here are torch-free, for the
schema.

Try it: pytest tests/data
"""

# images in the official training set
TRAIN_SIZE = 60_000
LOADERS = ("fast", "torchvision")
# name -> (mean, std) applied after scaling pixels to [0, 1]
NORMALIZATIONS = {
    # the training set's own statistics
    "mnist": (0.1307, 0.3081),
    # [-1, 1] scaling
    "pm1": (0.5, 0.5),
}
