/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-table.c — the active L1 table and the refcount table, read on
 * demand: chunks of QCOW2_TABLE_CHUNK entries (4 KiB) are read when an
 * entry in them is first needed and kept in a small LRU cache per table.
 *
 * Why: open used to read both tables whole (up to 32 + 8 MiB per image),
 * so a read-only image-info of a deep chain of large sparse images cost
 * tens of MiB per layer.  Now a table costs at most QCOW2_TABLE_SLOTS
 * chunks (32 KiB) while it is only read; an image-info reads none.  A data
 * path going through the disk in order meets a new chunk once per 512 L1
 * entries (256 GiB of guest space with 64 KiB clusters).
 *
 * Where a table lives is read from the header fields each time (the
 * growth code switches them), and a slot holds entries of the table as
 * they are on disk at whichever place the header names: growth copies the
 * entries unchanged, so a slot stays right across a switch; a slot only
 * ever covers one chunk, and a short last chunk read before a growth is
 * reread in place when an entry past it is asked for.
 *
 * Validation: qcow2_table_get checks an entry read from the disk the
 * first time it returns it (a bit per entry of the slot remembers; an
 * entry gvmd wrote needs none: a new refcount block may lie past the end
 * of file until its allocation is done), so a bad entry fails the read
 * that needs it with -EUCLEAN and q->corrupt_msg naming the entry, as open
 * used to for the whole table, and its neighbours stay readable.  Checking
 * a whole chunk when it is loaded would cost more where lookups jump
 * between chunks (check's refcount lookups).  qcow2_table_check_all()
 * checks a whole table streaming, a chunk at a time (read-write open,
 * check).
 *
 * Writes (see the ordering in qcow2.h):
 *  - qcow2_table_write (L1 entries): written through to disk at once,
 *    then the cached copy, if any, is updated: the cache never holds an
 *    L1 entry the disk does not;
 *  - qcow2_table_set (refcount-table entries): changed in the cache only
 *    and marked dirty; qcow2_table_writeback writes the dirty entries when
 *    the refcount code has made the blocks they point at durable.  A dirty
 *    chunk is never evicted (its entry must not reach the disk before its
 *    block): when every slot is dirty the cache grows past its bound until
 *    the next writeback, which trims it again.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

/* Where the table lives now: offset and number of entries. */
static void geometry(const struct qcow2 *q, const struct qcow2_table *t,
                     uint64_t *off, uint64_t *n)
{
    switch (t->kind) {
    case QCOW2_TABLE_L1:
        *off = q->hdr.l1_table_offset;
        *n = q->hdr.l1_size;
        return;
    case QCOW2_TABLE_REFCOUNT:
        *off = q->hdr.refcount_table_offset;
        *n = q->reftable_entries;
        return;
    }
    *off = *n = 0;
}

/* ---- entry checks (what open did for every entry) -------------------------- */

/* Is entry i (value e) of an L1 table (`what` names it) or of the refcount
 * table bad?  If so, msg gets the sentence. */
static bool entry_bad(const struct qcow2 *q, enum qcow2_table_kind kind,
                      const char *what, uint64_t i, uint64_t e, char *msg,
                      size_t len)
{
    const uint64_t cs = q->cluster_size;

    if (kind == QCOW2_TABLE_REFCOUNT) {
        if (e & QCOW2_RTE_RESERVED) {
            snprintf(msg, len, "Image '%s' is corrupt: refcount table entry %" PRIu64
                     " (0x%016" PRIx64 ") has reserved bits set.", q->path, i, e);
            return true;
        }
        if (!e)
            return false;
        if (e & (cs - 1)) {
            snprintf(msg, len, "Image '%s' is corrupt: refcount block offset 0x%" PRIx64
                     " (refcount table entry %" PRIu64 ") is not cluster aligned.",
                     q->path, e, i);
            return true;
        }
        if (e > UINT64_MAX - cs || e + cs > q->file_size) {
            snprintf(msg, len, "Image '%s' is corrupt: refcount block offset 0x%" PRIx64
                     " (refcount table entry %" PRIu64 ") is past the end of the"
                     " file (%" PRIu64 " bytes).", q->path, e, i, q->file_size);
            return true;
        }
        if (e < cs) {
            snprintf(msg, len, "Image '%s' is corrupt: refcount block offset 0x%" PRIx64
                     " (refcount table entry %" PRIu64 ") points into the header.",
                     q->path, e, i);
            return true;
        }
        return false;
    }

    uint64_t off = e & QCOW2_OFFSET_MASK;
    if (e & QCOW2_L1E_RESERVED) {
        snprintf(msg, len, "Image '%s' is corrupt: %s entry %" PRIu64 " (0x%016" PRIx64
                 ") has reserved bits set.", q->path, what, i, e);
        return true;
    }
    if (!off)
        return false;
    if (off & (cs - 1)) {
        snprintf(msg, len, "Image '%s' is corrupt: %s entry %" PRIu64 " points to L2"
                 " table offset 0x%" PRIx64 " which is not cluster aligned.",
                 q->path, what, i, off);
        return true;
    }
    if (off + cs > q->file_size) {
        snprintf(msg, len, "Image '%s' is corrupt: %s entry %" PRIu64 " points to L2"
                 " table offset 0x%" PRIx64 " past the end of the file (%" PRIu64
                 " bytes).", q->path, what, i, off, q->file_size);
        return true;
    }
    if (qcow2_overlaps_metadata(q, off, cs)) {
        snprintf(msg, len, "Image '%s' is corrupt: %s entry %" PRIu64 " points to L2"
                 " table offset 0x%" PRIx64 " inside the image's metadata.",
                 q->path, what, i, off);
        return true;
    }
    return false;
}

/* qcow2_corrupt for a bad entry met on a read. */
static int entry_check(struct qcow2 *q, const struct qcow2_table *t,
                       uint64_t i, uint64_t e)
{
    char msg[GVM_ERROR_MSG_MAX];
    if (!entry_bad(q, t->kind, "L1 table", i, e, msg, sizeof(msg)))
        return 0;
    return qcow2_corrupt(q, "%s", msg);
}

/* ---- raw reads --------------------------------------------------------------- */

int qcow2_table_read(struct qcow2 *q, uint64_t off, uint64_t first, uint32_t n,
                     uint64_t *out)
{
    assert(q && (out || n == 0));
    int r = qcow2_pread(q, out, (size_t)n * 8, off + first * 8);
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < n; i++)
        out[i] = qcow2_get64((const uint8_t *)&out[i]);
    return 0;
}

