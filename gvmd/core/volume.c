/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * volume.c — the registry of volumes: catalog rows plus one store per
 * volume, opened on first use and kept for the daemon's life.
 *
 * Stores are keyed by volume id (a volume removed and added again under the
 * same name is a new volume with a new store).  A store is never freed
 * while the daemon runs, not even when its volume is removed: another
 * thread may still hold the pointer volumes_store() lent it, and the
 * registry cannot know when that use ends.  Removed volumes' stores move to
 * a retired list and are released with the rest at exit.
 *
 * Locking: v->lock guards the store table only and is never held while
 * connecting (a gluster connect may take seconds); an entry's `opening` flag
 * plus the condition variable make concurrent first users of one volume
 * wait for a single connect.  The catalog has its own lock; v->lock is
 * never held while calling into the catalog, so the two cannot deadlock.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "volume.h"

struct store_entry {
    int64_t volume_id;
    struct gvm_store *store;    /* NULL until opened                     */
    bool opening;               /* a thread is opening it right now      */
    bool retired;               /* volume removed; store kept until exit */
    struct store_entry *next;
};

struct volumes {
    struct catalog *cat;
    pthread_mutex_t lock;
    pthread_cond_t opened;
    struct store_entry *entries;
};

int volumes_new(struct catalog *cat, struct volumes **out, struct gvm_error *err)
{
    struct volumes *v = calloc(1, sizeof *v);
    if (!v) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    v->cat = cat;
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->opened, NULL);
    *out = v;
    return 0;
}

void volumes_free(struct volumes *v)
{
    if (!v)
        return;
    for (struct store_entry *e = v->entries, *next; e; e = next) {
        next = e->next;
        gvm_store_abandon(e->store);
        free(e);
    }
    pthread_cond_destroy(&v->opened);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

bool volumes_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Entry of a live (not retired) volume; v->lock held. */
static struct store_entry *find_entry(struct volumes *v, int64_t id)
{
    for (struct store_entry *e = v->entries; e; e = e->next)
        if (e->volume_id == id && !e->retired)
            return e;
    return NULL;
}

/* Open the store a catalog row describes (blocking).  Under the test-only
 * GVMD_FAULT variable it is wrapped in the fault-injecting store
 * (store-faulty.c); without it, nothing changes. */
static int open_store(const struct catalog_volume *vol, struct gvm_store **out,
                      struct gvm_error *err)
{
    int r;

    if (vol->backend == CATALOG_BACKEND_DIR) {
        r = store_posix_new(vol->root_path, out, err);
    } else {
        struct gvm_gluster_cfg cfg = {
            .volume = vol->gluster_volume,
            .servers = vol->servers,
            .nservers = vol->nservers,
            .debug = vol->debug,
            .logfile = NULL,
        };
        r = store_gluster_new(&cfg, out, err);
    }
    if (r < 0)
        return -1;
    if (store_faulty_wrap_env(out, err) < 0) {
        gvm_store_destroy(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* Keep an opened store for volume id (which must have no entry yet). */
static int keep_store(struct volumes *v, int64_t id, struct gvm_store *st)
{
    GVM_LOCK_GUARD(&v->lock);
    struct store_entry *e = find_entry(v, id);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e)
            return -1;
        e->volume_id = id;
        e->next = v->entries;
        v->entries = e;
    }
    if (e->store) {
        /* Lost a race with volumes_store(): keep the first. */
        gvm_store_abandon(st);
        return 0;
    }
    e->store = st;
    pthread_cond_broadcast(&v->opened);
    return 0;
}

static int store_for(struct volumes *v, const struct catalog_volume *vol,
                     struct gvm_store **out, struct gvm_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&v->lock);
    struct store_entry *e = find_entry(v, vol->id);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            pthread_mutex_unlock(&v->lock);
            gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
            return -1;
        }
        e->volume_id = vol->id;
        e->next = v->entries;
        v->entries = e;
    }
    while (e->opening)
        pthread_cond_wait(&v->opened, &v->lock);
    if (e->store) {
        *out = e->store;
        pthread_mutex_unlock(&v->lock);
        return 0;
    }
    e->opening = true;
    pthread_mutex_unlock(&v->lock);

    struct gvm_store *st = NULL;
    int r = open_store(vol, &st, err);

    pthread_mutex_lock(&v->lock);
    e->opening = false;
    if (r == 0)
        e->store = st;
    pthread_cond_broadcast(&v->opened);
    pthread_mutex_unlock(&v->lock);
    if (r < 0)
        return -1;
    *out = st;
    return 0;
}

