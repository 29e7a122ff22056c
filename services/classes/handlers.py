"""The classes REST API, under the service prefix (``/services/classes/``).

================================================  ==========================================
``GET    api/classes``                            classes the caller may see
``POST   api/classes``                            create (admins)
``GET    api/classes/<code>``                     one class (a student's view has no roster)
``PATCH  api/classes/<code>``                     change name, term, environment, archived
                                                  (teachers, admins), teachers (admins)
``GET    api/classes/<code>/students``            the roster (teachers, admins)
``POST   api/classes/<code>/students``            enrol ``{"username"}``
``DELETE api/classes/<code>/students/<name>``     unenrol (stops their class server)
``POST   api/classes/<code>/import``              ``{"csv": "username\\n..."}``, all or nothing
``POST   api/classes/<code>/accounts``            new student accounts, enrolled: ``{"username",
                                                  "password"?}`` or ``{"csv"}``
``POST   api/classes/<code>/students/<n>/password``  a student's new password (``{}``: generated)
``GET    api/classes/<code>/servers``             the roster's server states
``POST   api/classes/<code>/servers/<name>``      start that person's class server
``DELETE api/classes/<code>/servers/<name>``      stop it (its volume stays)
``POST   api/classes/<code>/servers``             ``{"action": "start"|"stop"}`` every
                                                  roster server (teachers, admins)
``DELETE api/classes/<code>?confirm=<code>``      delete an archived class (admins)
``POST   api/classes/<code>/copy``                ``{"code", "name"?, "term"?}``: a copy for a
                                                  new term: teachers, environment (admins)
``DELETE api/people/<name>``                      take a person off every roster and
                                                  teacher list (admins)
``POST   api/classes/<code>/join-code``           a new random join code (teachers, admins)
``POST   api/join``                               a student enrols with ``{"join_code"}``
                                                  (when ``ClassesApp.join_codes`` is on)
``POST   api/signup``                             no sign-in: a new student account on the
                                                  code's roster ``{"join_code", "username",
                                                  "password"}`` (``join_code_signup``)
``GET    api/settings``                           the admin's limits for class environments
================================================  ==========================================

Every change is written to MongoDB first, then the class's hub groups are synced; when
the hub is unreachable at that moment the answer says ``"hub_sync": "pending"`` and the
periodic reconciliation catches up. A change of only the name or term does not wait for
the sync (``"hub_sync": "queued"``): neither the spawner nor any access rule depends on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tornado import web

from common.errors import (
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unavailable,
)
from common.groups import class_group, teachers_group
from services.base.handlers import BaseHandler
from services.base.hubapi import HubAPI, HubAPIError, HubBadRequest, HubConflict, HubNotFound, q

from . import roster_csv
from .bulk import run_bulk
from .hubsync import GroupSync
from .joincodes import WRONG, JoinLimiter, new_join_code, normal_join_code, shown_join_code
from .model import (
    ADMIN_FIELDS,
    COPY_FIELDS,
    CREATE_FIELDS,
    Limits,
    check_code,
    check_username,
    class_changes,
    copy_request,
    new_class,
    roster_size_problem,
)
from .rules import (
    ENROL_ONLY,
    SERVERS_ONLY,
    STUDENT,
    TEACHER,
    Actor,
    hub_role,
    relation,
    require_admin,
    require_edit,
    require_manage,
    require_see,
    require_server_control,
    require_student,
    student_problem,
)
from .servers import START, STOP, active_servers, plan_bulk, roster_servers, server_state
from .store import ClassStore
from .views import full_view, student_view, summary_view

SYNCED = "done"
SYNC_PENDING = "pending"
SYNC_QUEUED = "queued"
#: changes that neither the spawner nor the hub's access rules depend on: the answer does
#: not wait for the hub groups (the class's name is only shown in its group's properties;
#: the schedule is read by the warm-up, from the record)
COSMETIC_FIELDS = frozenset({"name", "term", "schedule"})


class ClassesHandler(BaseHandler):
    """Dependencies (from the route): ``store``, ``hub``, ``sync``, ``limits``,
    ``clock``, ``hub_base_url``, ``hub_concurrency``."""

    store: ClassStore
    hub: HubAPI
    sync: GroupSync
    limits: Limits
    clock: Callable[[], float]
    hub_base_url: str
    hub_concurrency: int

    def actor(self) -> Actor:
        return Actor.from_model(self.require_user())

    async def visible_classes(self, actor: Actor) -> tuple[list, list[str], dict]:
        """The classes ``actor`` may see, their relation to each, and (when they are a
        student in any) their own servers by name, for the list API and the home page."""
        if actor.admin:
            records = await self.store.list_all()
        else:
            records = await self.store.list_for(actor.name)
        roles = [relation(actor, r) for r in records]
        servers: dict = {}
        if STUDENT in roles:
            model = (
                await self.hub.get_user(actor.name, include_stopped_servers=True, stale_ok=True)
                or {}
            )
            servers = model.get("servers") or {}
        return records, roles, servers

    # tornado has already URL-decoded path arguments
    def code_arg(self, raw: str) -> str:
        return check_code(raw)

    def username_arg(self, raw: str) -> str:
        return check_username(raw)

    async def sync_groups(self, code: str) -> str:
        """Bring the hub's groups in step; never fails the request (already written)."""
        try:
            await self.sync.sync(code)
        except (Unavailable, HubAPIError) as e:
            self.log.warning("Hub groups of %s not synced yet (will retry): %s", code, e)
            return SYNC_PENDING
        return SYNCED

    async def require_hub_users(self, names: list[str], what: str) -> None:
        if not names:
            return
        found = await self.hub.existing_users(names, concurrency=self.hub_concurrency)
        unknown = [n for n in names if n not in found]
        if unknown:
            raise BadRequest(
                f"Not users of this hub: {', '.join(unknown)[:300]}. A {what} must have a hub "
                "account (created by an administrator, or by signing in once)."
            )

    async def stop_servers(self, users: list[str], code: str) -> list[str]:
        gate = asyncio.Semaphore(self.hub_concurrency)

        async def stop(name: str) -> str | None:
            async with gate:
                try:
                    await self.hub.stop_server(name, code)
                except HubNotFound:
                    return None
            return name

        stopped = await asyncio.gather(*(stop(n) for n in users))
        return [n for n in stopped if n]


