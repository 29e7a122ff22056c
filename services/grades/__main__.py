"""``python -m services.grades``: run the grades service (JupyterHub starts it)."""

from .app import main

if __name__ == "__main__":
    main()
