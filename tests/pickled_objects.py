"""Objects that checkpoints pickle besides tensors, for the tests of loaders that must not unpickle them:
a training config (as Swin-style ``save_checkpoint`` stores its yacs config) and a callable that would
run a command (``touch marker``) if it were ever unpickled."""
import os


class TrainingConfig:  # stands in for the yacs config that Swin-style save_checkpoint pickles
    def __init__(self):
        self.lr = 1e-3


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)
