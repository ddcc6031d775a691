-- SPDX-License-Identifier: GPL-2.0-or-later
--
-- 0001-init.sql — the gvmd catalog, designed for the whole protocol
-- (PROTOCOL.md): volumes and their gluster servers, images and their backing
-- edges, libvirt domains and their disks, the snapshot tree, jobs and the
-- images they lock, the operation journal (crash safety) and op-id replay.
--
-- Applied by catalog.c in one transaction; catalog.c then sets
-- PRAGMA user_version to the number of migrations applied.  Pragmas that
-- cannot run inside a transaction (journal_mode=WAL, foreign_keys=ON,
-- synchronous=FULL) are set by catalog.c on every open, not here.
--
-- Conventions:
--  * times are INTEGER seconds since the epoch (UTC);
--  * JSON documents are TEXT holding one JSON value;
--  * booleans are INTEGER 0/1 with a CHECK;
--  * ON DELETE RESTRICT wherever deleting the parent must be refused while
--    something still depends on it (an image with children, a volume with
--    images, an image locked by a job); CASCADE only for rows that are
--    pure parts of their parent (a volume's server list, a snapshot's disks).

-- A registered volume: a gluster volume reached through an ordered list of
-- volfile servers, or a local directory ("dir").
CREATE TABLE volumes (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE
                    CHECK (length(name) BETWEEN 1 AND 64),
    backend         TEXT    NOT NULL CHECK (backend IN ('dir', 'gluster')),
    gluster_volume  TEXT,               -- gluster: the volume name
    root_path       TEXT,               -- dir: absolute root directory
    debug           INTEGER NOT NULL DEFAULT 4 CHECK (debug BETWEEN 0 AND 9),
    created         INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    CHECK ((backend = 'gluster' AND gluster_volume IS NOT NULL AND root_path IS NULL)
        OR (backend = 'dir' AND root_path IS NOT NULL AND gluster_volume IS NULL))
);

