"""`python -m bot`: run the Discord bot (or any `comfycord` command given as arguments)."""

from __future__ import annotations

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["bot"]))
