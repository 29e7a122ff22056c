# classhub: the image's Python environment first on PATH in login shells too. JupyterLab's
# terminals run `bash -l`, and Debian's /etc/profile resets PATH, which left /opt/venv/bin
# (python, pip, jupyter and every package of the image) out of the terminal.
case ":$PATH:" in
  *:/opt/venv/bin:*) ;;
  *) PATH="/opt/venv/bin:$PATH"; export PATH ;;
esac
