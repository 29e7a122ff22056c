-- The release of an assignment's starting files ("release"): when release_at comes
-- (at once when it has none or it is past), the grades service asks the files service to
-- push the files area class/<code>/assignments, folder <slug>, into every student's
-- ~/<code>/assignments/<slug>, and records here which push that was.
--
-- A release is counted in rounds: release_rounds is how many pushes were asked for (1, the
-- release itself; +1 for every "Release again now"), release_pushed how many were made.
-- An assignment is due when release_pushed < release_rounds, it is not archived and its
-- release_at has come. The service claims a due assignment (release_claim, a random token,
-- until release_claimed_until) before it calls the files service, so two rounds of the loop,
-- two processes or a button and the loop never push the same round twice; the files push's
-- id is derived from release_key and the round, so a call retried after a crash finds the
-- push it made the first time instead of making a second one.
--
-- Safe to run twice: everything is skipped when the columns exist already.

DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'classhub_grades' AND table_name = 'assignments'
          AND column_name = 'release_key'
    ) THEN
        RETURN;
    END IF;

    ALTER TABLE classhub_grades.assignments
        -- random per assignment: part of the files push ids (release-<key>-<round>)
        ADD COLUMN release_key text NOT NULL
            DEFAULT md5(random()::text || clock_timestamp()::text),
        ADD COLUMN release_rounds integer NOT NULL DEFAULT 1,
        ADD COLUMN release_pushed integer NOT NULL DEFAULT 0,
        -- the files push of the latest round made; NULL: none (or no starting files then)
        ADD COLUMN release_push_id text,
        -- when the latest round was made
        ADD COLUMN released_at timestamptz,
        -- how many starting files it pushed (0: there were none, nothing was pushed)
        ADD COLUMN release_files integer,
        -- why the last attempt failed (NULL: it did not); retried from release_retry_at on
        ADD COLUMN release_error text,
        ADD COLUMN release_retry_at timestamptz,
        ADD COLUMN release_claim text,
        ADD COLUMN release_claimed_until timestamptz,
        ADD CONSTRAINT assignments_release_rounds_check
            CHECK (release_pushed >= 0 AND release_rounds >= 1
                   AND release_pushed <= release_rounds),
        ADD CONSTRAINT assignments_release_files_check
            CHECK (release_files IS NULL OR release_files >= 0);

    -- Assignments released before this version: their starting files were pushed (or not)
    -- by hand through the files service, so they are not pushed again now. Assignments
    -- still to be released are pushed when their time comes.
    UPDATE classhub_grades.assignments
       SET release_pushed = release_rounds
     WHERE release_at IS NULL OR release_at <= now();

    CREATE INDEX assignments_release_due_idx
        ON classhub_grades.assignments (release_at)
        WHERE release_pushed < release_rounds AND archived_at IS NULL;
END
$$;
