"""Reading and writing stimuli in external formats: the official SpookyBench release layout, and its
videos resampled to a model's input."""

from timeblind.io.resample import estimate_displacement, resample_clip
from timeblind.io.spookybench import (
    CATEGORIES,
    EXPORT_CATEGORIES,
    OFFICIAL_CATEGORIES,
    Entry,
    Skipped,
    SpookyBenchFolder,
    VideoError,
    VideoItem,
    export_dataset,
    is_correct,
    iter_clips,
    load_video,
    read_metadata,
    write_video,
)

__all__ = ["CATEGORIES", "EXPORT_CATEGORIES", "OFFICIAL_CATEGORIES", "Entry", "Skipped", "SpookyBenchFolder",
           "VideoError", "VideoItem", "estimate_displacement", "export_dataset", "is_correct", "iter_clips",
           "load_video", "read_metadata", "resample_clip", "write_video"]
