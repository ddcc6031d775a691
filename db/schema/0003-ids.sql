-- SPDX-License-Identifier: GPL-2.0-or-later
--
-- 0003-ids.sql — volume, image, domain, snapshot and journal ids are never
-- reused.
--
-- Their ids were plain INTEGER PRIMARY KEYs, for which sqlite hands out
-- max(id) + 1: once the newest image was deleted, the next image got its
-- id, and a job record saying `images: [153, 151]` (or a client, a log
-- line) silently pointed at another image.  AUTOINCREMENT makes sqlite take
-- the next id from sqlite_sequence, which only grows.  The jobs table keeps
-- its own high-water mark (0002-jobs.sql); the other tables have no id.
--
-- An existing table cannot be given AUTOINCREMENT, so each is rebuilt by
-- sqlite's documented procedure (https://sqlite.org/lang_altertable.html,
-- "making other kinds of table schema changes"): create the new table,
-- copy every row with its id, drop the old one, rename the new one, make
-- its indexes again.  catalog.c runs migrations with foreign keys off (a
-- DROP with them on would run the children's ON DELETE CASCADE and empty
-- volume_servers, disks and snapshot_disks) and runs
-- PRAGMA foreign_key_check before committing, so every reference of the
-- old catalog must still hold in the new one.  Children keep pointing at
-- the parent by name: after the rename, "images" is the new table.
--
-- Column lists and constraints are those of 0001-init.sql, unchanged.

CREATE TABLE volumes_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE
                    CHECK (length(name) BETWEEN 1 AND 64),
    backend         TEXT    NOT NULL CHECK (backend IN ('dir', 'gluster')),
    gluster_volume  TEXT,
    root_path       TEXT,
    debug           INTEGER NOT NULL DEFAULT 4 CHECK (debug BETWEEN 0 AND 9),
    created         INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    CHECK ((backend = 'gluster' AND gluster_volume IS NOT NULL AND root_path IS NULL)
        OR (backend = 'dir' AND root_path IS NOT NULL AND gluster_volume IS NULL))
);
INSERT INTO volumes_new (id, name, backend, gluster_volume, root_path, debug, created)
    SELECT id, name, backend, gluster_volume, root_path, debug, created FROM volumes;
DROP TABLE volumes;
ALTER TABLE volumes_new RENAME TO volumes;

CREATE TABLE images_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    volume_id         INTEGER NOT NULL REFERENCES volumes(id) ON DELETE RESTRICT,
    path              TEXT    NOT NULL CHECK (length(path) BETWEEN 1 AND 4096),
    format            TEXT    NOT NULL CHECK (format IN ('qcow2', 'raw')),
    virtual_size      INTEGER NOT NULL CHECK (virtual_size >= 0),
    cluster_size      INTEGER,
    backing_image_id  INTEGER REFERENCES images(id) ON DELETE RESTRICT,
    backing_filename  TEXT,
    backing_format    TEXT,
    state             TEXT    NOT NULL DEFAULT 'ready'
                      CHECK (state IN ('ready', 'creating', 'deleting')),
    created           INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    UNIQUE (volume_id, path),
    CHECK (backing_image_id IS NULL OR backing_image_id <> id)
);
INSERT INTO images_new (id, volume_id, path, format, virtual_size, cluster_size,
                        backing_image_id, backing_filename, backing_format,
                        state, created)
    SELECT id, volume_id, path, format, virtual_size, cluster_size,
           backing_image_id, backing_filename, backing_format, state, created
    FROM images;
DROP TABLE images;
ALTER TABLE images_new RENAME TO images;
CREATE INDEX images_backing ON images(backing_image_id);

CREATE TABLE domains_new (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name    TEXT    NOT NULL,
    uuid    TEXT    NOT NULL UNIQUE,
    created INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);
INSERT INTO domains_new (id, name, uuid, created)
    SELECT id, name, uuid, created FROM domains;
DROP TABLE domains;
ALTER TABLE domains_new RENAME TO domains;
CREATE INDEX domains_name ON domains(name);

CREATE TABLE snapshots_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    domain_id    INTEGER REFERENCES domains(id) ON DELETE RESTRICT,
    parent_id    INTEGER REFERENCES snapshots(id) ON DELETE RESTRICT,
    description  TEXT,
    state        TEXT    NOT NULL DEFAULT 'ready'
                 CHECK (state IN ('creating', 'ready', 'deleting', 'error')),
    created      INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    CHECK (parent_id IS NULL OR parent_id <> id)
);
INSERT INTO snapshots_new (id, name, domain_id, parent_id, description, state, created)
    SELECT id, name, domain_id, parent_id, description, state, created FROM snapshots;
DROP TABLE snapshots;
ALTER TABLE snapshots_new RENAME TO snapshots;
CREATE INDEX snapshots_domain ON snapshots(domain_id);
CREATE INDEX snapshots_parent ON snapshots(parent_id);

-- Journal rows go with their job (catalog-job.c) and the start-up listing
-- orders operations by their first row's id: a reused id would put a new
-- operation before older ones.
CREATE TABLE journal_new (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id    TEXT,
    job_id   INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    step     INTEGER NOT NULL CHECK (step >= 0),
    kind     TEXT    NOT NULL,
    payload  TEXT    NOT NULL DEFAULT '{}',
    state    TEXT    NOT NULL DEFAULT 'pending'
             CHECK (state IN ('pending', 'done', 'undone')),
    created  INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    updated  INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);
INSERT INTO journal_new (id, op_id, job_id, step, kind, payload, state, created, updated)
    SELECT id, op_id, job_id, step, kind, payload, state, created, updated FROM journal;
DROP TABLE journal;
ALTER TABLE journal_new RENAME TO journal;
CREATE INDEX journal_op ON journal(op_id, step);
CREATE INDEX journal_job ON journal(job_id);
CREATE INDEX journal_pending ON journal(state) WHERE state = 'pending';

-- Where each sequence starts: past every id still in its table, and for
-- images past every id a remaining job record names too — ids deleted
-- before this migration and mentioned nowhere are the only ones that can
-- come back, once.
DELETE FROM sqlite_sequence
    WHERE name IN ('volumes', 'images', 'domains', 'snapshots', 'journal');
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'volumes', coalesce(max(id), 0) FROM volumes;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'images', max(coalesce((SELECT max(id) FROM images), 0),
                         coalesce((SELECT max(CAST(e.value AS INTEGER))
                                   FROM jobs j,
                                        json_each(CASE WHEN json_valid(j.images)
                                                        AND json_type(j.images) = 'array'
                                                       THEN j.images ELSE '[]' END) e
                                   WHERE e.type = 'integer'), 0));
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'domains', coalesce(max(id), 0) FROM domains;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'snapshots', coalesce(max(id), 0) FROM snapshots;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'journal', coalesce(max(id), 0) FROM journal;
