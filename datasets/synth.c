/* Procedural shapes on noisy gradient backgrounds, 2x2 supersampled, written as a Roboflow export.
 * Shapes are chosen so no two classes coincide under rotation (no square vs diamond). */
#include "datasets/synth.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/progress.h"
#include "base/rng.h"
#include "datasets/roboflow.h"

static const char *const class_names[KT_SYNTH_MAX_CLASSES] = {
    "disk",    "square", "triangle", "ring",     "plus sign",     "striped disk",
    "checker", "star-5", "two dots", "crescent", "hollow square", "semi-circle"};

const char *kt_synth_class_name(int c) { return c >= 0 && c < KT_SYNTH_MAX_CLASSES ? class_names[c] : "?"; }

void kt_synth_opts_default(kt_synth_opts *o) {
    memset(o, 0, sizeof *o);
    o->classes = 4;
    o->per_class = 60;
    o->size = 96;
    o->seed = 1;
    o->quality = 90;
}

/* Is (u, v), in shape units (radius about 1), inside shape c? */
static int inside(int c, float u, float v) {
    float r2 = u * u + v * v, au = fabsf(u), av = fabsf(v);
    switch (c) {
    case 0: return r2 <= 1.0f;
    case 1: return au <= 0.8f && av <= 0.8f;
    case 2: return v <= 0.5f && v >= -1.0f + 1.732f * au;
    case 3: return r2 <= 1.0f && r2 >= 0.55f * 0.55f;
    case 4: return (au <= 0.28f && av <= 1.0f) || (av <= 0.28f && au <= 1.0f);
    case 5: return r2 <= 1.0f && ((int)floorf((v + 1.0f) * 2.5f) % 2 == 0);
    case 6: return au <= 0.85f && av <= 0.85f && (((int)floorf((u + 1) * 2.5f) + (int)floorf((v + 1) * 2.5f)) % 2 == 0);
    case 7: {
        float r = sqrtf(r2), th = atan2f(v, u);
        return r <= 0.4f + 0.6f * (0.5f + 0.5f * cosf(5.0f * th));
    }
    case 8: return (u - 0.55f) * (u - 0.55f) + v * v <= 0.16f || (u + 0.55f) * (u + 0.55f) + v * v <= 0.16f;
    case 9: return r2 <= 1.0f && (u - 0.45f) * (u - 0.45f) + v * v > 0.5625f;
    case 10: {
        float m = au > av ? au : av;
        return m <= 0.85f && m >= 0.55f;
    }
    case 11: return r2 <= 1.0f && v >= 0.0f;
    default: return 0;
    }
}

static float u01(uint64_t key, uint64_t *ctr) { return kt_hash_uniform(key, (*ctr)++); }

/* Converts hue (turns), saturation, value to RGB 0..255. */
static void hsv(float h, float s, float v, float out[3]) {
    h -= floorf(h);
    float i = floorf(h * 6), f = h * 6 - i, p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
    float r, g, b;
    switch ((int)i % 6) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
    }
    out[0] = r * 255, out[1] = g * 255, out[2] = b * 255;
}

static void draw_shape(float *img, int size, int c, uint64_t key, uint64_t *ctr, float smin, float smax, float bg_lum) {
    float s = size * (smin + (smax - smin) * u01(key, ctr));
    float cx = s + (size - 2 * s) * u01(key, ctr), cy = s + (size - 2 * s) * u01(key, ctr);
    float th = 6.2831853f * u01(key, ctr), cs = cosf(th), sn = sinf(th);
    float asp = 0.85f + 0.3f * u01(key, ctr);
    /* Contrast with the background: light shapes on dark backgrounds and the reverse. */
    float val = bg_lum > 0.5f ? 0.15f + 0.3f * u01(key, ctr) : 0.7f + 0.3f * u01(key, ctr);
    float col[3];
    hsv(u01(key, ctr), 0.3f + 0.7f * u01(key, ctr), val, col);
    int x0 = (int)(cx - 1.5f * s), x1 = (int)(cx + 1.5f * s) + 1, y0 = (int)(cy - 1.5f * s), y1 = (int)(cy + 1.5f * s) + 1;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > size) x1 = size;
    if (y1 > size) y1 = size;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            int hits = 0;
            for (int sy = 0; sy < 2; sy++)
                for (int sx = 0; sx < 2; sx++) {
                    float dx = (x + 0.25f + 0.5f * sx - cx) / s, dy = (y + 0.25f + 0.5f * sy - cy) / s;
                    float u = (cs * dx + sn * dy) / asp, v = -sn * dx + cs * dy;
                    hits += inside(c, u, v);
                }
            if (!hits) continue;
            float a = hits * 0.25f;
            float *p = img + ((size_t)y * size + x) * 3;
            for (int k = 0; k < 3; k++) p[k] = p[k] * (1 - a) + col[k] * a;
        }
}