class HomeHandler(ClassesHandler):
    """``GET <prefix>``: signs a browser in (OAuth through the hub). The pages replace
    it with the "my classes" page."""

    same_origin_home = True  # pages of other services read the XSRF token here

    @web.authenticated
    async def get(self):
        user = self.require_user()
        self.write_json(
            {
                "name": user["name"],
                "admin": bool(user.get("admin")),
                "api": self.settings["service_prefix"] + "api/classes",
                # a page of another service calls this one with it (deleting a person)
                "xsrf": self.xsrf_token.decode("ascii"),
            }
        )


class SettingsHandler(ClassesHandler):
    async def get(self):
        self.require_user()
        # the warm-up's timing, for the schedule's explanation on the class page
        self.write_json({**self.limits.as_json(), "warm_up": self.warm})


class ClassListHandler(ClassesHandler):
    async def get(self):
        actor = self.actor()
        records, roles, servers = await self.visible_classes(actor)
        classes = [
            student_view(r, servers.get(r["code"]), username=actor.name, base_url=self.hub_base_url)
            if role == STUDENT
            else summary_view(r, role)
            for r, role in zip(records, roles, strict=True)
        ]
        self.write_json({"classes": classes})

    async def post(self):
        actor = self.actor()
        require_admin(actor, "create classes")
        body = self.json_body(CREATE_FIELDS, required=("code", "name"))
        record = new_class(body, self.limits, creator=actor.name, now=self.clock())
        if await self.store.get(record["code"]) is not None:
            raise Conflict(
                f"A class with the code {record['code']!r} exists already; choose another code."
            )
        await self.require_hub_users(record["teachers"], "teacher")
        record = await self.store.create(record)
        view = full_view(record, relation(actor, record))
        view["hub_sync"] = await self.sync_groups(record["code"])
        self.write_json(view, status=201)