int qcow2_table_check_all(struct qcow2 *q, enum qcow2_table_kind kind,
                          uint64_t off, uint64_t n, const char *what,
                          struct gvm_error *err)
{
    assert(q && what);
    assert(kind == QCOW2_TABLE_L1 || kind == QCOW2_TABLE_REFCOUNT);
    _cleanup_free_ uint64_t *buf = NULL;
    char msg[GVM_ERROR_MSG_MAX];

    if (n == 0)
        return 0;
    buf = malloc(QCOW2_TABLE_CHUNK * 8);
    if (!buf) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory reading the %s of '%s'.",
                      what, q->path);
        return -ENOMEM;
    }
    for (uint64_t first = 0; first < n; first += QCOW2_TABLE_CHUNK) {
        uint32_t cnt = n - first < QCOW2_TABLE_CHUNK ? (uint32_t)(n - first)
                                                     : QCOW2_TABLE_CHUNK;
        int r = qcow2_table_read(q, off, first, cnt, buf);
        if (r < 0) {
            gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Cannot read the %s of '%s'",
                                what, q->path);
            return r;
        }
        for (uint32_t i = 0; i < cnt; i++) {
            if (entry_bad(q, kind, what, first + i, buf[i], msg, sizeof(msg))) {
                gvm_error_set(err, GVM_ERR_CORRUPT, "%s", msg);
                return -EUCLEAN;
            }
        }
    }
    return 0;
}

