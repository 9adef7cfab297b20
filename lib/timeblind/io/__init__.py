"""Reading and writing stimuli in external formats (the official SpookyBench release layout)."""

from timeblind.io.spookybench import (
    CATEGORIES,
    EXPORT_CATEGORIES,
    OFFICIAL_CATEGORIES,
    Entry,
    Skipped,
    SpookyBenchFolder,
    VideoError,
    VideoItem,
    estimate_displacement,
    export_dataset,
    is_correct,
    iter_clips,
    load_video,
    read_metadata,
    resample_clip,
    write_video,
)

__all__ = ["CATEGORIES", "EXPORT_CATEGORIES", "OFFICIAL_CATEGORIES", "Entry", "Skipped", "SpookyBenchFolder",
           "VideoError", "VideoItem", "estimate_displacement", "export_dataset", "is_correct", "iter_clips",
           "load_video", "read_metadata", "resample_clip", "write_video"]
