"""The grades service: assignments, extensions, submissions and grades in
PostgreSQL (schema ``classhub_grades``). :mod:`.rules` holds the pure rules (deadlines,
lateness, release, validation), :mod:`.gradebook` the pure gradebook table and its CSV,
:mod:`.store` the data layer."""
