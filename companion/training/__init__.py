"""Training API for the encoders: ``train(config, callbacks, cancel_event, resume=True)``.

Used by ``companion train --config FILE`` and the GUI's training tab. See
:mod:`companion.training.trainer` for the loop, :mod:`companion.training.data`
for the prepared in-memory data and :mod:`companion.training.augment` for the
augmentations.
"""

from companion.training.config import TrainConfig
from companion.training.trainer import Progress, TrainResult, train

__all__ = ["Progress", "TrainConfig", "TrainResult", "train"]
