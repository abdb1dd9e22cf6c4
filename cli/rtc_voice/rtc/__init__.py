"""WebRTC with aiortc: `peer.py` (the client's peer, the only aiortc peer owner on the client
side), `ice.py` (ICE configuration and loopback policy), `compat.py` (every touch of aiortc's and
aioice's private parts), `stats.py` (getStats as a plain record). Import the submodule you need:
this package imports nothing itself, so the local server can use `ice`/`compat` without `peer`."""
