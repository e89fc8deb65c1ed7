"""``python -m fintrain``."""

from fintrain.cli import main

if __name__ == "__main__":
    main()
