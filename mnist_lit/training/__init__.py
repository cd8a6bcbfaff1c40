"""Training on Lightning: the LightningModule, the mixing of negatives into batches, calibration,
the Trainer, runs, sweeps, loggers and the report. The only layer that imports Lightning.

Try it: python train.py trainer.fast_dev_run=true
"""
