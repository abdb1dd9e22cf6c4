"""`python -m rtc_voice` runs the CLI."""

from rtc_voice.app import main

main()
