-- Assignments, extensions, submissions, grades and the audit log. Applied by
-- services.base.pgmigrate inside one transaction, after classhub_grades and
-- classhub_grades.schema_migrations exist; no BEGIN/COMMIT here.
--
-- services/grades/rules.py is the real validation (with messages a teacher understands);
-- the constraints below stop broken rows written by hand or by a bug, and the store turns
-- their violations into 400/409 answers.

-- ----------------------------------------------------------------------------- assignments

CREATE TABLE classhub_grades.assignments (
    id                   bigserial PRIMARY KEY,
    class_code           text NOT NULL,
    -- the assignment's folder name (submissions/<code>/<slug>/... in the object store)
    slug                 text NOT NULL,
    title                text NOT NULL,
    instructions         text NOT NULL DEFAULT '',
    max_points           numeric(8, 2) NOT NULL,
    release_at           timestamptz,
    due_at               timestamptz,
    late_policy          text NOT NULL DEFAULT 'accept',
    late_penalty_percent numeric(5, 2) NOT NULL DEFAULT 0,
    -- paths inside the class's material, copied to a student when they start
    starting_files       text[] NOT NULL DEFAULT '{}',
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_by           text,
    updated_at           timestamptz,
    -- archived assignments are hidden, never deleted: their submissions and grades stay,
    -- and so does their slug (a new assignment with it would reuse the storage keys)
    archived_at          timestamptz,
    -- optimistic concurrency for edits: +1 on every update
    revision             integer NOT NULL DEFAULT 1,
    CONSTRAINT assignments_class_slug_key UNIQUE (class_code, slug),
    CONSTRAINT assignments_class_code_check
        CHECK (class_code ~ '^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$'),
    CONSTRAINT assignments_slug_check CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    CONSTRAINT assignments_title_check
        CHECK (title = btrim(title) AND char_length(title) BETWEEN 1 AND 200),
    CONSTRAINT assignments_max_points_check CHECK (max_points > 0 AND max_points <= 10000),
    CONSTRAINT assignments_dates_check
        CHECK (release_at IS NULL OR due_at IS NULL OR due_at > release_at),
    CONSTRAINT assignments_late_policy_check CHECK (late_policy IN ('refuse', 'accept')),
    CONSTRAINT assignments_late_penalty_check CHECK (
        late_penalty_percent BETWEEN 0 AND 100
        AND (late_policy = 'accept' OR late_penalty_percent = 0)
    ),
    CONSTRAINT assignments_created_by_check CHECK (created_by <> ''),
    CONSTRAINT assignments_revision_check CHECK (revision >= 1)
);

-- ----------------------------------------------------------------------------- extensions

CREATE TABLE classhub_grades.extensions (
    assignment_id bigint NOT NULL
        REFERENCES classhub_grades.assignments (id) ON DELETE CASCADE,
    username      text NOT NULL,
    -- replaces the assignment's due date for this student (never makes it earlier)
    due_at        timestamptz NOT NULL,
    granted_by    text NOT NULL,
    granted_at    timestamptz NOT NULL DEFAULT now(),
    reason        text NOT NULL DEFAULT '',
    PRIMARY KEY (assignment_id, username),
    CONSTRAINT extensions_username_check
        CHECK (username <> '' AND char_length(username) <= 128 AND username = btrim(username)),
    CONSTRAINT extensions_granted_by_check CHECK (granted_by <> '')
);

-- ----------------------------------------------------------------------------- submissions

CREATE TABLE classhub_grades.submissions (
    id              bigserial PRIMARY KEY,
    -- no cascade: submissions outlive nothing by accident (assignments are archived)
    assignment_id   bigint NOT NULL REFERENCES classhub_grades.assignments (id),
    username        text NOT NULL,
    version         integer NOT NULL,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    -- the due date that applied to this student then (an extension included); NULL: none
    due_at_then     timestamptz,
    late            boolean NOT NULL DEFAULT false,
    -- the late penalty that applied then (0 when on time)
    penalty_percent numeric(5, 2) NOT NULL DEFAULT 0,
    -- where the snapshot is in the object store
    storage_key     text NOT NULL,
    content_sha256  char(64) NOT NULL,
    size_bytes      bigint NOT NULL,
    files           integer NOT NULL,
    -- the teacher who collected it from the student's folder; NULL: handed in by the student
    collected_by    text,
    CONSTRAINT submissions_version_key UNIQUE (assignment_id, username, version),
    CONSTRAINT submissions_storage_key_key UNIQUE (storage_key),
    CONSTRAINT submissions_username_check
        CHECK (username <> '' AND char_length(username) <= 128 AND username = btrim(username)),
    CONSTRAINT submissions_version_check CHECK (version >= 1),
    CONSTRAINT submissions_storage_key_check CHECK (storage_key <> ''),
    CONSTRAINT submissions_sha256_check CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT submissions_size_check CHECK (size_bytes >= 0),
    CONSTRAINT submissions_files_check CHECK (files >= 0),
    CONSTRAINT submissions_late_check CHECK (
        penalty_percent BETWEEN 0 AND 100
        AND (late OR penalty_percent = 0)
        AND (NOT late OR (due_at_then IS NOT NULL AND submitted_at > due_at_then))
    ),
    CONSTRAINT submissions_collected_by_check CHECK (collected_by IS NULL OR collected_by <> '')
);

