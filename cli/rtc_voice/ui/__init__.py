"""How a call is shown: the live terminal UI, or plain lines / JSON when not on a terminal."""
