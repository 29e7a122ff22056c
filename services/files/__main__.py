"""``python -m services.files``: run the files service (JupyterHub starts it)."""

from .app import main

if __name__ == "__main__":
    main()
