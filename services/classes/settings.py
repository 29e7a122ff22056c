"""The classes service's settings from the hub's environment, in one table.

Each entry is the ``@default`` of a ``ClassesApp`` trait (``services/classes/app.py``
installs them) and a variable that ``services/classes/config.py`` passes from the hub's
environment into the service's ``environment``. A new setting: add its trait (with
``help=``) to ``ClassesApp`` and its line here; the admin guide's table follows
(``make docs``).
"""

from __future__ import annotations

from common.hubenv import CPU_LIMIT, JOIN_CODE_SIGNUP, MEM_LIMIT, SINGLEUSER_IMAGE
from common.settings import EnvSetting, EnvTable, number, switch, whole
from services.base.app import SERVICE_TABLE
from services.base.homesapp import HOMES_TABLE
from services.base.s3app import S3_TABLE
from services.base.sharedenv import MONGO_TIMEOUT, MONGO_URL, SECONDS

#: ``ClassesApp``'s own settings
CLASSES_TABLE = EnvTable(
    (
        MONGO_URL.of("mongo_url"),
        MONGO_TIMEOUT.of("mongo_timeout"),
        SINGLEUSER_IMAGE.of("default_image"),
        EnvSetting("max_cpu_limit", "CLASSHUB_MAX_CPU_LIMIT", 2.0, number, "a number of CPUs"),
        EnvSetting("max_mem_limit", "CLASSHUB_MAX_MEM_LIMIT", "2G"),
        CPU_LIMIT.of("default_cpu_limit"),
        MEM_LIMIT.of("default_mem_limit"),
        EnvSetting("default_idle_timeout", "CLASSHUB_DEFAULT_IDLE_TIMEOUT", 3600, whole, SECONDS),
        EnvSetting("min_idle_timeout", "CLASSHUB_MIN_IDLE_TIMEOUT", 300, whole, SECONDS),
        EnvSetting("max_idle_timeout", "CLASSHUB_MAX_IDLE_TIMEOUT", 86400, whole, SECONDS),
        EnvSetting("cull_interval", "CLASSHUB_CULL_INTERVAL", 60.0, number, SECONDS),
        EnvSetting("reconcile_interval", "CLASSHUB_RECONCILE_INTERVAL", 600.0, number, SECONDS),
        # warm before class (services/classes/warmup.py)
        EnvSetting("warm_lead", "CLASSHUB_WARM_LEAD", 600.0, number, SECONDS),
        EnvSetting("warm_stop_after", "CLASSHUB_WARM_STOP_AFTER", 900.0, number, SECONDS),
        EnvSetting("warm_capacity", "CLASSHUB_WARM_CAPACITY", 50, whole, "a whole number"),
        EnvSetting("warm_interval", "CLASSHUB_WARM_INTERVAL", 30.0, number, SECONDS),
        # students enrol themselves with a class's join code
        EnvSetting("join_codes", "CLASSHUB_JOIN_CODES", False, switch, "true or false"),
        # ... and sign up with it (a new student account, enrolled)
        JOIN_CODE_SIGNUP.of("join_code_signup"),
        EnvSetting("signups_per_address", "CLASSHUB_SIGNUPS_PER_ADDRESS", 40, whole, "a number"),
    ),
    # per-user origins: where the links to students' servers point (hub_base_url; the
    # hub computes it, hub.config.configure_service_origins); the image catalogue (JSON)
    # and its older form (names): ClassesApp's own @defaults of images and allowed_images
    # read them (common.images), as ClassroomSpawner's do
    extra=(
        "CLASSHUB_SERVERS_ORIGIN",
        "CLASSHUB_IMAGES",
        "CLASSHUB_ALLOWED_IMAGES",
    ),
)

#: with per-user origins, the origin of students' servers with ``{user}`` for each user's
#: label (``https://{user}.classhub-servers.example.edu``), computed by the hub from its
#: own ``subdomain_host`` and passed to the service; empty on one shared origin
SERVERS_ORIGIN = EnvSetting("", "CLASSHUB_SERVERS_ORIGIN", "")

#: everything the service reads from its environment (what the hub passes)
TABLE = SERVICE_TABLE + HOMES_TABLE + S3_TABLE + CLASSES_TABLE