int volumes_store(struct volumes *v, const char *name, struct gvm_store **out,
                  struct gvm_error *err)
{
    struct catalog_volume vol;
    if (catalog_volume_get(v->cat, name, &vol, err) < 0)
        return -1;
    int r = store_for(v, &vol, out, err);
    catalog_volume_clear(&vol);
    return r;
}

int volumes_store_by_id(struct volumes *v, int64_t id, struct gvm_store **out,
                        struct gvm_error *err)
{
    struct catalog_volume vol;
    if (catalog_volume_get_by_id(v->cat, id, &vol, err) < 0)
        return -1;
    int r = store_for(v, &vol, out, err);
    catalog_volume_clear(&vol);
    return r;
}

int volumes_get(struct volumes *v, const char *name, struct catalog_volume *out,
                struct gvm_error *err)
{
    return catalog_volume_get(v->cat, name, out, err);
}

int volumes_get_by_id(struct volumes *v, int64_t id, struct catalog_volume *out,
                      struct gvm_error *err)
{
    return catalog_volume_get_by_id(v->cat, id, out, err);
}

int volumes_list(struct volumes *v, struct catalog_volume **out, size_t *n,
                 struct gvm_error *err)
{
    return catalog_volume_list(v->cat, out, n, err);
}

/* Whether path a is b or lies below it (both canonical). */
static bool path_within(const char *a, const char *b)
{
    size_t lb = strlen(b);

    if (lb == 1 && b[0] == '/')
        return true;
    return strncmp(a, b, lb) == 0 && (a[lb] == '/' || a[lb] == '\0');
}

/*
 * A dir volume inside another (or the same directory twice) gives one
 * file two names in the catalog, one per volume: a delete through one
 * would remove what the other's chains use.  Conflict naming the volume.
 */
static int refuse_overlap(struct volumes *v, const char *root,
                          struct gvm_error *err)
{
    struct catalog_volume *vols = NULL;
    size_t n = 0;
    int r = 0;

    if (catalog_volume_list(v->cat, &vols, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n && r == 0; i++) {
        const char *o = vols[i].root_path;

        if (vols[i].backend != CATALOG_BACKEND_DIR || !o)
            continue;
        if (path_within(root, o) || path_within(o, root)) {
            gvm_error_param(err, "path", "The directory %s %s the dir volume "
                            "'%s' (%s): a file would have a name in each, and "
                            "a delete through one would remove what the "
                            "other's chains use. Register only one of them.",
                            root, strcmp(root, o) == 0 ? "is" :
                            path_within(root, o) ? "lies inside" : "holds",
                            vols[i].name, o);
            r = -1;
        }
    }
    catalog_volumes_free(vols, n);
    return r;
}

int volumes_add(struct volumes *v, struct catalog_volume *vol,
                struct gvm_error *err)
{
    if (!volumes_name_valid(vol->name)) {
        gvm_error_param(err, "name",
                        "The volume name '%s' is not valid: use 1 to 64 of "
                        "the characters A-Z a-z 0-9 . _ -.",
                        vol->name ? vol->name : "");
        return -1;
    }
    if (vol->debug < 0 || vol->debug > 9) {
        gvm_error_param(err, "debug", "The debug level %d is not in 0..9.",
                        vol->debug);
        return -1;
    }
    /* Refuse a taken name before connecting anywhere (the insert below
     * still catches a race). */
    struct catalog_volume existing;
    if (catalog_volume_get(v->cat, vol->name, &existing, err) == 0) {
        catalog_volume_clear(&existing);
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS,
                      "A volume named '%s' is already registered.", vol->name);
        return -1;
    }
    if (err->cls != GVM_ERR_NOT_FOUND)
        return -1;
    gvm_error_clear(err);

