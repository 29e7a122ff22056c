"""The grades service's settings from the hub's environment, in one table.

Each entry is the ``@default`` of a ``GradesApp`` trait (``services/grades/app.py`` and
``reviewsettings.py`` install them) and a variable that ``services/grades/config.py``
passes from the hub's environment into the service's ``environment``. A new setting: add
its trait (with ``help=``) and its line here; the admin guide's table follows
(``make docs``).
"""

from __future__ import annotations

from common.cputhreads import usable_cores
from common.hubenv import BIND_IP, own_address
from common.settings import EnvSetting, EnvTable, number, whole
from services.base.app import SERVICE_TABLE
from services.base.homesapp import HOMES_TABLE
from services.base.hubconfig import PORTS
from services.base.pages import normal_base_url
from services.base.s3app import S3_TABLE
from services.base.sharedenv import (
    DOWNLOAD_EXPIRY,
    SECONDS,
    SYNC_INTERVAL,
)


def _files_url(app) -> str:
    port = PORTS["files"].read()
    # the files service listens where the hub's services do (in the same container)
    host = own_address(BIND_IP.read())
    return f"http://{host}:{port}{normal_base_url(app.hub_base_url)}services/files/"


#: ``GradesApp``'s own settings
GRADES_TABLE = EnvTable(
    (
        # passed by the hub as CLASSHUB_GRADES_DB_URL; CLASSHUB_DB_URL serves a service
        # run by hand and is never passed (it holds the hub's own credentials)
        EnvSetting("db_url", "CLASSHUB_GRADES_DB_URL", "", also=("CLASSHUB_DB_URL",)),
        EnvSetting("db_timeout", "CLASSHUB_GRADES_DB_TIMEOUT", 5.0, number, SECONDS),
        DOWNLOAD_EXPIRY.of("download_expiry"),
        SYNC_INTERVAL.of("sync_interval"),
        EnvSetting(
            "files_url",
            "CLASSHUB_FILES_URL",
            _files_url,
            doc_default="http://127.0.0.1:<CLASSHUB_FILES_PORT, 10102>/services/files/",
        ),
        EnvSetting("files_timeout", "CLASSHUB_FILES_TIMEOUT", 10.0, number, SECONDS),
        EnvSetting(
            "release_retry_interval", "CLASSHUB_GRADES_RELEASE_RETRY", 30.0, number, SECONDS
        ),
        EnvSetting("deadline_interval", "CLASSHUB_GRADES_DEADLINE_INTERVAL", 2.0, number, SECONDS),
        EnvSetting(
            "deadline_retry_interval", "CLASSHUB_GRADES_DEADLINE_RETRY", 30.0, number, SECONDS
        ),
        EnvSetting("deadline_lease", "CLASSHUB_GRADES_DEADLINE_LEASE", 300.0, number, SECONDS),
        EnvSetting("max_versions", "CLASSHUB_GRADES_MAX_VERSIONS", 20, whole, "a whole number"),
        EnvSetting("student_quota", "CLASSHUB_GRADES_STUDENT_QUOTA", "1G"),
    ),
    # the files service's port, from which files_url is made
    extra=("CLASSHUB_FILES_PORT", "CLASSHUB_BIND_IP"),
)

#: the review's settings (``ReviewSettings``, mixed into ``GradesApp``)
REVIEW_TABLE = EnvTable(
    (
        EnvSetting("render_workers", "CLASSHUB_GRADES_RENDER_WORKERS", 2, whole, "a number"),
        EnvSetting("render_timeout", "CLASSHUB_GRADES_RENDER_TIMEOUT", 20, whole, "a number"),
        EnvSetting("render_memory", "CLASSHUB_GRADES_RENDER_MEMORY", "2G"),
        EnvSetting("render_cache_size", "CLASSHUB_GRADES_RENDER_CACHE", "256M"),
        EnvSetting("render_collapse_output", "CLASSHUB_GRADES_RENDER_COLLAPSE_OUTPUT", "256K"),
        EnvSetting("render_collapse_page", "CLASSHUB_GRADES_RENDER_COLLAPSE_PAGE", "1M"),
    )
)

#: autograding's settings (``AutogradeSettings``, mixed into ``GradesApp``)
AUTOGRADE_TABLE = EnvTable(
    (
        EnvSetting("autograde_mem_limit", "CLASSHUB_AUTOGRADE_MEM_LIMIT", "1G"),
        EnvSetting("autograde_pids_limit", "CLASSHUB_AUTOGRADE_PIDS_LIMIT", 256, whole, "a number"),
        EnvSetting("autograde_cpu_limit", "CLASSHUB_AUTOGRADE_CPU_LIMIT", 1.0, number, "a number"),
        EnvSetting("autograde_timeout", "CLASSHUB_AUTOGRADE_TIMEOUT", 300.0, number, SECONDS),
        EnvSetting(
            "autograde_cell_timeout", "CLASSHUB_AUTOGRADE_CELL_TIMEOUT", 60.0, number, SECONDS
        ),
        EnvSetting("autograde_output_limit", "CLASSHUB_AUTOGRADE_OUTPUT_LIMIT", "4M"),
        EnvSetting("autograde_tmpfs_size", "CLASSHUB_AUTOGRADE_TMPFS_SIZE", "128M"),
        EnvSetting(
            "autograde_concurrency",
            "CLASSHUB_AUTOGRADE_CONCURRENCY",
            # the trait's maximum is 256: a larger machine must still start
            lambda app: min(usable_cores(), 256),
            whole,
            "a number",
            doc_default="the number of cores (at most 256)",
        ),
        EnvSetting("autograde_image", "CLASSHUB_AUTOGRADE_IMAGE", "classhub/singleuser:latest"),
        EnvSetting("autograde_lease", "CLASSHUB_AUTOGRADE_LEASE", 60.0, number, SECONDS),
        EnvSetting(
            "autograde_max_attempts", "CLASSHUB_AUTOGRADE_MAX_ATTEMPTS", 3, whole, "a number"
        ),
        EnvSetting("autograde_retry_interval", "CLASSHUB_AUTOGRADE_RETRY", 30.0, number, SECONDS),
        EnvSetting("autograde_poll_interval", "CLASSHUB_AUTOGRADE_POLL", 2.0, number, SECONDS),
    ),
    # the students' image catalogue: autograde_images' default reads it (common.images)
    extra=("CLASSHUB_IMAGES", "CLASSHUB_ALLOWED_IMAGES"),
)

#: everything the service reads from its environment (what the hub passes)
TABLE = SERVICE_TABLE + HOMES_TABLE + S3_TABLE + GRADES_TABLE + REVIEW_TABLE + AUTOGRADE_TABLE
