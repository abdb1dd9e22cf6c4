"""The microphone goes out as mono Opus at a voice bitrate (not aiortc's stereo 96 kbit/s), the
packets aiortc sends are ours unchanged, and the far end (the local server's aiortc peer)
decodes and hears them."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame

from rtc_voice.api import RealtimeApi
from rtc_voice.audio.io import open_microphone
from rtc_voice.audio.pcm import FRAME_SAMPLES, RATE, Pcm, rms_dbfs, silence, to_mono, tone
from rtc_voice.audio.tracks import VOICE_BITRATE, VoiceEncoder, make_frame
from rtc_voice.localserver import LocalServer
from rtc_voice.rtc.peer import connect
from tests.rtc_client import Client

pytestmark = pytest.mark.timeout(60)
STEREO_FLAG = 0x04  # in an Opus packet's first (TOC) byte: RFC 6716, 3.1


def noisy_speech(ms: int) -> Pcm:
    """A loud tone with noise on it: as hard to code as speech gets (VBR spends its most)."""
    rng = np.random.default_rng(7)
    base = tone(300, ms, dbfs=-20).astype(np.float64)
    return np.clip(base + rng.normal(0, 1500, len(base)), -32768, 32767).astype(np.int16)


def test_voice_encoder_packets_are_mono_at_the_bitrate_and_decode() -> None:
    pcm = noisy_speech(2000)
    encoder = VoiceEncoder()
    decoder = OpusDecoder()
    sizes, decoded = [], []
    for n in range(len(pcm) // FRAME_SAMPLES):
        frame = make_frame(pcm[n * FRAME_SAMPLES : (n + 1) * FRAME_SAMPLES], n * FRAME_SAMPLES)
        packet = encoder.encode(frame)
        data = bytes(packet)
        assert packet.pts == n * FRAME_SAMPLES  # the frame's own timestamp, not the codec's
        assert not data[0] & STEREO_FLAG
        sizes.append(len(data))
        for out in decoder.decode(JitterFrame(data=data, timestamp=n * FRAME_SAMPLES)):
            samples = out.to_ndarray().reshape(-1).astype(np.int16)  # type: ignore[union-attr]
            decoded.append(to_mono(samples, len(out.layout.channels)))  # type: ignore[attr-defined]
    kbps = sum(sizes) * 8 / (len(sizes) * FRAME_SAMPLES / RATE) / 1000
    assert VOICE_BITRATE / 1000 * 0.5 < kbps <= VOICE_BITRATE / 1000 * 1.2
    heard = np.concatenate(decoded)[RATE // 10 :]
    assert rms_dbfs(heard) == pytest.approx(rms_dbfs(pcm), abs=2)


async def test_the_microphone_goes_out_as_our_mono_packets_and_is_heard(
    local_server: LocalServer, tmp_path: Path
) -> None:
    path = tmp_path / "mic.wav"
    pcm = np.concatenate([silence(200), noisy_speech(1500), silence(900)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    mic = open_microphone(str(path))  # what `talk --input FILE` sends
    encoder = mic.track.encoder = VoiceEncoder()  # not the default yet (see audio/io.py)
    sent: list[bytes] = []
    encode = encoder.encode

    def recorded(frame: Any) -> Any:
        packet = encode(frame)
        sent.append(bytes(packet))
        return packet

    encoder.encode = recorded  # type: ignore[method-assign]
    async with RealtimeApi(local_server.base_url) as api:
        secret = await api.create_client_secret("sk-local-test", {"session": {"type": "realtime"}})
        conn = await connect(api, secret.value, mic.track, connect_timeout=10, loopback_only=True)
    client = Client(conn, mic.track)  # type: ignore[arg-type]
    try:
        mic.start()
        await client.wait_for("input_audio_buffer.speech_started")  # the server decoded it
        await client.wait_for("input_audio_buffer.speech_stopped")
        report = await conn.pc.getStats()
        outbound = next(s for s in report.values() if s.type == "outbound-rtp")
        sent_after = list(sent)
    finally:
        await client.close()
    assert outbound.packetsSent > 50
    assert not any(data[0] & STEREO_FLAG for data in sent_after)
    # aiortc sent exactly our packets (its own encoder would have made ~3x as many bytes)
    sizes = [len(data) for data in sent_after]
    assert sum(sizes[: outbound.packetsSent]) == outbound.bytesSent
    speech = sizes[10 : 10 + 1500 // 20]
    kbps = sum(speech) * 8 / (len(speech) * 0.02) / 1000
    assert kbps <= VOICE_BITRATE / 1000 * 1.2