    if (vol->backend == CATALOG_BACKEND_DIR) {
        if (!vol->root_path || vol->root_path[0] != '/') {
            gvm_error_param(err, "path",
                            "The path '%s' of a dir volume must be absolute.",
                            vol->root_path ? vol->root_path : "");
            return -1;
        }
        struct stat sb;
        if (stat(vol->root_path, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
            gvm_error_param(err, "path",
                            "The path '%s' of a dir volume is not an existing "
                            "directory.", vol->root_path);
            return -1;
        }
        /* Store the canonical path: absolute backing names are matched
         * against volume roots, and /a/../b or a symlinked root would not
         * match what a header holds. */
        char real[PATH_MAX];
        if (!realpath(vol->root_path, real)) {
            gvm_error_set_errno(err, GVM_ERR_STORAGE, -errno,
                                "Cannot resolve the path '%s'", vol->root_path);
            return -1;
        }
        char *dup = strdup(real);
        if (!dup) {
            gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
            return -1;
        }
        free(vol->root_path);
        vol->root_path = dup;
        if (refuse_overlap(v, vol->root_path, err) < 0)
            return -1;
    } else {
        if (!vol->gluster_volume || !*vol->gluster_volume) {
            gvm_error_param(err, "volume",
                            "A gluster volume needs the gluster volume name "
                            "in 'volume'.");
            return -1;
        }
        if (vol->nservers == 0) {
            gvm_error_param(err, "servers",
                            "A gluster volume needs at least one server.");
            return -1;
        }
    }

    struct gvm_store *st = NULL;
    if (open_store(vol, &st, err) < 0)
        return -1;
    if (catalog_volume_add(v->cat, vol, err) < 0) {
        gvm_store_destroy(st);
        return -1;
    }
    if (keep_store(v, vol->id, st) < 0)
        gvm_store_destroy(st);   /* opened again on first use */
    log_info("Registered %s volume '%s'.", catalog_backend_name(vol->backend),
             vol->name);
    return 0;
}

int volumes_remove(struct volumes *v, const char *name, struct gvm_error *err)
{
    struct catalog_volume vol;
    if (catalog_volume_get(v->cat, name, &vol, err) < 0)
        return -1;
    int64_t id = vol.id;
    catalog_volume_clear(&vol);
    if (catalog_volume_remove(v->cat, name, err) < 0)
        return -1;

    GVM_LOCK_GUARD(&v->lock);
    struct store_entry *e = find_entry(v, id);
    if (e)
        e->retired = true;
    log_info("Unregistered volume '%s'.", name);
    return 0;
}

int volumes_ensure_default(struct volumes *v, const char *state_dir,
                           struct gvm_error *err)
{
    struct catalog_volume vol;
    if (catalog_volume_get(v->cat, VOLUME_DEFAULT_NAME, &vol, err) == 0) {
        catalog_volume_clear(&vol);
        return 0;
    }
    if (err->cls != GVM_ERR_NOT_FOUND)
        return -1;
    gvm_error_clear(err);

    char dir[PATH_MAX];
    char *abs = NULL;
    if (state_dir[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            gvm_error_set_errno(err, GVM_ERR_STORAGE, -errno,
                                "Cannot find the current directory");
            return -1;
        }
        abs = cwd;
        if ((size_t)snprintf(dir, sizeof dir, "%s/%s/images", abs, state_dir)
            >= sizeof dir)
            goto toolong;
    } else if ((size_t)snprintf(dir, sizeof dir, "%s/images", state_dir)
               >= sizeof dir) {
        goto toolong;
    }
    /* mkdir -p */
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            gvm_error_set_errno(err, GVM_ERR_STORAGE, -errno,
                                "Cannot create the directory %s", dir);
            return -1;
        }
        *p = '/';
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, -errno,
                            "Cannot create the directory %s", dir);
        return -1;
    }

    struct catalog_volume def = {
        .name = strdup(VOLUME_DEFAULT_NAME),
        .backend = CATALOG_BACKEND_DIR,
        .root_path = strdup(dir),
        .debug = VOLUME_DEFAULT_DEBUG,
    };
    if (!def.name || !def.root_path) {
        catalog_volume_clear(&def);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    int r = volumes_add(v, &def, err);
    catalog_volume_clear(&def);
    return r;
toolong:
    gvm_error_set(err, GVM_ERR_INVALID_PARAMS,
                  "The state directory %s is too long.", state_dir);
    return -1;
}

