"""The files service's settings from the hub's environment, in one table.

Each entry is the ``@default`` of a ``FilesApp`` trait (``services/files/app.py`` installs
them) and a variable that ``services/files/config.py`` passes from the hub's environment
into the service's ``environment``. A new setting: add its trait (with ``help=``) to
``FilesApp`` and its line here; the admin guide's table follows (``make docs``).
"""

from __future__ import annotations

from common.settings import EnvSetting, EnvTable, comma_list, number, whole
from services.base.app import SERVICE_TABLE
from services.base.homesapp import HOMES_TABLE

SECONDS = "a number of seconds"

#: ``FilesApp``'s own settings
FILES_TABLE = EnvTable(
    (
        EnvSetting("s3_endpoint", "CLASSHUB_S3_ENDPOINT", "http://127.0.0.1:8333"),
        EnvSetting("s3_access_key", "CLASSHUB_S3_ACCESS_KEY", "", sensitive=True),
        EnvSetting("s3_secret_key", "CLASSHUB_S3_SECRET_KEY", "", sensitive=True),
        EnvSetting("s3_bucket", "CLASSHUB_S3_BUCKET", "classhub-files"),
        EnvSetting("s3_timeout", "CLASSHUB_S3_TIMEOUT", 10.0, number, SECONDS),
        EnvSetting("mongo_url", "CLASSHUB_MONGO_URL", "mongodb://127.0.0.1:27017/classhub"),
        EnvSetting("mongo_timeout", "CLASSHUB_MONGO_TIMEOUT", 3.0, number, SECONDS),
        EnvSetting("user_quota", "CLASSHUB_FILES_USER_QUOTA", "1G"),
        EnvSetting("material_quota", "CLASSHUB_FILES_MATERIAL_QUOTA", "2G"),
        EnvSetting("max_file_size", "CLASSHUB_FILES_MAX_FILE_SIZE", "512M"),
        EnvSetting("staging_quota", "CLASSHUB_FILES_STAGING_QUOTA", "1G"),
        EnvSetting("max_zip_size", "CLASSHUB_FILES_MAX_ZIP_SIZE", "512M"),
        EnvSetting("max_unpacked_size", "CLASSHUB_FILES_MAX_UNPACKED_SIZE", "1G"),
        EnvSetting("max_zip_files", "CLASSHUB_FILES_MAX_ZIP_FILES", 2000, whole, "a whole number"),
        EnvSetting("upload_expiry", "CLASSHUB_FILES_UPLOAD_EXPIRY", 600.0, number, SECONDS),
        EnvSetting("download_expiry", "CLASSHUB_FILES_DOWNLOAD_EXPIRY", 60.0, number, SECONDS),
        EnvSetting(
            "release_services",
            "CLASSHUB_FILES_RELEASE_SERVICES",
            {"grades"},
            lambda raw: set(comma_list(raw)),
            "service names separated by commas",
            keep_empty=True,
        ),
        EnvSetting("sync_interval", "CLASSHUB_FILES_SYNC_INTERVAL", 5.0, number, SECONDS),
        EnvSetting("traefik_dynamic_dir", "CLASSHUB_TRAEFIK_DYNAMIC_DIR", ""),
        EnvSetting("traefik_entrypoint", "CLASSHUB_TRAEFIK_ENTRYPOINT", "web"),
    )
)

#: everything the service reads from its environment (what the hub passes)
TABLE = SERVICE_TABLE + HOMES_TABLE + FILES_TABLE