/* ---- the cache -------------------------------------------------------------------- */

void qcow2_table_init(struct qcow2_table *t, enum qcow2_table_kind kind)
{
    assert(t);
    assert(kind == QCOW2_TABLE_L1 || kind == QCOW2_TABLE_REFCOUNT);
    memset(t, 0, sizeof(*t));
    t->kind = kind;
}

void qcow2_table_fini(struct qcow2_table *t)
{
    assert(t);
    for (unsigned i = 0; i < t->nslots; i++)
        free(t->slots[i].e);
    free(t->slots);
    t->slots = NULL;
    t->nslots = 0;
}

static bool slot_has(const struct qcow2_table_slot *s, uint64_t i)
{
    return i - s->first < s->n;   /* wraps past n when i < first */
}

static bool slot_dirty(const struct qcow2_table_slot *s)
{
    return s->dirty_lo < s->dirty_hi;
}

/* The slot to (re)load the chunk starting at `first` into: the one that
 * holds it already (a short chunk read before the table grew), else an
 * empty one, else the least recently used clean one, else a new one. */
static int slot_for(struct qcow2_table *t, uint64_t first,
                    struct qcow2_table_slot **out)
{
    struct qcow2_table_slot *victim = NULL;

    if (!t->slots) {
        t->slots = calloc(QCOW2_TABLE_SLOTS, sizeof(*t->slots));
        if (!t->slots)
            return -ENOMEM;
        t->nslots = QCOW2_TABLE_SLOTS;
    }
    for (unsigned i = 0; i < t->nslots; i++) {
        struct qcow2_table_slot *s = &t->slots[i];
        if (s->n && s->first == first) {
            *out = s;
            return 0;
        }
        if (slot_dirty(s))
            continue;
        if (!victim || (victim->n && (!s->n || s->lru < victim->lru)))
            victim = s;
    }
    if (!victim) {
        /* Every slot holds entries not yet on disk: grow until the next
         * writeback (qcow2_table_writeback trims). */
        struct qcow2_table_slot *p = realloc(t->slots, (t->nslots + 1) * sizeof(*p));
        if (!p)
            return -ENOMEM;
        t->slots = p;
        victim = &t->slots[t->nslots++];
        memset(victim, 0, sizeof(*victim));
    }
    *out = victim;
    return 0;
}

/* The slot holding entry i (< the table's size), reading its chunk on a
 * miss. */
static int lookup(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                  struct qcow2_table_slot **out)
{
    if (t->last < t->nslots && slot_has(&t->slots[t->last], i)) {
        *out = &t->slots[t->last];
        return 0;
    }
    for (unsigned k = 0; k < t->nslots; k++) {
        if (slot_has(&t->slots[k], i)) {
            t->last = k;
            t->slots[k].lru = ++t->tick;
            *out = &t->slots[k];
            return 0;
        }
    }

    uint64_t off, n;
    geometry(q, t, &off, &n);
    uint64_t first = i - i % QCOW2_TABLE_CHUNK;
    uint32_t cnt = n - first < QCOW2_TABLE_CHUNK ? (uint32_t)(n - first)
                                                 : QCOW2_TABLE_CHUNK;
    struct qcow2_table_slot *s;
    int r = slot_for(t, first, &s);
    if (r < 0)
        return r;
    if (slot_dirty(s)) {
        /* A short chunk with entries not written back, asked for an entry
         * past its end after the table grew: the growth copied the dirty
         * entries into the new table, so read only what follows them. */
        r = qcow2_table_read(q, off, first + s->n, cnt - s->n, s->e + s->n);
        if (r < 0)
            return r;
    } else {
        if (!s->e) {
            s->e = malloc(QCOW2_TABLE_CHUNK * 8);
            if (!s->e)
                return -ENOMEM;
        }
        s->n = 0;
        memset(s->checked, 0, sizeof(s->checked));
        r = qcow2_table_read(q, off, first, cnt, s->e);
        if (r < 0)
            return r;
        s->dirty_lo = s->dirty_hi = 0;
    }
    s->first = first;
    s->n = cnt;
    s->lru = ++t->tick;
    t->last = (unsigned)(s - t->slots);
    *out = s;
    return 0;
}

