-- SPDX-License-Identifier: GPL-2.0-or-later
--
-- 0002-jobs.sql — job ids are never reused.
--
-- jobs.id is a plain INTEGER PRIMARY KEY, so sqlite hands out max(id) + 1:
-- once the newest job is dismissed (its row deleted), the next job would get
-- the same id, and a client still holding the old id (job-wait, a log line,
-- an event) would silently be talking about another job.  The last id
-- handed out is kept here instead, and catalog-job.c takes the next one
-- from it in the transaction that inserts the job.
CREATE TABLE job_seq (
    last  INTEGER NOT NULL CHECK (last >= 0)
);
INSERT INTO job_seq (last) SELECT coalesce(max(id), 0) FROM jobs;
