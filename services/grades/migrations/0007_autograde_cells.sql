-- The cells of a graded version that did not finish cleanly ([{label, status, error}]:
-- "cell 4 (q1)", error / timeout / died, "SystemExit: 0"): the reason a teacher and the
-- student see for the tests that failed or did not run after them.
ALTER TABLE classhub_grades.autograde_results
    ADD COLUMN cells jsonb NOT NULL DEFAULT '[]';