class ClassHandler(ClassesHandler):
    async def get(self, code):
        actor = self.actor()
        record = await self.store.require(self.code_arg(code))
        role = require_see(actor, record)
        if role != STUDENT:
            self.write_json(full_view(record, role))
            return
        model = (
            await self.hub.get_user(actor.name, include_stopped_servers=True, stale_ok=True) or {}
        )
        server = (model.get("servers") or {}).get(record["code"])
        self.write_json(
            student_view(record, server, username=actor.name, base_url=self.hub_base_url)
        )

    async def patch(self, code):
        actor = self.actor()
        code = self.code_arg(code)
        body = self.json_body(ADMIN_FIELDS)
        if not body:
            raise BadRequest(
                f"Nothing to change: send one or more of {', '.join(sorted(ADMIN_FIELDS))}."
            )
        record = await self.store.require(code)
        role = require_edit(actor, record, body)
        changes = class_changes(body, self.limits, record)
        if "teachers" in changes:
            new = [t for t in changes["teachers"] if t not in record.get("teachers", ())]
            await self.require_hub_users(new, "teacher")
        updated = await self.store.update(code, changes, now=self.clock())
        view = full_view(updated, role)
        if changes.keys() <= COSMETIC_FIELDS:
            self.sync.sync_soon(code)
            view["hub_sync"] = SYNC_QUEUED
        else:
            view["hub_sync"] = await self.sync_groups(code)
        if changes.get("archived") and not record.get("archived"):
            active = active_servers(await self.hub.active_users(), code)
            view["stopped_servers"] = await self.stop_servers(sorted(active), code)
            self.log.info(
                "%s archived class %s; stopped %d server(s)",
                actor.name,
                code,
                len(view["stopped_servers"]),
            )
        self.write_json(view)

    async def delete(self, code):
        """``DELETE api/classes/<code>?confirm=<code>``: delete an archived class (admins).
        Its hub groups go (nobody can start its servers), then its record, and its code
        is retired (never given to a new class: the grades and files services keep its
        assignments, submissions and material under it); its students' class homes (their
        files) stay until an admin removes the volumes."""
        actor = self.actor()
        code = self.code_arg(code)
        require_admin(actor, "delete classes")
        record = await self.store.require(code)
        if not record.get("archived"):
            raise Conflict(
                f"Class {code!r} is not archived: archive it first (that stops its servers), "
                "then delete it."
            )
        if self.get_query_argument("confirm", "") != code:
            raise BadRequest(
                f"Deleting class {code!r} cannot be undone: confirm with ?confirm={code}."
            )
        active = active_servers(await self.hub.active_users(fresh=True), code)
        await self.stop_servers(sorted(active), code)
        for group in (class_group(code), teachers_group(code)):
            await self.hub.delete_group(group)
        await self.store.delete(code, actor=actor.name, now=self.clock())
        self.log.info("%s deleted archived class %s", actor.name, code)
        self.set_status(204)
        self.finish()


class CopyHandler(ClassesHandler):
    """``POST api/classes/<code>/copy`` ``{"code", "name"?, "term"?}``: a new class for a
    new term with the original's teachers and environment, no students (admins, who
    create classes). Material and assignments live in the files and grades services: the
    class page's script then asks each of them (``POST api/classes/<new>/copy`` of the
    files service, ``POST api/classes/<new>/copy-assignments`` of the grades service) as
    the same person, and each checks that person's rights on both classes itself. No
    service calls another: nothing here holds a credential of the files or grades
    service, and the copy can take nothing the person could not read."""

    async def post(self, code):
        actor = self.actor()
        original = await self.store.require(self.code_arg(code))
        require_admin(actor, "copy classes")
        body = self.json_body(COPY_FIELDS, required=("code",))
        record = new_class(
            copy_request(original, body), self.limits, creator=actor.name, now=self.clock()
        )
        if await self.store.get(record["code"]) is not None:
            raise Conflict(
                f"A class with the code {record['code']!r} exists already; choose another code."
            )
        await self.require_hub_users(record["teachers"], "teacher")
        record = await self.store.create(record)
        self.log.info("%s copied class %s to %s", actor.name, original["code"], record["code"])
        view = full_view(record, relation(actor, record))
        view["copied_from"] = original["code"]
        view["hub_sync"] = await self.sync_groups(record["code"])
        self.write_json(view, status=201)


