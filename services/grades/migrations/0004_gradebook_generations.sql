-- Gradebook generations (the gradebook of a large class): one counter per class,
-- raised by triggers on every change the gradebook reads (an assignment's slug, title,
-- maximum, due date, archiving or class; a submission; a grade's points). The service keeps
-- the gradebook it last built for a class with the counter it read before building it, and
-- answers from it while the counter (and the class's roster) are unchanged: one indexed
-- read instead of reading and building 6,000 cells on every load. Triggers, not the
-- service, raise the counter, so every writer counts: other service processes, a restore,
-- an administrator's SQL.
--
-- Safe to run twice: the table is created if missing, the functions replaced, the
-- triggers dropped and created again.

CREATE TABLE IF NOT EXISTS classhub_grades.gradebook_generations (
    class_code text PRIMARY KEY,
    generation bigint NOT NULL DEFAULT 0
);

CREATE OR REPLACE FUNCTION classhub_grades.bump_gradebook(code text) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO classhub_grades.gradebook_generations AS g (class_code, generation)
    VALUES (code, 1)
    ON CONFLICT (class_code) DO UPDATE SET generation = g.generation + 1
$$;

CREATE OR REPLACE FUNCTION classhub_grades.gradebook_assignment_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM classhub_grades.bump_gradebook(OLD.class_code);
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.class_code <> OLD.class_code) THEN
        PERFORM classhub_grades.bump_gradebook(NEW.class_code);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION classhub_grades.gradebook_submission_changed() RETURNS trigger
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

CREATE OR REPLACE FUNCTION classhub_grades.gradebook_grade_changed() RETURNS trigger
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

-- an UPDATE counts only when a column the gradebook reads really changed (a PATCH that
-- writes every column, or feedback without new points, leaves the gradebook as it was)
DROP TRIGGER IF EXISTS gradebook_assignment_changed ON classhub_grades.assignments;
CREATE TRIGGER gradebook_assignment_changed
    AFTER INSERT OR DELETE ON classhub_grades.assignments
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.gradebook_assignment_changed();
DROP TRIGGER IF EXISTS gradebook_assignment_updated ON classhub_grades.assignments;
CREATE TRIGGER gradebook_assignment_updated
    AFTER UPDATE ON classhub_grades.assignments
    FOR EACH ROW
    WHEN ((OLD.class_code, OLD.slug, OLD.title, OLD.max_points, OLD.due_at, OLD.archived_at)
          IS DISTINCT FROM
          (NEW.class_code, NEW.slug, NEW.title, NEW.max_points, NEW.due_at, NEW.archived_at))
    EXECUTE FUNCTION classhub_grades.gradebook_assignment_changed();

DROP TRIGGER IF EXISTS gradebook_submission_changed ON classhub_grades.submissions;
CREATE TRIGGER gradebook_submission_changed
    AFTER INSERT OR UPDATE OR DELETE ON classhub_grades.submissions
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.gradebook_submission_changed();

DROP TRIGGER IF EXISTS gradebook_grade_changed ON classhub_grades.grades;
CREATE TRIGGER gradebook_grade_changed
    AFTER INSERT OR DELETE ON classhub_grades.grades
    FOR EACH ROW EXECUTE FUNCTION classhub_grades.gradebook_grade_changed();
DROP TRIGGER IF EXISTS gradebook_grade_updated ON classhub_grades.grades;
CREATE TRIGGER gradebook_grade_updated
    AFTER UPDATE ON classhub_grades.grades
    FOR EACH ROW
    WHEN ((OLD.points, OLD.submission_id) IS DISTINCT FROM (NEW.points, NEW.submission_id))
    EXECUTE FUNCTION classhub_grades.gradebook_grade_changed();