-- A gluster volume's volfile servers, in the order the user gave them
-- (position 0 first).  The store probes them and hands reachable ones to
-- gfapi first, but the catalog keeps the user's order.
CREATE TABLE volume_servers (
    volume_id   INTEGER NOT NULL REFERENCES volumes(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL CHECK (position >= 0),
    transport   TEXT    NOT NULL CHECK (transport IN ('tcp', 'unix', 'rdma')),
    host        TEXT,                   -- tcp/rdma
    port        INTEGER NOT NULL DEFAULT 0 CHECK (port BETWEEN 0 AND 65535),
                                        -- 0: the default (24007)
    socket      TEXT,                   -- unix
    PRIMARY KEY (volume_id, position),
    CHECK ((transport = 'unix' AND socket IS NOT NULL AND host IS NULL)
        OR (transport <> 'unix' AND host IS NOT NULL AND socket IS NULL))
);

-- A catalogued image.  backing_image_id is the backing edge (NULL: no
-- backing file, or one not catalogued — backing_filename still says what the
-- header holds).  An image with children cannot be deleted (RESTRICT).
CREATE TABLE images (
    id                INTEGER PRIMARY KEY,
    volume_id         INTEGER NOT NULL REFERENCES volumes(id) ON DELETE RESTRICT,
    path              TEXT    NOT NULL CHECK (length(path) BETWEEN 1 AND 4096),
    format            TEXT    NOT NULL CHECK (format IN ('qcow2', 'raw')),
    virtual_size      INTEGER NOT NULL CHECK (virtual_size >= 0),
    cluster_size      INTEGER,          -- qcow2 only
    backing_image_id  INTEGER REFERENCES images(id) ON DELETE RESTRICT,
    backing_filename  TEXT,             -- exactly as stored in the header
    backing_format    TEXT,             -- from the header extension
    -- 'ready'; 'creating'/'deleting' while a journaled operation has the
    -- file half made or half removed (recovery looks at these).
    state             TEXT    NOT NULL DEFAULT 'ready'
                      CHECK (state IN ('ready', 'creating', 'deleting')),
    created           INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    UNIQUE (volume_id, path),
    CHECK (backing_image_id IS NULL OR backing_image_id <> id)
);
CREATE INDEX images_backing ON images(backing_image_id);

-- A libvirt domain gvmd knows (domain-attach).
CREATE TABLE domains (
    id      INTEGER PRIMARY KEY,
    name    TEXT    NOT NULL,
    uuid    TEXT    NOT NULL UNIQUE,
    created INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);
CREATE INDEX domains_name ON domains(name);

-- A domain's disk: which catalogued image is its active layer.
CREATE TABLE disks (
    domain_id  INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    target     TEXT    NOT NULL,        -- "vda", ...
    image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE RESTRICT,
    PRIMARY KEY (domain_id, target)
);
CREATE INDEX disks_image ON disks(image_id);

-- External disk-only snapshots, forming a tree through parent_id.
-- domain_id is NULL for a snapshot of bare images (no domain).  Names are
-- unique catalogue-wide because snapshot-info/-delete/-revert take a bare
-- name.  A domain with snapshots cannot be removed (RESTRICT): detaching it
-- must deal with them first.
CREATE TABLE snapshots (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    domain_id    INTEGER REFERENCES domains(id) ON DELETE RESTRICT,
    parent_id    INTEGER REFERENCES snapshots(id) ON DELETE RESTRICT,
    description  TEXT,
    state        TEXT    NOT NULL DEFAULT 'ready'
                 CHECK (state IN ('creating', 'ready', 'deleting', 'error')),
    created      INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX snapshots_domain ON snapshots(domain_id);
CREATE INDEX snapshots_parent ON snapshots(parent_id);

-- One disk of a snapshot: the image frozen by it and the overlay that became
-- active on top (NULL once that overlay is gone, e.g. committed away).
CREATE TABLE snapshot_disks (
    snapshot_id       INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    target            TEXT    NOT NULL,
    image_id          INTEGER NOT NULL REFERENCES images(id) ON DELETE RESTRICT,
    overlay_image_id  INTEGER REFERENCES images(id) ON DELETE SET NULL,
    PRIMARY KEY (snapshot_id, target)
);
CREATE INDEX snapshot_disks_image ON snapshot_disks(image_id);
CREATE INDEX snapshot_disks_overlay ON snapshot_disks(overlay_image_id);

-- Jobs (JOB in PROTOCOL.md).  They outlive connections and restarts:
-- params holds what is needed to resume, checkpoint how far it got.
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY,
    type              TEXT    NOT NULL,  -- "block-commit", "block-pull", ...
    status            TEXT    NOT NULL DEFAULT 'created'
                      CHECK (status IN ('created', 'running', 'ready',
                                        'pending', 'concluded')),
    cancelled         INTEGER NOT NULL DEFAULT 0 CHECK (cancelled IN (0, 1)),
    error             TEXT,              -- JSON ERROR object, or NULL
    progress_current  INTEGER NOT NULL DEFAULT 0,
    progress_total    INTEGER NOT NULL DEFAULT 0,
    images            TEXT    NOT NULL DEFAULT '[]',  -- JSON, as reported
    live              INTEGER NOT NULL DEFAULT 0 CHECK (live IN (0, 1)),
    op_id             TEXT,
    params            TEXT    NOT NULL DEFAULT '{}',  -- JSON
    checkpoint        TEXT,              -- JSON: resume state, job-defined
    created           INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    updated           INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);
CREATE INDEX jobs_status ON jobs(status);

-- Images locked by a job.  An image locked by a job cannot be removed from
-- the catalogue (RESTRICT); the lock goes with the job (CASCADE).
CREATE TABLE job_images (
    job_id    INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    image_id  INTEGER NOT NULL REFERENCES images(id) ON DELETE RESTRICT,
    mode      TEXT    NOT NULL DEFAULT 'write' CHECK (mode IN ('read', 'write')),
    PRIMARY KEY (job_id, image_id)
);
CREATE INDEX job_images_image ON job_images(image_id);

-- The operation journal: each step of a multi-step change is written here
-- (state 'pending') in the same transaction as the catalog change that
-- announces it, before storage is touched; marked 'done' after, or 'undone'
-- when rolled back.  On start-up, pending entries are rolled forward or
-- back.  An operation is identified by op_id (a client op-id or a generated
-- one) and/or the job running it.
CREATE TABLE journal (
    id       INTEGER PRIMARY KEY,
    op_id    TEXT,
    job_id   INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    step     INTEGER NOT NULL CHECK (step >= 0),
    kind     TEXT    NOT NULL,          -- "create-file", "set-backing", ...
    payload  TEXT    NOT NULL DEFAULT '{}',  -- JSON: what undo/redo need
    state    TEXT    NOT NULL DEFAULT 'pending'
             CHECK (state IN ('pending', 'done', 'undone')),
    created  INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    updated  INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);
CREATE INDEX journal_op ON journal(op_id, step);
CREATE INDEX journal_job ON journal(job_id);
CREATE INDEX journal_pending ON journal(state) WHERE state = 'pending';

-- op-id replay: the first result of a mutating call, returned again for a
-- repeat with the same method and op-id.
CREATE TABLE op_ids (
    method   TEXT    NOT NULL,
    op_id    TEXT    NOT NULL,
    result   TEXT    NOT NULL,          -- JSON result of the first call
    created  INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    PRIMARY KEY (method, op_id)
);