/* Entry i through the cache: its slot and index there, or *s NULL for an
 * entry past the table's end (which reads as 0). */
static int slot_of(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                   struct qcow2_table_slot **s, uint32_t *k)
{
    uint64_t off, n;
    int r;

    geometry(q, t, &off, &n);
    *s = NULL;
    if (i >= n)
        return 0;
    r = lookup(q, t, i, s);
    if (r < 0)
        return r;
    *k = (uint32_t)(i - (*s)->first);
    return 0;
}

/* Entry i (0 past the table's end), checked the first time it is read
 * unless `check` is false (peek). */
static int entry_get(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                     uint64_t *e, bool check)
{
    struct qcow2_table_slot *s;
    uint32_t k = 0;
    int r = slot_of(q, t, i, &s, &k);

    *e = 0;
    if (r < 0 || !s)
        return r;
    if (check && !(s->checked[k / 64] & (1ull << (k % 64)))) {
        if ((r = entry_check(q, t, i, s->e[k])) < 0)
            return r;
        s->checked[k / 64] |= 1ull << (k % 64);
    }
    *e = s->e[k];
    return 0;
}

int qcow2_table_get_slow(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                         uint64_t *e)
{
    assert(q && t && e);
    return entry_get(q, t, i, e, true);
}

int qcow2_table_peek(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                     uint64_t *e)
{
    assert(q && t && e);
    return entry_get(q, t, i, e, false);
}

int qcow2_table_write(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                      uint64_t e)
{
    /* Written through: only the L1 table (refcount-table entries wait for
     * their blocks to be durable: qcow2_table_set). */
    assert(q && t && t->kind == QCOW2_TABLE_L1);
    uint64_t off, n;
    uint8_t be[8];

    geometry(q, t, &off, &n);
    if (i >= n)
        return -EINVAL;
    qcow2_put64(be, e);
    int r = q->st->ops->pwrite(q->file, be, 8, off + i * 8);
    if (r < 0)
        return r;
    for (unsigned k = 0; k < t->nslots; k++) {
        struct qcow2_table_slot *s = &t->slots[k];
        if (slot_has(s, i)) {
            uint32_t j = (uint32_t)(i - s->first);
            s->e[j] = e;
            s->checked[j / 64] |= 1ull << (j % 64);
        }
    }
    return 0;
}

int qcow2_table_set(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                    uint64_t e)
{
    /* Written back later: only the refcount table (an L1 entry must reach
     * the disk before the refcount drop that follows it). */
    assert(q && t && t->kind == QCOW2_TABLE_REFCOUNT);
    uint64_t off, n;
    struct qcow2_table_slot *s;

    geometry(q, t, &off, &n);
    if (i >= n)
        return -EINVAL;
    int r = lookup(q, t, i, &s);
    if (r < 0)
        return r;
    uint32_t k = (uint32_t)(i - s->first);
    s->e[k] = e;
    s->checked[k / 64] |= 1ull << (k % 64);
    if (!slot_dirty(s)) {
        s->dirty_lo = k;
        s->dirty_hi = k + 1;
    } else {
        if (k < s->dirty_lo)
            s->dirty_lo = k;
        if (k + 1 > s->dirty_hi)
            s->dirty_hi = k + 1;
    }
    return 0;
}

