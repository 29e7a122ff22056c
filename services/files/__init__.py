"""The files service: per-user files, class material and submissions on S3."""
