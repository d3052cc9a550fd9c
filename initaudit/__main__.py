"""Allow ``python -m initaudit``."""

from initaudit.cli import main

if __name__ == "__main__":
    main()
