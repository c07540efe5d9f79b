"""The one trainer every method uses, with EMA, checkpoints, progress and DDP."""
from .checkpoint import atomic_save, load_checkpoint, package_versions, plain
from .device import check_device
from .distributed import DistInfo, barrier, dist_info, init_distributed, is_main
from .ema import EMA
from .progress import progress
from .trainer import TrainConfig, Trainer, TrainResult, move_to

__all__ = [
           "EMA",
           "DistInfo",
           "TrainConfig",
           "TrainResult",
           "Trainer",
           "atomic_save",
           "barrier",
           "check_device",
           "dist_info",
           "init_distributed",
           "is_main",
           "load_checkpoint",
           "move_to",
           "package_versions",
           "plain",
           "progress",
]
