/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-import.c — image-import as a service: open an image found on
 * storage with its backing chain, refuse a probed format that reaches out
 * of the image's directory tree, and catalogue every layer.  The
 * image-import method and domain-attach from libvirt's XML both use it, so
 * every image adopted from storage is recorded the same way.
 */
#include <string.h>

#include "image-import.h"
#include "image-open.h"
#include "store.h"

/*
 * image-import without 'format' of an image the catalog does not know:
 * its format was probed from the file's content, which whoever wrote the
 * file chose — a guest can write a qcow2 header into its raw disk.  A
 * probed qcow2 whose backing file lies outside the image's own directory
 * tree (a parent directory, another volume) could point at another VM's
 * image, so it is refused unless the caller says 'format': "qcow2".
 */
static int refuse_probed_escape(const struct resolved *r, struct img *img,
                                bool format_given, struct gvm_error *err)
{
    struct img *b = img_backing(img);
    _cleanup_free_ char *dir = NULL;
    size_t dl;

    if (format_given || r->catalogued || !b)
        return 0;
    dir = path_dirname(r->path);
    if (!dir)
        return gvm_error_oom(err);
    dl = strlen(dir);
    if (img_store(b) == r->store &&
        (dl == 0 || (strncmp(img_path(b), dir, dl) == 0 && img_path(b)[dl] == '/')))
        return 0;
    gvm_error_set(err, GVM_ERR_UNSUPPORTED, "%s:%s looks like a qcow2 image "
                  "whose backing file (%s) lies outside its own directory; a "
                  "format taken from the content of a file is not trusted that "
                  "far. If it is a qcow2 image, import it with format "
                  "\"qcow2\".", r->vol.name, r->path, img_path(b));
    return -1;
}

int image_import(struct gvmd *d, struct resolved *r, const char *format,
                 const char *backing_format, struct resolve_ctx *ctx,
                 struct img **img, struct image_layer **layers, size_t *n,
                 struct gvm_error *err)
{
    if (image_open(r, format, backing_format, 0, ctx, img, err) < 0)
        return -1;
    if (refuse_probed_escape(r, *img, format != NULL, err) < 0)
        return -1;
    return image_layers_catalogue(d, ctx, *img, layers, n, err);
}
