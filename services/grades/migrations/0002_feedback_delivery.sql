-- When the returned feedback was written into the student's class server
-- (~/<code>/feedback/<slug>/feedback.md); NULL: not yet (their server was stopped, or the
-- grade changed after it was delivered). The grades service delivers what is missing when
-- the student's server runs.
ALTER TABLE classhub_grades.grades ADD COLUMN feedback_delivered_at timestamptz;

CREATE INDEX grades_feedback_undelivered_idx ON classhub_grades.grades (returned_at)
    WHERE returned_at IS NOT NULL AND feedback_delivered_at IS NULL;