class RosterHandler(ClassesHandler):
    async def get(self, code):
        record = await self.store.require(self.code_arg(code))
        require_manage(self.actor(), record, "see its roster")
        self.write_json({"code": record["code"], "students": list(record.get("students", []))})

    async def post(self, code):
        actor = self.actor()
        code = self.code_arg(code)
        body = self.json_body({"username"}, required=("username",))
        name = check_username(body["username"])
        record = await self.store.require(code)
        rel = require_manage(actor, record, "change its roster")
        if name in record.get("students", ()):
            self.write_json(
                {
                    "code": code,
                    "username": name,
                    "added": False,
                    "message": f"{name} is already on the roster.",
                }
            )
            return
        model = await self.hub.get_user(name)
        if model is None:
            raise BadRequest(
                f"{name} is not a user of this hub: create the account first, or fix the name."
            )
        require_student(rel, name, hub_role(model), ENROL_ONLY)
        problem = roster_size_problem(record.get("students", ()), [name], self.limits)
        if problem:
            raise BadRequest(problem)
        await self.store.add_students(code, [name], now=self.clock())
        self.log.info("%s enrolled %s in %s", actor.name, name, code)
        sync = await self.sync_groups(code)
        self.write_json(
            {"code": code, "username": name, "added": True, "hub_sync": sync}, status=201
        )


class StudentHandler(ClassesHandler):
    async def delete(self, code, username):
        actor = self.actor()
        code, name = self.code_arg(code), self.username_arg(username)
        record = await self.store.require(code)
        require_manage(actor, record, "change its roster")
        if name not in record.get("students", ()):
            raise NotFound(f"{name} is not on the roster of class {code!r}.")
        await self.store.remove_students(code, [name], now=self.clock())
        self.log.info("%s removed %s from %s", actor.name, name, code)
        await self.sync_groups(code)
        try:
            await self.stop_servers([name], code)
        except (Unavailable, HubAPIError) as e:
            self.log.warning("Could not stop %s/%s after unenrolling: %s", name, code, e)
        self.set_status(204)
        self.finish()


class PersonHandler(ClassesHandler):
    """``DELETE api/people/<name>`` (admins): take a person off every roster and teacher
    list, before or after their account is deleted, and stop their class servers (their
    home volumes stay: removing them is a separate, confirmed step)."""

    async def delete(self, username):
        actor = self.actor()
        require_admin(actor, "remove people from every class")
        name = self.username_arg(username)
        records = await self.store.list_for(name)
        changed = []
        for record in records:
            code = record["code"]
            if name in record.get("students", ()):
                await self.store.remove_students(code, [name], now=self.clock())
            if name in record.get("teachers", ()):
                teachers = [t for t in record["teachers"] if t != name]
                await self.store.update(code, {"teachers": teachers}, now=self.clock())
            await self.sync_groups(code)
            changed.append(code)
        active = await self.hub.active_users(fresh=True)
        stopped = []
        for code in changed:
            running = active_servers(active, code)
            if name in running and await self.stop_servers([name], code):
                stopped.append(code)
        self.log.info("%s took %s off %d class(es)", actor.name, name, len(changed))
        self.write_json({"username": name, "classes": changed, "stopped_servers": stopped})


