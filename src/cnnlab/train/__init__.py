"""Training: the Trainer, run directories, checkpoints, recipes and the train/eval/predict commands."""
