-- Deadlines a teacher can trust: the deadline is a snapshot, the teacher chooses
-- the version that counts and the late penalty per student, questions with points.
--
-- 1. submissions.kind: how a version was taken (submit: the student; collect: a teacher's
--    Collect now; deadline: the grades service itself at the student's deadline), and
--    deadline_for: the deadline a deadline snapshot stands for (it is on time against it
--    by construction, even when taken late because the service was down; submitted_at
--    stays when it was really taken). On time or late is no longer read from the stored
--    `late` flag: services/grades/standing.py decides it from the version's time and the
--    student's CURRENT deadline (`late` and `penalty_percent` stay as they were when the
--    version was taken, for the record).
-- 2. deadline_snapshots: the durable schedule of those snapshots, one row per (assignment,
--    student) with the student's own deadline. An assignment's round (when its due date
--    comes) reads the roster and plans a row for every student; the service claims due
--    rows (FOR UPDATE SKIP LOCKED, a lease) and records the snapshot and the row's end in
--    ONE transaction that first checks its claim, so each is taken exactly once, across
--    restarts, and rows still pending after an outage are taken when the service is back.
-- 3. student_choices: per (assignment, student), the version the teacher chose to count
--    and the teacher's late penalty (0: waived), each with who, when and why.
-- 4. questions and question_points (the grade is their sum; `source` manual or auto, for
--    the autograding to come).
-- 5. The gradebook generation (0004) also rises with what the counting version and the
--    lateness now depend on: extensions, the late policy and penalty, choices, questions.

-- ----------------------------------------------------------------------------- 1. kinds

ALTER TABLE classhub_grades.submissions
    ADD COLUMN kind text NOT NULL DEFAULT 'submit',
    ADD COLUMN deadline_for timestamptz;

UPDATE classhub_grades.submissions SET kind = 'collect' WHERE collected_by IS NOT NULL;

ALTER TABLE classhub_grades.submissions
    ADD CONSTRAINT submissions_kind_check CHECK (
        kind IN ('submit', 'collect', 'deadline')
        AND (kind = 'collect') = (collected_by IS NOT NULL)
        AND (kind = 'deadline') = (deadline_for IS NOT NULL)
    ),
    -- what student_choices' foreign key names: a version of THIS student and assignment
    ADD CONSTRAINT submissions_id_owner_key UNIQUE (id, assignment_id, username);

-- ----------------------------------------------------------------------------- 2. schedule

ALTER TABLE classhub_grades.assignments
    -- the due date whose deadline snapshots were planned (NULL: not planned yet)
    ADD COLUMN deadline_planned_for timestamptz,
    ADD COLUMN deadline_claim text,
    ADD COLUMN deadline_claimed_until timestamptz;

CREATE TABLE classhub_grades.deadline_snapshots (
    assignment_id bigint NOT NULL
        REFERENCES classhub_grades.assignments (id) ON DELETE CASCADE,
    username      text NOT NULL,
    -- the student's own deadline (the due date, or their extension)
    due_at        timestamptz NOT NULL,
    -- pending: to take at due_at; taken: a new version was recorded; unchanged: the folder
    -- was the latest on-time version already; missing: nothing to take (reason says why)
    state         text NOT NULL DEFAULT 'pending',
    -- when the snapshot was taken (or found nothing)
    taken_at      timestamptz,
    -- the version recorded (taken) or found unchanged
    submission_id bigint REFERENCES classhub_grades.submissions (id),
    -- missing: why; pending: why the last attempt failed
    reason        text,
    attempts      integer NOT NULL DEFAULT 0,
    retry_at      timestamptz,
    claim         text,
    claimed_until timestamptz,
    PRIMARY KEY (assignment_id, username),
    CONSTRAINT deadline_snapshots_state_check
        CHECK (state IN ('pending', 'taken', 'unchanged', 'missing')),
    CONSTRAINT deadline_snapshots_done_check CHECK (
        (state = 'pending' OR taken_at IS NOT NULL)
        AND ((state IN ('taken', 'unchanged')) = (submission_id IS NOT NULL))
    ),
    CONSTRAINT deadline_snapshots_username_check
        CHECK (username <> '' AND char_length(username) <= 128 AND username = btrim(username))
);

CREATE INDEX deadline_snapshots_due_idx ON classhub_grades.deadline_snapshots (due_at)
    WHERE state = 'pending';
CREATE INDEX assignments_deadline_due_idx ON classhub_grades.assignments (due_at)
    WHERE due_at IS NOT NULL AND archived_at IS NULL;

-- Assignments whose due date passed before this version: no snapshot is taken for them
-- now (it would hold weeks of later work as "on time"); only extensions still to come get
-- theirs at their time.
UPDATE classhub_grades.assignments SET deadline_planned_for = due_at
 WHERE due_at IS NOT NULL AND due_at <= now();
INSERT INTO classhub_grades.deadline_snapshots (assignment_id, username, due_at)
SELECT e.assignment_id, e.username, e.due_at
  FROM classhub_grades.extensions e
  JOIN classhub_grades.assignments a ON a.id = e.assignment_id
 WHERE a.deadline_planned_for IS NOT NULL AND e.due_at > now() AND e.due_at > a.due_at;

-- ----------------------------------------------------------------------------- 3. choices