class ImportHandler(ClassesHandler):
    async def post(self, code):
        actor = self.actor()
        code = self.code_arg(code)
        body = self.json_body({"csv"}, required=("csv",))
        record = await self.store.require(code)
        rel = require_manage(actor, record, "change its roster")
        rows = roster_csv.parse_roster_csv(body["csv"], max_rows=self.limits.max_students)
        names = [r.username for r in rows if not r.error and not r.duplicate_of]
        models = await self.hub.user_models(names, concurrency=self.hub_concurrency)
        refused = {
            n: problem
            for n, m in models.items()
            if (problem := student_problem(rel, n, hub_role(m), ENROL_ONLY))
        }
        enrolled = set(record.get("students", ()))
        report = roster_csv.build_report(
            rows, hub_users=set(models), enrolled=enrolled, refused=refused
        )
        if not report.applied:
            # the error shape ({"status", "message"}) plus the per-row report
            self.write_json({"status": 400, "code": code, **report.as_json()}, status=400)
            return
        problem = roster_size_problem(enrolled, report.to_add, self.limits)
        if problem:
            raise BadRequest(problem)
        result = {"code": code, **report.as_json()}
        if report.to_add:
            await self.store.add_students(code, report.to_add, now=self.clock())
            self.log.info("%s imported %d student(s) into %s", actor.name, len(report.to_add), code)
            result["hub_sync"] = await self.sync_groups(code)
        self.write_json(result)


class AccountsHandler(ClassesHandler):
    """New student accounts for the class, enrolled in it: ``{"username", "password"?}``
    (empty password: generated, in the answer once) or ``{"csv"}`` (the accounts CSV
    format; every row a student). The hub creates them (students only: the service's
    token reaches nothing else) and the teacher is named in its audit log."""

    async def post(self, code):
        actor = self.actor()
        code = self.code_arg(code)
        body = self.json_body({"username", "password", "csv"})
        if ("csv" in body) == ("username" in body):
            raise BadRequest(
                "Send a 'username' (and a 'password', or none to generate one), or a 'csv' file."
            )
        record = await self.store.require(code)
        require_manage(actor, record, "create student accounts for it")
        current = record.get("students", ())
        room = self.limits.max_students - len(current)
        if room < 1:
            raise BadRequest(roster_size_problem(current, ["new"], self.limits))
        payload = {**body, "by": actor.name, "max_accounts": room}
        try:
            out = await self.hub.request("POST", "/classhub/student-accounts", body=payload)
        except HubConflict as e:
            raise Conflict(
                f"{e.hub_message} Enrol an existing student on the roster instead."
            ) from None
        except HubBadRequest as e:
            raise BadRequest(e.hub_message) from None
        if "csv" in body:
            names = [r["username"] for r in out["rows"] if r["status"] == "created"]
        else:
            names = [out["username"]]
        await self.store.add_students(code, names, now=self.clock())
        self.log.info("%s created %d student account(s) in %s", actor.name, len(names), code)
        out.update(code=code, enrolled=names, hub_sync=await self.sync_groups(code))
        self.write_json(out, status=201)


class StudentPasswordHandler(ClassesHandler):
    """A new password for a student on the class's roster: ``{"password"}``, or ``{}`` to
    generate one (in the answer once). Their live session ends."""

    async def post(self, code, username):
        actor = self.actor()
        code, name = self.code_arg(code), self.username_arg(username)
        body = self.json_body({"password"})
        record = await self.store.require(code)
        require_manage(actor, record, "reset its students' passwords")
        if name not in record.get("students", ()):
            raise NotFound(f"{name} is not on the roster of class {code!r}.")
        payload = {"by": actor.name}
        if body.get("password"):
            payload["password"] = body["password"]
        else:
            payload["generate_password"] = True
        try:
            out = await self.hub.request(
                "PATCH", f"/classhub/student-accounts/{q(name)}", body=payload
            )
        except HubConflict as e:
            raise Conflict(e.hub_message) from None
        except HubBadRequest as e:
            raise BadRequest(e.hub_message) from None
        self.log.info("%s reset the password of %s (class %s)", actor.name, name, code)
        self.write_json(out)


class JoinCodeHandler(ClassesHandler):
    """A new random join code for the class (the old one stops working)."""

    async def post(self, code):
        actor = self.actor()
        code = self.code_arg(code)
        self.json_body(())
        record = await self.store.require(code)
        require_manage(actor, record, "change its join code")
        record = await self.store.set_join_code(code, new_join_code(), now=self.clock())
        self.log.info("%s made a new join code for %s", actor.name, code)
        self.write_json({"code": code, "join_code": shown_join_code(record["join_code"])})


