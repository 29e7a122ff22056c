-- Autograding (docs/autograding.md, "The queue"): the teacher's tests on an assignment,
-- a durable queue of grading jobs, and the results per test of each version.
--
-- 1. autograde_configs: per assignment, the teacher's source notebook (solutions and
--    tests, visible and hidden: read by the grades service only), which file of each
--    version is graded, the image, and the switches (grade on Submit; show hidden tests
--    to students). `revision` rises on every change: a job records the revision it graded.
-- 2. autograde_jobs: one job per version (UNIQUE submission_id: enqueuing the same version
--    twice is one job). Workers claim with FOR UPDATE SKIP LOCKED and a lease
--    (claimed_until) they keep extending while they work (the heartbeat); a job whose
--    worker died (kill -9) stays 'running' with a lapsed lease and is claimed again by
--    another worker. `attempts` counts claims; past the limit the job fails with its
--    reason. A result is written only in the transaction that first checks the claim, so
--    a worker that lost its claim writes nothing.
-- 3. autograde_results and autograde_test_results: the last result of each version
--    (one row per version, one per test), written with the job's end in one transaction.
--    The points feed question_points with source 'auto' (never over a teacher's manual
--    points) and the grade (never over a grade a teacher typed).

CREATE TABLE classhub_grades.autograde_configs (
    assignment_id bigint PRIMARY KEY
        REFERENCES classhub_grades.assignments (id) ON DELETE CASCADE,
    -- the file of each version that is graded (a path inside the assignment's folder)
    notebook_path text NOT NULL,
    -- the teacher's source notebook: the tests come from it, never from the student's copy
    source        jsonb NOT NULL,
    -- plain pytest files: [{name, source, points, visibility, question}] (autograde/pytests.py)
    test_files    jsonb NOT NULL DEFAULT '[]',
    -- of the source notebook and the test files together
    source_sha256 char(64) NOT NULL,
    image         text NOT NULL,
    on_submit     boolean NOT NULL DEFAULT false,
    show_hidden   boolean NOT NULL DEFAULT false,
    revision      integer NOT NULL DEFAULT 1,
    updated_by    text NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT autograde_configs_path_check
        CHECK (notebook_path <> '' AND char_length(notebook_path) <= 500),
    CONSTRAINT autograde_configs_image_check CHECK (image <> ''),
    CONSTRAINT autograde_configs_revision_check CHECK (revision >= 1)
);

CREATE TABLE classhub_grades.autograde_jobs (
    id              bigserial PRIMARY KEY,
    submission_id   bigint NOT NULL
        REFERENCES classhub_grades.submissions (id) ON DELETE CASCADE,
    assignment_id   bigint NOT NULL
        REFERENCES classhub_grades.assignments (id) ON DELETE CASCADE,
    -- the configuration revision to grade against (set at enqueue, again at a re-grade)
    config_revision integer NOT NULL,
    -- queued, running (claimed; a lapsed lease means its worker died), done, failed
    state           text NOT NULL DEFAULT 'queued',
    attempts        integer NOT NULL DEFAULT 0,
    -- failed: why; queued after a failed attempt: why it is retried
    reason          text NOT NULL DEFAULT '',
    -- submit (the assignment's switch) or teacher (grade now)
    trigger         text NOT NULL,
    enqueued_by     text NOT NULL,
    enqueued_at     timestamptz NOT NULL,
    retry_at        timestamptz,
    claim           text,
    claimed_until   timestamptz,
    worker          text,
    started_at      timestamptz,
    finished_at     timestamptz,
    CONSTRAINT autograde_jobs_submission_key UNIQUE (submission_id),
    CONSTRAINT autograde_jobs_state_check
        CHECK (state IN ('queued', 'running', 'done', 'failed')),
    CONSTRAINT autograde_jobs_claim_check
        CHECK ((state = 'running') = (claim IS NOT NULL AND claimed_until IS NOT NULL)),
    CONSTRAINT autograde_jobs_trigger_check CHECK (trigger IN ('submit', 'teacher')),
    CONSTRAINT autograde_jobs_attempts_check CHECK (attempts >= 0)
);

CREATE INDEX autograde_jobs_ready_idx ON classhub_grades.autograde_jobs (enqueued_at, id)
    WHERE state IN ('queued', 'running');
CREATE INDEX autograde_jobs_assignment_idx
    ON classhub_grades.autograde_jobs (assignment_id, state);

CREATE TABLE classhub_grades.autograde_results (
    submission_id   bigint PRIMARY KEY
        REFERENCES classhub_grades.submissions (id) ON DELETE CASCADE,
    job_id          bigint NOT NULL
        REFERENCES classhub_grades.autograde_jobs (id) ON DELETE CASCADE,
    config_revision integer NOT NULL,
    score           numeric(10, 2) NOT NULL,
    points          numeric(10, 2) NOT NULL,
    -- every frame up to the runner's end arrived and was verified
    complete        boolean NOT NULL,
    reason          text NOT NULL DEFAULT '',
    -- run-level flags (tampering found, background processes, problems) and the cells
    -- restored or edited ([{grade_id, kind, message}]), for the teacher
    flags           jsonb NOT NULL DEFAULT '[]',
    cell_flags      jsonb NOT NULL DEFAULT '[]',
    graded_at       timestamptz NOT NULL,
    CONSTRAINT autograde_results_score_check CHECK (score >= 0 AND score <= points)
);

CREATE TABLE classhub_grades.autograde_test_results (
    submission_id bigint NOT NULL
        REFERENCES classhub_grades.autograde_results (submission_id) ON DELETE CASCADE,
    test_id       text NOT NULL,
    position      integer NOT NULL,
    -- pass, fail, error, timeout, died, not-run
    status        text NOT NULL,
    score         numeric(10, 2) NOT NULL,
    points        numeric(10, 2) NOT NULL,
    -- visible, after-due, hidden (what a student may see of it)
    visibility    text NOT NULL,
    message       text NOT NULL DEFAULT '',
    flags         jsonb NOT NULL DEFAULT '[]',
    -- the question whose points it feeds (NULL: the assignment has no questions)
    question_key  text,
    PRIMARY KEY (submission_id, test_id),
    CONSTRAINT autograde_test_results_status_check
        CHECK (status IN ('pass', 'fail', 'error', 'timeout', 'died', 'not-run')),
    CONSTRAINT autograde_test_results_visibility_check
        CHECK (visibility IN ('visible', 'after-due', 'hidden')),
    CONSTRAINT autograde_test_results_score_check CHECK (score >= 0 AND score <= points)
);

COMMENT ON TABLE classhub_grades.autograde_jobs IS
    'the durable autograding queue, one job per version (services.grades.autograde.worker)';

-- Grading on Submit: the job is queued in the transaction that records the version, so a
-- version handed in is never left ungraded by a service that stopped in between.
CREATE FUNCTION classhub_grades.autograde_on_submit() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind = 'submit' THEN
        INSERT INTO classhub_grades.autograde_jobs
            (submission_id, assignment_id, config_revision, trigger, enqueued_by, enqueued_at)
        SELECT NEW.id, NEW.assignment_id, c.revision, 'submit', NEW.username, NEW.submitted_at
          FROM classhub_grades.autograde_configs c
         WHERE c.assignment_id = NEW.assignment_id AND c.on_submit
        ON CONFLICT (submission_id) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER autograde_on_submit
    AFTER INSERT ON classhub_grades.submissions
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.autograde_on_submit();
