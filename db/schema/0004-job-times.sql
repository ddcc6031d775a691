-- SPDX-License-Identifier: GPL-2.0-or-later
--
-- 0004-job-times.sql — a job says when it started and finished, and names
-- its images.
--
-- JOB (PROTOCOL.md) reports "created" (the existing created column),
-- "started" (when it first ran) and "finished" (when it concluded), and the
-- VOLUME:PATH of each of its images as they were when it was created: a
-- commit deletes images of its own list, so the names cannot be looked up
-- again once it has run.  NULL: not known (not yet started or finished; a
-- job of an older catalog, whose images are then named at load).
ALTER TABLE jobs ADD COLUMN started INTEGER;
ALTER TABLE jobs ADD COLUMN finished INTEGER;
ALTER TABLE jobs ADD COLUMN image_names TEXT;  -- JSON array, as "images"