class JoinHandler(ClassesHandler):
    """A signed-in student enrols themself with a class's join code ``{"join_code"}``.

    Off unless the admin turns it on (``ClassesApp.join_codes``). Wrong codes count
    against the account and the address (``join_limiter``); the answer to a wrong code is
    the same whether or not any class exists, and never names one."""

    join_codes: bool
    join_limiter: JoinLimiter

    async def post(self):
        if not self.join_codes:
            raise NotFound(
                "Joining a class with a code is switched off on this hub; "
                "ask your teacher to add you."
            )
        actor = self.actor()
        body = self.json_body({"join_code"}, required=("join_code",))
        address = self.request.remote_ip or ""
        now = self.clock()
        wait = self.join_limiter.retry_after(actor.name, address, now)
        if wait > 0:
            # answered here, not raised: an error answer drops the headers set before it
            minutes = max(1, round(wait / 60))
            self.set_header("Retry-After", str(int(wait) + 1))
            message = f"Too many wrong join codes; try again in {minutes} minute(s)."
            self.write_json({"status": 429, "message": message}, status=429)
            return
        join_code = normal_join_code(body["join_code"])
        record = await self.store.find_by_join_code(join_code) if join_code else None
        if record is None or record.get("archived"):
            self.join_limiter.failed(actor.name, address, now)
            self.log.info("%s tried a wrong join code", actor.name)
            raise BadRequest(WRONG)
        code = record["code"]
        if actor.name in record.get("teachers", ()) or actor.name in record.get("students", ()):
            self.write_json(
                {
                    "code": code,
                    "name": record["name"],
                    "joined": False,
                    "message": f"You are in {record['name']} already.",
                }
            )
            return
        model = await self.hub.get_user(actor.name)
        if model is None or hub_role(model) != STUDENT:
            raise Forbidden("Only students join classes with a code; ask an administrator.")
        problem = roster_size_problem(record.get("students", ()), [actor.name], self.limits)
        if problem:
            raise BadRequest("This class is full; ask your teacher.")
        await self.store.add_students(code, [actor.name], now=now)
        self.log.info("%s joined %s with its join code", actor.name, code)
        sync = await self.sync_groups(code)
        self.write_json(
            {"code": code, "name": record["name"], "joined": True, "hub_sync": sync}, status=201
        )