void kt_synth_draw(uint8_t *rgb, int size, uint32_t mask, uint64_t key) {
    uint64_t ctr = 0;
    float *img = malloc((size_t)size * size * 3 * sizeof *img);
    if (!img) {
        memset(rgb, 0, (size_t)size * size * 3);
        return;
    }
    /* Background: a gradient between two muted colours in a random direction, plus waves. */
    float c0[3], c1[3];
    float lum = u01(key, &ctr);
    hsv(u01(key, &ctr), 0.15f + 0.35f * u01(key, &ctr), 0.1f + 0.8f * lum, c0);
    hsv(u01(key, &ctr), 0.15f + 0.35f * u01(key, &ctr), 0.1f + 0.8f * lum, c1);
    float gd = 6.2831853f * u01(key, &ctr), gx = cosf(gd), gy = sinf(gd);
    float wf = 2 + 6 * u01(key, &ctr), wd = 6.2831853f * u01(key, &ctr), wa = 6 + 10 * u01(key, &ctr);
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            float t = 0.5f + 0.5f * ((x / (float)size - 0.5f) * gx + (y / (float)size - 0.5f) * gy) * 1.4f;
            float wave = wa * sinf(wf * 6.2831853f * (x * cosf(wd) + y * sinf(wd)) / size);
            float *p = img + ((size_t)y * size + x) * 3;
            for (int k = 0; k < 3; k++) p[k] = c0[k] * (1 - t) + c1[k] * t + wave;
        }
    int multi = __builtin_popcount(mask) != 1;
    for (int c = 0; c < KT_SYNTH_MAX_CLASSES; c++) {
        if (!(mask >> c & 1)) continue;
        if (multi) draw_shape(img, size, c, key, &ctr, 0.12f, 0.24f, lum);
        else {
            draw_shape(img, size, c, key, &ctr, 0.2f, 0.38f, lum);
            if (u01(key, &ctr) < 0.3f) draw_shape(img, size, c, key, &ctr, 0.12f, 0.2f, lum);
        }
    }
    /* Sensor-like noise. */
    for (size_t i = 0; i < (size_t)size * size * 3; i++) {
        float v = img[i] + 24.0f * (kt_hash_uniform(key ^ 0x6e6f697365ull, i) - 0.5f);
        rgb[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
    }
    free(img);
}

/* ---- writing --------------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    int empty = 1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    return empty;
}

static kt_status write_bytes(const char *path, const void *data, size_t len, kt_err *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return kt_err_set(err, KT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    size_t w = fwrite(data, 1, len, f);
    int bad = fclose(f) != 0 || w != len;
    if (bad) return kt_err_set(err, KT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return KT_OK;
}

/* "<out>.tmp-<pid>" folders of writers that were killed (their process is gone): the next write of
 * the same dataset removes them, as it removes its own before starting. */
static void remove_dead_tmp_dirs(const char *out) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = '\0';
    char *slash = strrchr(dir, '/');
    char base[4096];
    snprintf(base, sizeof base, "%s", slash ? slash + 1 : dir);
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0'; /* "/name": the root */
    else *slash = '\0';
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, base, bl) || strncmp(e->d_name + bl, ".tmp-", 5)) continue;
        char *end;
        long pid = strtol(e->d_name + bl + 5, &end, 10);
        if (end == e->d_name + bl + 5 || *end || !kt_process_gone(pid)) continue;
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        rm_tree(path);
    }
    closedir(d);
}

