"""Reading release-size videos in bounded memory: the peak of `eval-spookybench` and `snr` does not
follow a video's decoded size (each video is decoded as a stream), measured as the largest process's
ru_maxrss by scripts/bench.py's helpers."""

import pytest

import bench

def peak_of(command: str, folder, tmp_path) -> float:
    """The command's peak memory (GB) on a folder."""
    argv = (bench.eval_command(folder, bench.tiny_model(tmp_path / "model.pt"), tmp_path / f"{folder.name}.json")
            if command == "eval" else bench.snr_command(folder, tmp_path / f"snr_{folder.name}"))
    peak, done = bench.peak_memory(argv)
    assert done.returncode == 0, done.stderr[-2000:]
    return peak


@pytest.mark.parametrize("command, frames", [("eval", 600), ("snr", 60)])
def test_peak_memory_does_not_follow_the_video_length(tmp_path, command, frames):
    """The same command on a 960x540 video of a few frames and of many: holding the decoded video (as
    before) would add at least its size, frames x 960 x 540 bytes (0.31 GB for eval's 600 frames; for snr,
    60 frames of flow fields and their float64 derivatives, over 0.5 GB)."""
    short = peak_of(command, bench.noise_folder(tmp_path / "short", [12]), tmp_path)
    long = peak_of(command, bench.noise_folder(tmp_path / "long", [frames]), tmp_path)
    assert long - short < 0.1, (short, long)  # GB


@pytest.mark.slow
def test_a_1000_frame_release_size_video_is_scored_under_2_gb(tmp_path):
    folder = bench.noise_folder(tmp_path / "long", [1000])  # the release's longest video has 273 frames
    assert peak_of("eval", folder, tmp_path) < 2.0


@pytest.mark.slow
def test_a_folder_of_release_videos_is_scored_and_measured_under_2_gb(tmp_path):
    folder = bench.noise_folder(tmp_path / "folder", [300, 100])  # the release holds 46-273 frames a video
    assert peak_of("eval", folder, tmp_path) < 2.0
    assert peak_of("snr", folder, tmp_path) < 2.0