class SignupHandler(ClassesHandler):
    """``POST api/signup`` ``{"join_code", "username", "password"}``, without a sign-in: a
    new local student account, on the roster of the class whose join code it is (when
    the admin turns it on, ``ClassesApp.join_code_signup``). The hub makes the account as
    for a teacher (the service's student-accounts scope: students only, never a name that
    exists); the person then signs in with it. Per address: wrong codes count as for
    joining (``join_limiter``), and every sign-up counts against ``signup_limiter``
    (accounts per hour); over either, 429 with ``Retry-After``. A wrong code is answered
    the same whether or not any class exists."""

    join_code_signup: bool
    join_limiter: JoinLimiter
    signup_limiter: JoinLimiter

    def _too_many(self, wait: float, what: str) -> None:
        minutes = max(1, round(wait / 60))
        self.set_header("Retry-After", str(int(wait) + 1))
        message = f"Too many {what} from your network; try again in {minutes} minute(s)."
        self.write_json({"status": 429, "message": message}, status=429)

    async def post(self):
        if not self.join_code_signup:
            raise NotFound(
                "Signing up with a join code is switched off on this hub; ask your teacher "
                "for an account."
            )
        # nobody is signed in, so the hub's check (made when a cookie signs someone in)
        # has not run: the sign-up page's token is required here, against forged forms
        self.check_xsrf_cookie()
        body = self.json_body(
            {"join_code", "username", "password"}, required=("join_code", "username", "password")
        )
        address = self.request.remote_ip or ""
        key = "signup@" + address  # no account yet: the address is the key of both counts
        now = self.clock()
        wait = self.join_limiter.retry_after(key, address, now)
        if wait > 0:
            self._too_many(wait, "wrong join codes")
            return
        wait = self.signup_limiter.retry_after(key, address, now)
        if wait > 0:
            self._too_many(wait, "sign-ups")
            return
        name = self.username_arg(body["username"])
        password = body["password"]
        if not isinstance(password, str) or not password:
            raise BadRequest("Choose a password.")
        join_code = normal_join_code(body["join_code"])
        record = await self.store.find_by_join_code(join_code) if join_code else None
        if record is None or record.get("archived"):
            self.join_limiter.failed(key, address, now)
            self.log.info("A sign-up with a wrong join code")
            raise BadRequest(WRONG)
        code = record["code"]
        problem = roster_size_problem(record.get("students", ()), [name], self.limits)
        if problem:
            raise BadRequest("This class is full; ask your teacher.")
        self.signup_limiter.failed(key, address, now)  # every attempt past here counts
        payload = {"username": name, "password": password, "by": name, "max_accounts": 1}
        try:
            await self.hub.request("POST", "/classhub/student-accounts", body=payload)
        except HubConflict:
            raise Conflict(
                f"The name {name} is taken. Choose another one, or sign in if it is yours."
            ) from None
        except HubBadRequest as e:
            raise BadRequest(e.hub_message) from None
        await self.store.add_students(code, [name], now=now)
        self.log.info("%s signed up with the join code of %s", name, code)
        self.write_json(
            {
                "username": name,
                "code": code,
                "name": record["name"],
                "hub_sync": await self.sync_groups(code),
            },
            status=201,
        )


class BulkServersHandler(ClassesHandler):
    """``POST api/classes/<code>/servers`` ``{"action": "start" | "stop"}``: start or stop
    the class server of everybody on the roster (the class's teachers and admins). The
    hub calls go through the service's own ``start:servers`` / ``delete:servers`` scopes,
    at most ``hub_concurrency`` at a time; the hub's start queue
    (``ClassroomSpawner.start_concurrency``) then starts the containers in turn. The answer
    lists who was started or stopped, who already was, who was skipped and why, and the
    hub's refusals."""

    async def post(self, code):
        actor = self.actor()
        code = self.code_arg(code)
        body = self.json_body({"action"}, required=("action",))
        action = body["action"]
        if action not in (START, STOP):
            raise BadRequest('"action" must be "start" or "stop".')
        record = await self.store.require(code)
        rel = require_manage(actor, record, f"{action} its servers")
        if action == START and record.get("archived"):
            raise Conflict(f"Class {code!r} is archived: its servers cannot start.")
        roster = list(record.get("students", ()))
        active = active_servers(await self.hub.active_users(fresh=True), code)
        models = await self.hub.user_models(roster, concurrency=self.hub_concurrency)
        problems = {
            n: (
                student_problem(rel, n, hub_role(models[n]), SERVERS_ONLY)
                if n in models
                else f"{n} is not a user of this hub any more."
            )
            for n in roster
        }
        plan = plan_bulk(action, roster, active, problems)
        failed = await self._run(action, plan["act"], code)
        done = [n for n in plan["act"] if n not in failed]
        self.log.info(
            "%s: %s all of %s: %d done, %d unchanged, %d skipped, %d failed",
            actor.name,
            action,
            code,
            len(done),
            len(plan["unchanged"]),
            len(plan["skipped"]),
            len(failed),
        )
        self.write_json(
            {
                "code": code,
                "action": action,
                "done": done,
                "unchanged": plan["unchanged"],
                "skipped": plan["skipped"],
                "failed": failed,
            }
        )

    async def _run(self, action: str, names: list[str], code: str) -> dict[str, str]:
        """Start or stop ``names``' servers, a bounded number at a time; ``{name: why}``
        of the ones the hub refused. Starts are background work in the hub's start
        queue: a student who opens their own server meanwhile goes first."""
        return await run_bulk(
            self.hub, action, names, code, concurrency=self.hub_concurrency, background=True
        )