bool qcow2_table_dirty(const struct qcow2_table *t)
{
    assert(t);
    for (unsigned k = 0; k < t->nslots; k++)
        if (slot_dirty(&t->slots[k]))
            return true;
    return false;
}

/* Back to QCOW2_TABLE_SLOTS slots, dropping the least recently used clean
 * chunks that the dirty ones pushed in. */
static void trim(struct qcow2_table *t)
{
    while (t->nslots > QCOW2_TABLE_SLOTS) {
        unsigned v = 0;
        for (unsigned k = 1; k < t->nslots; k++)
            if (t->slots[k].lru < t->slots[v].lru)
                v = k;
        free(t->slots[v].e);
        t->slots[v] = t->slots[--t->nslots];
    }
    t->last = 0;
}

int qcow2_table_writeback(struct qcow2 *q, struct qcow2_table *t)
{
    assert(q && t);
    uint64_t off, n;
    uint8_t buf[QCOW2_TABLE_CHUNK * 8];

    geometry(q, t, &off, &n);
    for (unsigned k = 0; k < t->nslots; k++) {
        struct qcow2_table_slot *s = &t->slots[k];
        if (!slot_dirty(s))
            continue;
        uint32_t cnt = s->dirty_hi - s->dirty_lo;
        for (uint32_t j = 0; j < cnt; j++)
            qcow2_put64(buf + 8 * (size_t)j, s->e[s->dirty_lo + j]);
        int r = q->st->ops->pwrite(q->file, buf, (size_t)cnt * 8,
                                   off + (s->first + s->dirty_lo) * 8);
        if (r < 0)
            return r;
        s->dirty_lo = s->dirty_hi = 0;
    }
    trim(t);
    return 0;
}

void qcow2_table_forget(struct qcow2_table *t)
{
    assert(t);
    for (unsigned k = 0; k < t->nslots; k++) {
        t->slots[k].n = 0;
        t->slots[k].dirty_lo = t->slots[k].dirty_hi = 0;
    }
    trim(t);
}

int qcow2_table_copy(struct qcow2 *q, struct qcow2_table *t, uint64_t dst,
                     uint64_t entries)
{
    assert(q && t);
    uint64_t off, n;
    _cleanup_free_ uint64_t *e = malloc(QCOW2_TABLE_CHUNK * 8);
    _cleanup_free_ uint8_t *buf = malloc(QCOW2_TABLE_CHUNK * 8);

    if (!e || !buf)
        return -ENOMEM;
    geometry(q, t, &off, &n);
    for (uint64_t first = 0; first < entries; first += QCOW2_TABLE_CHUNK) {
        uint32_t cnt = entries - first < QCOW2_TABLE_CHUNK
                           ? (uint32_t)(entries - first) : QCOW2_TABLE_CHUNK;
        uint32_t have = first >= n ? 0 : n - first < cnt ? (uint32_t)(n - first) : cnt;
        int r;

        memset(e, 0, (size_t)cnt * 8);
        /* The cached chunk when there is one (it may hold entries not
         * written back yet), else the disk; not loaded into the cache: a
         * copy of a large table would only push out the chunks in use. */
        const struct qcow2_table_slot *s = NULL;
        for (unsigned k = 0; have && k < t->nslots && !s; k++)
            if (slot_has(&t->slots[k], first))
                s = &t->slots[k];
        if (s && s->n >= have) {
            memcpy(e, s->e, (size_t)have * 8);
        } else if (have) {
            r = qcow2_table_read(q, off, first, have, e);
            if (r < 0)
                return r;
            if (s)
                memcpy(e, s->e, (size_t)s->n * 8);
        }
        for (uint32_t j = 0; j < cnt; j++)
            qcow2_put64(buf + 8 * (size_t)j, e[j]);
        r = q->st->ops->pwrite(q->file, buf, (size_t)cnt * 8, dst + first * 8);
        if (r < 0)
            return r;
    }
    return 0;
}