-- a student's own submissions (all assignments)
CREATE INDEX submissions_username_idx ON classhub_grades.submissions (username, assignment_id);

-- ----------------------------------------------------------------------------- grades

-- exactly one current grade per submission version; its history is in the audit log
CREATE TABLE classhub_grades.grades (
    submission_id bigint PRIMARY KEY
        REFERENCES classhub_grades.submissions (id) ON DELETE CASCADE,
    points        numeric(8, 2) NOT NULL,
    feedback      text NOT NULL DEFAULT '',
    graded_by     text NOT NULL,
    graded_at     timestamptz NOT NULL DEFAULT now(),
    -- when the student was shown it; NULL: not yet (students never see unreturned grades)
    returned_at   timestamptz,
    returned_by   text,
    -- optimistic concurrency: a change names the revision it saw, +1 on every change
    revision      integer NOT NULL DEFAULT 1,
    CONSTRAINT grades_points_check CHECK (points >= 0),
    CONSTRAINT grades_graded_by_check CHECK (graded_by <> ''),
    CONSTRAINT grades_revision_check CHECK (revision >= 1),
    CONSTRAINT grades_returned_check CHECK ((returned_at IS NULL) = (returned_by IS NULL))
);

-- points <= the assignment's max_points: a CHECK cannot look at another table. The
-- assignment row is read FOR SHARE, so a concurrent change of max_points waits (or is
-- waited for) instead of slipping past the check below.
CREATE FUNCTION classhub_grades.grades_points_max() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    maximum numeric;
BEGIN
    SELECT a.max_points INTO maximum
      FROM classhub_grades.submissions s
      JOIN classhub_grades.assignments a ON a.id = s.assignment_id
     WHERE s.id = NEW.submission_id
       FOR SHARE OF a;
    IF maximum IS NOT NULL AND NEW.points > maximum THEN
        RAISE EXCEPTION '% points is more than this assignment''s maximum of %',
                NEW.points, maximum
            USING ERRCODE = 'check_violation', CONSTRAINT = 'grades_points_max_check',
                  SCHEMA = 'classhub_grades', TABLE = 'grades';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER grades_points_max
    BEFORE INSERT OR UPDATE OF points, submission_id ON classhub_grades.grades
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.grades_points_max();

-- and max_points cannot drop below a grade already given
CREATE FUNCTION classhub_grades.assignments_max_points_grades() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    above integer;
BEGIN
    SELECT count(*) INTO above
      FROM classhub_grades.grades g
      JOIN classhub_grades.submissions s ON s.id = g.submission_id
     WHERE s.assignment_id = NEW.id AND g.points > NEW.max_points;
    IF above > 0 THEN
        RAISE EXCEPTION '% grade(s) of this assignment are above the new maximum of % points; '
                        'change them first', above, NEW.max_points
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'assignments_max_points_grades_check',
                  SCHEMA = 'classhub_grades', TABLE = 'assignments';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER assignments_max_points_grades
    BEFORE UPDATE OF max_points ON classhub_grades.assignments
    FOR EACH ROW WHEN (NEW.max_points < OLD.max_points)
    EXECUTE FUNCTION classhub_grades.assignments_max_points_grades();

-- ----------------------------------------------------------------------------- audit log

-- who changed what, append-only; no foreign keys, so it outlives what it describes
CREATE TABLE classhub_grades.audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    action        text NOT NULL,
    class_code    text,
    assignment_id bigint,
    submission_id bigint,
    username      text,
    old           jsonb,
    new           jsonb,
    CONSTRAINT audit_log_actor_check CHECK (actor <> ''),
    CONSTRAINT audit_log_action_check CHECK (action ~ '^[a-z_]+\.[a-z_]+$')
);

CREATE INDEX audit_log_assignment_idx ON classhub_grades.audit_log (assignment_id, id)
    WHERE assignment_id IS NOT NULL;
CREATE INDEX audit_log_submission_idx ON classhub_grades.audit_log (submission_id, id)
    WHERE submission_id IS NOT NULL;
CREATE INDEX audit_log_class_idx ON classhub_grades.audit_log (class_code, id)
    WHERE class_code IS NOT NULL;

CREATE FUNCTION classhub_grades.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the grades audit log is append-only: rows cannot be changed or removed'
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON classhub_grades.audit_log
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON classhub_grades.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION classhub_grades.audit_log_append_only();

COMMENT ON TABLE classhub_grades.assignments IS
    'classhub assignments of a class; managed by the grades service (services.grades.store)';
COMMENT ON TABLE classhub_grades.audit_log IS
    'append-only history of grade, extension and assignment changes (services.grades.store)';