CREATE TABLE classhub_grades.student_choices (
    assignment_id         bigint NOT NULL
        REFERENCES classhub_grades.assignments (id) ON DELETE CASCADE,
    username              text NOT NULL,
    -- the version the teacher chose to count (NULL: the default rule)
    counted_submission_id bigint,
    counted_by            text,
    counted_at            timestamptz,
    counted_reason        text NOT NULL DEFAULT '',
    -- the late penalty for this student (NULL: the assignment's; 0: waived)
    penalty_percent       numeric(5, 2),
    penalty_by            text,
    penalty_at            timestamptz,
    penalty_reason        text NOT NULL DEFAULT '',
    PRIMARY KEY (assignment_id, username),
    FOREIGN KEY (counted_submission_id, assignment_id, username)
        REFERENCES classhub_grades.submissions (id, assignment_id, username),
    CONSTRAINT student_choices_penalty_check
        CHECK (penalty_percent IS NULL OR penalty_percent BETWEEN 0 AND 100),
    CONSTRAINT student_choices_penalty_reason_check
        CHECK (penalty_percent IS NULL OR penalty_reason <> '')
);

-- ----------------------------------------------------------------------------- 4. questions

CREATE TABLE classhub_grades.questions (
    assignment_id bigint NOT NULL
        REFERENCES classhub_grades.assignments (id) ON DELETE CASCADE,
    -- q1, q2, ...: never changes, so points given stay with their question
    key           text NOT NULL,
    position      integer NOT NULL,
    label         text NOT NULL,
    points        numeric(8, 2) NOT NULL,
    -- manual, or imported from the starting notebook: tag, heading
    origin        text NOT NULL DEFAULT 'manual',
    PRIMARY KEY (assignment_id, key),
    CONSTRAINT questions_key_check CHECK (key ~ '^q[1-9][0-9]{0,3}$'),
    CONSTRAINT questions_label_check
        CHECK (label = btrim(label) AND char_length(label) BETWEEN 1 AND 200),
    CONSTRAINT questions_points_check CHECK (points > 0 AND points <= 10000),
    CONSTRAINT questions_origin_check CHECK (origin IN ('manual', 'tag', 'heading'))
);

CREATE TABLE classhub_grades.question_points (
    submission_id bigint NOT NULL
        REFERENCES classhub_grades.submissions (id) ON DELETE CASCADE,
    question_key  text NOT NULL,
    points        numeric(8, 2) NOT NULL,
    -- manual: a teacher gave them; auto: the autograding
    source        text NOT NULL DEFAULT 'manual',
    given_by      text NOT NULL,
    given_at      timestamptz NOT NULL,
    PRIMARY KEY (submission_id, question_key),
    CONSTRAINT question_points_points_check CHECK (points >= 0),
    CONSTRAINT question_points_source_check CHECK (source IN ('manual', 'auto'))
);

-- ----------------------------------------------------------------------------- 5. gradebook

CREATE OR REPLACE FUNCTION classhub_grades.gradebook_by_assignment() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM classhub_grades.bump_gradebook(a.class_code)
        FROM classhub_grades.assignments a
        WHERE a.id IN (
            CASE WHEN TG_OP <> 'INSERT' THEN OLD.assignment_id END,
            CASE WHEN TG_OP <> 'DELETE' THEN NEW.assignment_id END
        );
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION classhub_grades.gradebook_by_submission() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM classhub_grades.bump_gradebook(a.class_code)
        FROM classhub_grades.submissions s
        JOIN classhub_grades.assignments a ON a.id = s.assignment_id
        WHERE s.id IN (
            CASE WHEN TG_OP <> 'INSERT' THEN OLD.submission_id END,
            CASE WHEN TG_OP <> 'DELETE' THEN NEW.submission_id END
        );
    RETURN NULL;
END
$$;

-- an extension moves a student's deadline: versions become on time or late
CREATE TRIGGER gradebook_extension_changed
    AFTER INSERT OR UPDATE OR DELETE ON classhub_grades.extensions
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.gradebook_by_assignment();
CREATE TRIGGER gradebook_choice_changed
    AFTER INSERT OR UPDATE OR DELETE ON classhub_grades.student_choices
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.gradebook_by_assignment();
CREATE TRIGGER gradebook_question_changed
    AFTER INSERT OR UPDATE OR DELETE ON classhub_grades.questions
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.gradebook_by_assignment();
CREATE TRIGGER gradebook_question_points_changed
    AFTER INSERT OR UPDATE OR DELETE ON classhub_grades.question_points
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.gradebook_by_submission();
-- a student found missing at the deadline (the reason is shown)
CREATE TRIGGER gradebook_deadline_changed
    AFTER INSERT OR DELETE OR UPDATE OF state, reason ON classhub_grades.deadline_snapshots
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.gradebook_by_assignment();

-- the late policy and penalty now count at read time
DROP TRIGGER IF EXISTS gradebook_assignment_updated ON classhub_grades.assignments;
CREATE TRIGGER gradebook_assignment_updated
    AFTER UPDATE ON classhub_grades.assignments
    FOR EACH ROW
    WHEN ((OLD.class_code, OLD.slug, OLD.title, OLD.max_points, OLD.due_at, OLD.archived_at,
           OLD.late_policy, OLD.late_penalty_percent)
          IS DISTINCT FROM
          (NEW.class_code, NEW.slug, NEW.title, NEW.max_points, NEW.due_at, NEW.archived_at,
           NEW.late_policy, NEW.late_penalty_percent))
    EXECUTE FUNCTION classhub_grades.gradebook_assignment_changed();

COMMENT ON TABLE classhub_grades.deadline_snapshots IS
    'the grades service''s snapshot of each student''s folder at their deadline (services.grades.deadlines)';