/* ---- implicit registration from gluster references ----------------------- */

static bool shares_a_server(const struct catalog_volume *vol,
                            const struct gvm_server *servers, size_t n)
{
    for (size_t i = 0; i < vol->nservers; i++)
        for (size_t j = 0; j < n; j++)
            if (gvm_server_equal(&vol->servers[i], &servers[j]))
                return true;
    return false;
}

/* The registered gluster volume glvol reached through one of servers:
 * 1 and *name, 0 if none, -1 on error. */
static int find_gluster(struct volumes *v, const char *glvol,
                        const struct gvm_server *servers, size_t n,
                        char **name, struct gvm_error *err)
{
    struct catalog_volume *vols = NULL;
    size_t nv = 0;
    if (catalog_volume_list(v->cat, &vols, &nv, err) < 0)
        return -1;
    int found = 0;
    for (size_t i = 0; i < nv && !found; i++) {
        if (vols[i].backend != CATALOG_BACKEND_GLUSTER ||
            strcmp(vols[i].gluster_volume, glvol) != 0 ||
            !shares_a_server(&vols[i], servers, n))
            continue;
        *name = strdup(vols[i].name);
        found = *name ? 1 : -1;
    }
    catalog_volumes_free(vols, nv);
    if (found < 0)
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
    return found;
}

int volumes_find_gluster(struct volumes *v, const char *glvol,
                         const struct gvm_server *servers, size_t n,
                         char **name, struct gvm_error *err)
{
    *name = NULL;
    return find_gluster(v, glvol, servers, n, name, err);
}

int volumes_find_or_add_gluster(struct volumes *v, const char *glvol,
                                const struct gvm_server *servers, size_t n,
                                char **name, struct gvm_error *err)
{
    *name = NULL;
    int r = find_gluster(v, glvol, servers, n, name, err);
    if (r != 0)
        return r < 0 ? -1 : 0;

    /* A name from the gluster volume's, made valid and unique. */
    char base[56];
    size_t bl = 0;
    for (const char *p = glvol; *p && bl < sizeof base - 1; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        base[bl++] = ok ? c : '_';
    }
    base[bl] = '\0';
    if (bl == 0)
        snprintf(base, sizeof base, "gluster");

    for (int suffix = 1; suffix < 1000; suffix++) {
        char cand[65];
        if (suffix == 1)
            snprintf(cand, sizeof cand, "%s", base);
        else
            snprintf(cand, sizeof cand, "%s-%d", base, suffix);
        struct catalog_volume vol = {
            .name = strdup(cand),
            .backend = CATALOG_BACKEND_GLUSTER,
            .gluster_volume = strdup(glvol),
            .debug = VOLUME_DEFAULT_DEBUG,
        };
        if (!vol.name || !vol.gluster_volume ||
            gvm_servers_copy(servers, n, &vol.servers) < 0) {
            catalog_volume_clear(&vol);
            gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
            return -1;
        }
        vol.nservers = n;
        struct gvm_error e = { 0 };
        r = volumes_add(v, &vol, &e);
        if (r == 0) {
            *name = steal_pointer(&vol.name);
            catalog_volume_clear(&vol);
            return 0;
        }
        catalog_volume_clear(&vol);
        if (e.cls != GVM_ERR_ALREADY_EXISTS) {
            *err = e;
            return -1;
        }
        /* Taken: maybe by a concurrent registration of the same volume. */
        r = find_gluster(v, glvol, servers, n, name, err);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    gvm_error_set(err, GVM_ERR_ALREADY_EXISTS,
                  "Cannot find a free name to register gluster volume '%s'.",
                  glvol);
    return -1;
}
