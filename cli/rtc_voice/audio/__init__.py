"""Audio: devices, aiortc tracks, pure PCM helpers and WAV files."""
