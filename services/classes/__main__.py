"""``python -m services.classes``: run the classes service (JupyterHub starts it)."""

from .app import main

if __name__ == "__main__":
    main()
