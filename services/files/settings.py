"""The files service's settings from the hub's environment, in one table.

Each entry is the ``@default`` of a ``FilesApp`` trait (``services/files/app.py`` installs
them) and a variable that ``services/files/config.py`` passes from the hub's environment
into the service's ``environment``. A new setting: add its trait (with ``help=``) to
``FilesApp`` and its line here; the admin guide's table follows (``make docs``).
"""

from __future__ import annotations

from common.hubenv import TRAEFIK_DYNAMIC_DIR, TRAEFIK_ENTRYPOINT
from common.settings import EnvSetting, EnvTable, comma_list, number, whole
from services.base.app import SERVICE_TABLE
from services.base.homesapp import HOMES_TABLE
from services.base.s3app import S3_TABLE
from services.base.sharedenv import (
    DOWNLOAD_EXPIRY,
    MONGO_TIMEOUT,
    MONGO_URL,
    SECONDS,
    SYNC_INTERVAL,
)

#: ``FilesApp``'s own settings
FILES_TABLE = EnvTable(
    (
        EnvSetting("s3_timeout", "CLASSHUB_S3_TIMEOUT", 10.0, number, SECONDS),
        MONGO_URL.of("mongo_url"),
        MONGO_TIMEOUT.of("mongo_timeout"),
        EnvSetting("user_quota", "CLASSHUB_FILES_USER_QUOTA", "1G"),
        EnvSetting("material_quota", "CLASSHUB_FILES_MATERIAL_QUOTA", "2G"),
        EnvSetting("max_file_size", "CLASSHUB_FILES_MAX_FILE_SIZE", "512M"),
        EnvSetting("staging_quota", "CLASSHUB_FILES_STAGING_QUOTA", "1G"),
        EnvSetting("max_zip_size", "CLASSHUB_FILES_MAX_ZIP_SIZE", "512M"),
        EnvSetting("max_unpacked_size", "CLASSHUB_FILES_MAX_UNPACKED_SIZE", "1G"),
        EnvSetting("max_zip_files", "CLASSHUB_FILES_MAX_ZIP_FILES", 2000, whole, "a whole number"),
        EnvSetting("upload_expiry", "CLASSHUB_FILES_UPLOAD_EXPIRY", 600.0, number, SECONDS),
        DOWNLOAD_EXPIRY.of("download_expiry"),
        EnvSetting(
            "release_services",
            "CLASSHUB_FILES_RELEASE_SERVICES",
            {"grades"},
            lambda raw: set(comma_list(raw)),
            "service names separated by commas",
            keep_empty=True,
        ),
        SYNC_INTERVAL.of("sync_interval"),
        TRAEFIK_DYNAMIC_DIR.of("traefik_dynamic_dir"),
        TRAEFIK_ENTRYPOINT.of("traefik_entrypoint"),
    ),
    # the hub's state directory, under which traefik_dynamic_dir's default lies
    extra=("CLASSHUB_DATA_DIR",),
)

#: everything the service reads from its environment (what the hub passes)
TABLE = SERVICE_TABLE + HOMES_TABLE + S3_TABLE + FILES_TABLE
