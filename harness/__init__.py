"""The test harness: real deployments of classhub for the tests and the benchmarks.

:mod:`.stack` starts one (Traefik, JupyterHub from ``jupyterhub_config.py``, PostgreSQL,
Redis, MongoDB and S3 stand-ins, student containers on Docker) on random ports with
prefixed names, and cleans up; :mod:`.classes` and :mod:`.files` add the classes and
files services and a person signed in through the hub; :mod:`.browser` holds Chromium's
flags. It lives outside ``tests/`` so that ``bench/`` imports no test module; the tests
import it from here too. It is not part of the installed package.
"""
