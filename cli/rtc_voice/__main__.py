"""`python -m rtc_voice` runs the CLI."""

from rtc_voice.entry import main

main()