kt_status kt_synth_write(const kt_synth_opts *o, FILE *progress, kt_err *err) {
    if (!o->out || !*o->out) return kt_err_set(err, KT_ERR_ARG, "no output folder given");
    if (o->classes < 2 || o->classes > KT_SYNTH_MAX_CLASSES)
        return kt_err_set(err, KT_ERR_ARG, "%d classes, need 2..%d", o->classes, KT_SYNTH_MAX_CLASSES);
    if (o->per_class < 1 || o->per_class > 100000)
        return kt_err_set(err, KT_ERR_ARG, "%d images per class, need 1..100000", o->per_class);
    if (o->size < 16 || o->size > 1024) return kt_err_set(err, KT_ERR_ARG, "size %d, need 16..1024", o->size);
    if (o->quality < 1 || o->quality > 100)
        return kt_err_set(err, KT_ERR_ARG, "JPEG quality %d, need 1..100", o->quality);
    struct stat st;
    int exists = stat(o->out, &st) == 0;
    if (exists && !S_ISDIR(st.st_mode)) return kt_err_set(err, KT_ERR_ARG, "%s exists and is not a folder", o->out);
    if (exists && !dir_is_empty(o->out) && !o->overwrite)
        return kt_err_set(err, KT_ERR_ARG, "%s exists and is not empty (pass --force to replace it)", o->out);

    char tmp[4096], path[4200], old[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", o->out, (int)getpid());
    remove_dead_tmp_dirs(o->out);
    rm_tree(tmp);
    kt_status s = kt_mkdirs(tmp, err);
    if (s != KT_OK) return s;
    tjhandle tj = tjInitCompress();
    int side = o->size;
    uint8_t *rgb = malloc((size_t)side * side * 3);
    if (!tj || !rgb) {
        s = kt_err_set(err, KT_ERR_NOMEM, "cannot set up the JPEG encoder");
        goto fail;
    }
    int per_eval = o->per_class / 4 < 2 ? 2 : o->per_class / 4;
    int counts[KT_SPLIT_COUNT] = {o->per_class * o->classes, per_eval * o->classes, per_eval * o->classes};
    int64_t total = counts[0] + counts[1] + counts[2], done = 0;
    kt_progress pg;
    kt_progress_begin(&pg, progress, "synth", total, "img");
    for (int split = 0; split < KT_SPLIT_COUNT; split++) {
        snprintf(path, sizeof path, "%s/%s", tmp, kt_split_name(split));
        if ((s = kt_mkdirs(path, err)) != KT_OK) goto fail;
        snprintf(path, sizeof path, "%s/%s/_classes.csv", tmp, kt_split_name(split));
        FILE *csv = fopen(path, "wb");
        if (!csv) {
            s = kt_err_set(err, KT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
            goto fail;
        }
        fputs("filename", csv);
        for (int c = 0; c < o->classes; c++) fprintf(csv, ", %s", class_names[c]);
        fputc('\n', csv);
        for (int i = 0; i < counts[split]; i++) {
            uint64_t key = kt_hash_u64(o->seed, (uint64_t)split << 32 | (uint64_t)i);
            uint32_t mask;
            if (!o->multilabel) mask = 1u << (i % o->classes);
            else {
                mask = i < o->classes ? 1u << i : 0; /* every label appears in every split */
                for (int c = 0; c < o->classes; c++)
                    if (kt_hash_uniform(key ^ 0x6c6162656c73ull, (uint64_t)c) < 0.3f) mask |= 1u << c;
            }
            kt_synth_draw(rgb, side, mask, key);
            unsigned char *jpg = NULL;
            unsigned long jlen = 0;
            if (tjCompress2(tj, rgb, side, 0, side, TJPF_RGB, &jpg, &jlen, TJSAMP_420, o->quality, 0) != 0) {
                s = kt_err_set(err, KT_ERR_FORMAT, "JPEG encoding failed: %s", tjGetErrorStr2(tj));
                tjFree(jpg);
                fclose(csv);
                goto fail;
            }
            char name[64];
            snprintf(name, sizeof name, "synth_%s_%05d.jpg", kt_split_name(split), i);
            snprintf(path, sizeof path, "%s/%s/%s", tmp, kt_split_name(split), name);
            s = write_bytes(path, jpg, jlen, err);
            tjFree(jpg);
            if (s != KT_OK) {
                fclose(csv);
                goto fail;
            }
            fputs(name, csv);
            for (int c = 0; c < o->classes; c++) fprintf(csv, ", %d", (int)(mask >> c & 1));
            fputc('\n', csv);
            kt_progress_update(&pg, ++done, NULL);
        }
        if (fclose(csv) != 0) {
            s = kt_err_set(err, KT_ERR_IO, "cannot write %s/_classes.csv", kt_split_name(split));
            goto fail;
        }
    }
    kt_progress_end(&pg);
    /* One flush of the whole tree, then the rename publishes it. */
    int fd = open(tmp, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
    if (exists) {
        snprintf(old, sizeof old, "%s.old-%d", o->out, (int)getpid());
        if (rename(o->out, old) != 0) {
            s = kt_err_set(err, KT_ERR_IO, "cannot move the old %s aside: %s", o->out, strerror(errno));
            goto fail;
        }
    }
    if (rename(tmp, o->out) != 0) {
        s = kt_err_set(err, KT_ERR_IO, "cannot rename %s to %s: %s", tmp, o->out, strerror(errno));
        if (exists) rename(old, o->out);
        goto fail;
    }
    if (exists) rm_tree(old);
    free(rgb);
    tjDestroy(tj);
    return KT_OK;
fail:
    free(rgb);
    if (tj) tjDestroy(tj);
    rm_tree(tmp);
    return s;
}
