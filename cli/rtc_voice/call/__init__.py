"""One `talk` call: `state.py` (the pure state machine), `controls.py` (commands and snapshots
for presenters), `supervisor.py` (carries out effects; owns every task)."""
