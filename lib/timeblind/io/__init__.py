"""Reading and writing stimuli in external formats: the official SpookyBench release layout, and its
videos resampled to a model's input."""

from timeblind.io.export import VideoItem, export_dataset, pattern_folder, write_video
from timeblind.io.folder import SpookyBenchFolder, iter_clips
from timeblind.io.metadata import Entry, Row, Skipped, find_metadata, find_video_root, metadata_rows, read_metadata
from timeblind.io.resample import estimate_displacement, resample_clip
from timeblind.io.spookybench import (
    CATEGORIES,
    CATEGORY_ALIASES,
    EXPORT_CATEGORIES,
    OFFICIAL_CATEGORIES,
    canonical_category,
    is_correct,
    parse_categories,
)
from timeblind.io.video import VideoError, load_video

__all__ = ["CATEGORIES", "CATEGORY_ALIASES", "EXPORT_CATEGORIES", "OFFICIAL_CATEGORIES", "Entry", "Row", "Skipped",
           "SpookyBenchFolder", "VideoError", "VideoItem", "canonical_category", "estimate_displacement",
           "export_dataset", "find_metadata", "find_video_root", "is_correct", "iter_clips", "load_video",
           "metadata_rows", "parse_categories", "pattern_folder", "read_metadata", "resample_clip", "write_video"]