class ServersHandler(BulkServersHandler):
    async def get(self, code):
        record = await self.store.require(self.code_arg(code))
        require_manage(self.actor(), record, "see its servers")
        active = active_servers(await self.hub.active_users(stale_ok=True), record["code"])
        self.write_json(
            {
                "code": record["code"],
                "servers": roster_servers(
                    record.get("students", []), active, record["code"], self.hub_base_url
                ),
            }
        )


class ServerHandler(ClassesHandler):
    async def _target(self, code: str, username: str) -> tuple[dict, str]:
        code, name = self.code_arg(code), self.username_arg(username)
        record = await self.store.require(code)
        actor = self.actor()
        rel = require_server_control(actor, record, name)
        if rel == TEACHER and name != actor.name:
            # only students: never an admin or a teacher an admin put on the roster
            model = await self.hub.get_user(name)
            if model is None:
                raise NotFound(f"{name} is not a user of this hub any more.")
            require_student(rel, name, hub_role(model), SERVERS_ONLY)
        return record, name

    async def _state(self, name: str, code: str) -> dict:
        model = await self.hub.get_user(name)
        if model is None:
            raise NotFound(f"{name} is not a user of this hub any more.")
        return server_state((model.get("servers") or {}).get(code))

    async def post(self, code, username):
        record, name = await self._target(code, username)
        code = record["code"]
        if record.get("archived"):
            raise Conflict(f"Class {code!r} is archived: its servers cannot start.")
        state = await self._state(name, code)
        if state["state"] == "stopped":
            try:
                await self.hub.start_server(name, code)
            except HubBadRequest as e:
                # started or stopping meanwhile is fine; anything else is the hub's refusal
                if (await self._state(name, code))["state"] == "stopped":
                    raise Conflict(
                        f"JupyterHub refused to start {name}'s server: {e.hub_message}"
                    ) from None
            except Unavailable as e:
                if getattr(e, "status", 0) >= 500 and getattr(e, "hub_message", ""):
                    raise BadGateway(
                        f"JupyterHub could not start {name}'s server: {e.hub_message}"
                    ) from None
                raise
            except HubAPIError as e:
                raise BadGateway(
                    f"JupyterHub refused to start {name}'s server: {e.hub_message}"
                ) from None
            self.log.info("%s started %s/%s", self.current_user["name"], name, code)
            state = await self._state(name, code)
        status = 200 if state["state"] == "running" else 202
        self.write_json({"code": code, "username": name, **state}, status=status)

    async def delete(self, code, username):
        record, name = await self._target(code, username)
        code = record["code"]
        stopped = await self.stop_servers([name], code)
        if stopped:
            self.log.info("%s stopped %s/%s", self.current_user["name"], name, code)
        state = await self._state(name, code)
        status = 200 if state["state"] == "stopped" else 202
        self.write_json({"code": code, "username": name, **state}, status=status)


def class_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    code = r"([^/]+)"
    name = r"([^/]+)"
    return [
        ("", HomeHandler, deps),
        ("api/settings", SettingsHandler, deps),
        ("api/classes", ClassListHandler, deps),
        (f"api/classes/{code}", ClassHandler, deps),
        (f"api/classes/{code}/students", RosterHandler, deps),
        (f"api/classes/{code}/students/{name}", StudentHandler, deps),
        (f"api/classes/{code}/import", ImportHandler, deps),
        (f"api/classes/{code}/accounts", AccountsHandler, deps),
        (f"api/classes/{code}/join-code", JoinCodeHandler, deps),
        ("api/join", JoinHandler, deps),
        ("api/signup", SignupHandler, deps),
        (f"api/classes/{code}/students/{name}/password", StudentPasswordHandler, deps),
        (f"api/classes/{code}/copy", CopyHandler, deps),
        (f"api/people/{name}", PersonHandler, deps),
        (f"api/classes/{code}/servers", ServersHandler, deps),
        (f"api/classes/{code}/servers/{name}", ServerHandler, deps),
    ]
