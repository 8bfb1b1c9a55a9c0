/* safetensors reader (mmap + full validation) and atomic writer. */
#include "checkpoints/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"

/* ---------------------------------------------------------------- reading */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* A JSON number that is a non-negative integer exactly representable in a double. */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

/* qsort comparators over arrays of tensor pointers (no global state: files may be opened by
 * several threads at once). Ties fall back to header order, which the pointers preserve. */
static int cmp_by_name(const void *a, const void *b) {
    const kt_st_tensor *x = *(const kt_st_tensor *const *)a, *y = *(const kt_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_by_offset(const void *a, const void *b) {
    const kt_st_tensor *x = *(const kt_st_tensor *const *)a, *y = *(const kt_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Parses one tensor entry of the header into t (name already set). */
static kt_status parse_tensor(const kt_st_file *f, const cJSON *item, kt_st_tensor *t, uint64_t data_len,
                              kt_err *err) {
    const char *path = f->path, *name = t->name;
    if (!cJSON_IsObject(item))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(jd))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    if (!kt_st_dtype_parse(jd->valuestring, &t->dtype))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': unknown dtype \"%s\"", path, name, jd->valuestring);
    if (!cJSON_IsArray(js))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
    int nd = cJSON_GetArraySize(js);
    if (nd > KT_ST_MAX_DIMS)
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': %d dimensions (at most %d supported)", path, name,
                          nd, KT_ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, js) {
        uint64_t d;
        if (!json_uint(e, &d))
            return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                              name, i);
        if (d != 0 && numel > UINT64_MAX / d)
            return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, name);
        numel *= d;
        t->shape[i++] = (int64_t)d;
    }
    uint64_t esz = (uint64_t)kt_st_dtype_size(t->dtype);
    if (numel > (uint64_t)INT64_MAX / esz)
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, name);
    t->numel = (int64_t)numel;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" is not a [begin, end] pair", path,
                          name);
    uint64_t b, en;
    if (!json_uint(cJSON_GetArrayItem(jo, 0), &b) || !json_uint(cJSON_GetArrayItem(jo, 1), &en))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': data_offsets are not non-negative integers", path,
                          name);
    if (en < b)
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) end before they begin",
                          path, name, (unsigned long long)b, (unsigned long long)en);
    if (en > data_len)
        return kt_err_set(err, KT_ERR_FORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu) run past the data section (%llu bytes): "
                          "file truncated?",
                          path, name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_len);
    if (en - b != numel * esz)
        return kt_err_set(err, KT_ERR_FORMAT,
                          "%s: tensor '%s': data_offsets span %llu bytes but shape x %s needs %llu", path, name,
                          (unsigned long long)(en - b), jd->valuestring, (unsigned long long)(numel * esz));
    t->begin = b;
    t->nbytes = en - b;
    return KT_OK;
}

static kt_status parse_metadata(kt_st_file *f, const cJSON *meta, kt_err *err) {
    if (!cJSON_IsObject(meta))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: \"__metadata__\" is not an object of strings", f->path);
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    f->meta_vals = calloc((size_t)n + 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_vals) return kt_err_set(err, KT_ERR_NOMEM, "%s: no memory for metadata", f->path);
    const cJSON *e;
    cJSON_ArrayForEach(e, meta) {
        if (!cJSON_IsString(e))
            return kt_err_set(err, KT_ERR_FORMAT, "%s: __metadata__ value of \"%s\" is not a string", f->path,
                              e->string);
        for (int i = 0; i < f->n_meta; i++)
            if (!strcmp(f->meta_keys[i], e->string))
                return kt_err_set(err, KT_ERR_FORMAT, "%s: __metadata__ key \"%s\" appears twice", f->path, e->string);
        f->meta_keys[f->n_meta] = dup_str(e->string);
        f->meta_vals[f->n_meta] = dup_str(e->valuestring);
        if (!f->meta_keys[f->n_meta] || !f->meta_vals[f->n_meta])
            return kt_err_set(err, KT_ERR_NOMEM, "%s: no memory for metadata", f->path);
        f->n_meta++;
    }
    return KT_OK;
}

/* Checks names are unique and the tensors tile [0, data_len) exactly. */
static kt_status check_layout(kt_st_file *f, uint64_t data_len, kt_err *err) {
    int n = f->n_tensors;
    if (n == 0) {
        if (data_len != 0)
            return kt_err_set(err, KT_ERR_FORMAT, "%s: %llu bytes of data but no tensors in the header", f->path,
                              (unsigned long long)data_len);
        return KT_OK;
    }
    const kt_st_tensor **idx = malloc((size_t)n * sizeof *idx);
    if (!idx) return kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", f->path);
    for (int i = 0; i < n; i++) idx[i] = &f->tensors[i];
    qsort(idx, (size_t)n, sizeof *idx, cmp_by_name);
    for (int i = 1; i < n; i++)
        if (!strcmp(idx[i]->name, idx[i - 1]->name)) {
            kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", f->path, idx[i]->name);
            free(idx);
            return KT_ERR_FORMAT;
        }
    for (int i = 0; i < n; i++) idx[i] = &f->tensors[i];
    qsort(idx, (size_t)n, sizeof *idx, cmp_by_offset);
    uint64_t at = 0;
    kt_status st = KT_OK;
    for (int i = 0; i < n && st == KT_OK; i++) {
        const kt_st_tensor *t = idx[i];
        if (t->begin < at)
            st = kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) overlap tensor '%s'",
                            f->path, t->name, (unsigned long long)t->begin,
                            (unsigned long long)(t->begin + t->nbytes), idx[i - 1]->name);
        else if (t->begin > at)
            st = kt_err_set(err, KT_ERR_FORMAT,
                            "%s: tensor '%s': data_offsets start at %llu, leaving a gap of %llu unused bytes",
                            f->path, t->name, (unsigned long long)t->begin, (unsigned long long)(t->begin - at));
        at = t->begin + t->nbytes;
    }
    if (st == KT_OK && at != data_len)
        st = kt_err_set(err, KT_ERR_FORMAT, "%s: %llu bytes after the last tensor are not covered by the header",
                        f->path, (unsigned long long)(data_len - at));
    free(idx);
    return st;
}

static kt_status parse_header(kt_st_file *f, kt_err *err) {
    const uint8_t *base = f->map;
    uint64_t hl;
    memcpy(&hl, base, 8);
    uint64_t avail = f->map_len - 8;
    if (hl > avail)
        return kt_err_set(err, KT_ERR_FORMAT,
                          "%s: header length %llu exceeds the %llu bytes after it: file truncated or not safetensors",
                          f->path, (unsigned long long)hl, (unsigned long long)avail);
    if (hl > KT_ST_MAX_HEADER)
        return kt_err_set(err, KT_ERR_FORMAT, "%s: header length %llu is over the 100 MB limit", f->path,
                          (unsigned long long)hl);
    if (hl < 2 || base[8] != '{')
        return kt_err_set(err, KT_ERR_FORMAT, "%s: the header is not a JSON object (does not start with '{')",
                          f->path);
    f->header_len = hl;
    const char *hdr = (const char *)base + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hl, &end, 0);
    if (!root) {
        long at = end ? (long)(end - hdr) : -1;
        return kt_err_set(err, KT_ERR_FORMAT, "%s: header is not valid JSON (error near byte %ld of %llu)", f->path,
                          at, (unsigned long long)hl);
    }
    for (const char *p = end; p < hdr + hl; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return kt_err_set(err, KT_ERR_FORMAT, "%s: unexpected bytes after the header JSON (at byte %ld)",
                              f->path, (long)(p - hdr));
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return kt_err_set(err, KT_ERR_FORMAT, "%s: the header is not a JSON object", f->path);
    }
    uint64_t data_len = avail - hl;
    int n_items = cJSON_GetArraySize(root);
    f->tensors = calloc((size_t)n_items + 1, sizeof(kt_st_tensor));
    if (!f->tensors) {
        cJSON_Delete(root);
        return kt_err_set(err, KT_ERR_NOMEM, "%s: no memory for %d tensors", f->path, n_items);
    }
    kt_status st = KT_OK;
    int seen_meta = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "__metadata__")) {
            if (seen_meta++) {
                st = kt_err_set(err, KT_ERR_FORMAT, "%s: \"__metadata__\" appears twice", f->path);
                break;
            }
            if ((st = parse_metadata(f, item, err)) != KT_OK) break;
            continue;
        }
        kt_st_tensor *t = &f->tensors[f->n_tensors];
        t->name = dup_str(item->string);
        if (!t->name) {
            st = kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", f->path);
            break;
        }
        f->n_tensors++;
        if (t->name[0] == '\0') {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s: a tensor has an empty name", f->path);
            break;
        }
        if ((st = parse_tensor(f, item, t, data_len, err)) != KT_OK) break;
        t->data = base + 8 + hl + t->begin;
    }
    cJSON_Delete(root);
    if (st != KT_OK) return st;
    return check_layout(f, data_len, err);
}

kt_status kt_st_open(kt_st_file *f, const char *path, kt_err *err) {
    memset(f, 0, sizeof *f);
    f->path = dup_str(path);
    if (!f->path) return kt_err_set(err, KT_ERR_NOMEM, "no memory");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        kt_status st = kt_err_set(err, errno == ENOENT ? KT_ERR_NOTFOUND : KT_ERR_IO, "cannot open %s: %s", path,
                                  strerror(errno));
        kt_st_close(f);
        return st;
    }
    struct stat sb;
    kt_status st = KT_OK;
    if (fstat(fd, &sb) != 0) st = kt_err_set(err, KT_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode)) st = kt_err_set(err, KT_ERR_IO, "%s is not a regular file", path);
    else if (sb.st_size < 8)
        st = kt_err_set(err, KT_ERR_FORMAT,
                        "%s: truncated (%lld bytes; a safetensors file starts with an 8-byte header length)", path,
                        (long long)sb.st_size);
    if (st == KT_OK) {
        /* Read-only shared mapping: pages come from the page cache, no copy of multi-GB weights. */
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) st = kt_err_set(err, KT_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        else {
            f->map = m;
            f->map_len = (size_t)sb.st_size;
        }
    }
    close(fd);
    if (st == KT_OK) st = parse_header(f, err);
    if (st != KT_OK) kt_st_close(f);
    return st;
}

void kt_st_close(kt_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    if (f->map) munmap(f->map, f->map_len);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const kt_st_tensor *kt_st_find(const kt_st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *kt_st_meta(const kt_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_vals[i];
    return NULL;
}

kt_status kt_st_read_f32(const kt_st_file *f, const kt_st_tensor *t, float *out, int64_t n, kt_err *err) {
    if (!kt_st_dtype_is_float(t->dtype))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected a float dtype (F32/F16/BF16/F64)",
                          f->path, t->name, kt_st_dtype_name(t->dtype));
    if (n != t->numel)
        return kt_err_set(err, KT_ERR_SHAPE, "%s: tensor '%s' has %lld elements, expected %lld", f->path, t->name,
                          (long long)t->numel, (long long)n);
    kt_st_to_f32(t->dtype, t->data, out, n);
    return KT_OK;
}

kt_status kt_st_read_i64(const kt_st_file *f, const kt_st_tensor *t, int64_t *out, int64_t n, kt_err *err) {
    if (!kt_st_dtype_is_int(t->dtype))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected an integer dtype", f->path,
                          t->name, kt_st_dtype_name(t->dtype));
    if (n != t->numel)
        return kt_err_set(err, KT_ERR_SHAPE, "%s: tensor '%s' has %lld elements, expected %lld", f->path, t->name,
                          (long long)t->numel, (long long)n);
    kt_st_to_i64(t->dtype, t->data, out, n);
    return KT_OK;
}

kt_status kt_st_get_f32(const kt_st_file *f, const char *name, float *out, int64_t n, kt_err *err) {
    const kt_st_tensor *t = kt_st_find(f, name);
    if (!t) return kt_err_set(err, KT_ERR_NOTFOUND, "%s: no tensor '%s'", f->path, name);
    return kt_st_read_f32(f, t, out, n, err);
}

kt_status kt_st_get_i64(const kt_st_file *f, const char *name, int64_t *out, int64_t n, kt_err *err) {
    const kt_st_tensor *t = kt_st_find(f, name);
    if (!t) return kt_err_set(err, KT_ERR_NOTFOUND, "%s: no tensor '%s'", f->path, name);
    return kt_st_read_i64(f, t, out, n, err);
}

/* ---------------------------------------------------------------- writing */

void kt_st_writer_init(kt_st_writer *w) { memset(w, 0, sizeof *w); }

void kt_st_writer_free(kt_st_writer *w) {
    for (int i = 0; i < w->n; i++) free(w->entries[i].name);
    free(w->entries);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_vals[i]);
    }
    free(w->meta_keys);
    free(w->meta_vals);
    memset(w, 0, sizeof *w);
}

kt_status kt_st_writer_add(kt_st_writer *w, const char *name, kt_st_dtype dtype, int ndim, const int64_t *shape,
                           kt_st_dtype src_dtype, const void *src, kt_err *err) {
    if (!name || !*name) return kt_err_set(err, KT_ERR_ARG, "safetensors writer: empty tensor name");
    if (!strcmp(name, "__metadata__"))
        return kt_err_set(err, KT_ERR_ARG, "safetensors writer: \"__metadata__\" is reserved, not a tensor name");
    if ((unsigned)dtype >= KT_ST_COUNT || (unsigned)src_dtype >= KT_ST_COUNT)
        return kt_err_set(err, KT_ERR_ARG, "safetensors writer: tensor '%s': bad dtype", name);
    if (src_dtype != dtype && !(src_dtype == KT_ST_F32 && (dtype == KT_ST_F16 || dtype == KT_ST_BF16)))
        return kt_err_set(err, KT_ERR_ARG, "safetensors writer: tensor '%s': cannot store %s data as %s", name,
                          kt_st_dtype_name(src_dtype), kt_st_dtype_name(dtype));
    if (ndim < 0 || ndim > KT_ST_MAX_DIMS)
        return kt_err_set(err, KT_ERR_ARG, "safetensors writer: tensor '%s': %d dimensions", name, ndim);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return kt_err_set(err, KT_ERR_ARG, "safetensors writer: tensor '%s': negative dimension %lld", name,
                              (long long)shape[i]);
        numel *= shape[i];
    }
    if (numel > 0 && !src)
        return kt_err_set(err, KT_ERR_ARG, "safetensors writer: tensor '%s': no data", name);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->entries[i].name, name))
            return kt_err_set(err, KT_ERR_ARG, "safetensors writer: tensor '%s' added twice", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        kt_st_entry *e = realloc(w->entries, (size_t)cap * sizeof *e);
        if (!e) return kt_err_set(err, KT_ERR_NOMEM, "safetensors writer: no memory");
        w->entries = e;
        w->cap = cap;
    }
    kt_st_entry *e = &w->entries[w->n];
    memset(e, 0, sizeof *e);
    e->name = dup_str(name);
    if (!e->name) return kt_err_set(err, KT_ERR_NOMEM, "safetensors writer: no memory");
    e->dtype = dtype;
    e->src_dtype = src_dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->numel = numel;
    e->src = src;
    w->n++;
    return KT_OK;
}

kt_status kt_st_writer_meta(kt_st_writer *w, const char *key, const char *value, kt_err *err) {
    if (!key || !*key || !value) return kt_err_set(err, KT_ERR_ARG, "safetensors writer: empty metadata key or value");
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta_keys[i], key)) {
            char *v = dup_str(value);
            if (!v) return kt_err_set(err, KT_ERR_NOMEM, "safetensors writer: no memory");
            free(w->meta_vals[i]);
            w->meta_vals[i] = v;
            return KT_OK;
        }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 16;
        char **k = realloc(w->meta_keys, (size_t)cap * sizeof *k);
        if (!k) return kt_err_set(err, KT_ERR_NOMEM, "safetensors writer: no memory");
        w->meta_keys = k;
        char **v = realloc(w->meta_vals, (size_t)cap * sizeof *v);
        if (!v) return kt_err_set(err, KT_ERR_NOMEM, "safetensors writer: no memory");
        w->meta_vals = v;
        w->cap_meta = cap;
    }
    w->meta_keys[w->n_meta] = dup_str(key);
    w->meta_vals[w->n_meta] = dup_str(value);
    if (!w->meta_keys[w->n_meta] || !w->meta_vals[w->n_meta]) {
        free(w->meta_keys[w->n_meta]);
        free(w->meta_vals[w->n_meta]);
        return kt_err_set(err, KT_ERR_NOMEM, "safetensors writer: no memory");
    }
    w->n_meta++;
    return KT_OK;
}

/* Larger elements first keeps every tensor aligned to its element size; ties keep insertion order. */
static int cmp_entry_layout(const void *a, const void *b) {
    const kt_st_entry *x = *(const kt_st_entry *const *)a, *y = *(const kt_st_entry *const *)b;
    int sx = kt_st_dtype_size(x->dtype), sy = kt_st_dtype_size(y->dtype);
    if (sx != sy) return sy - sx;
    return x < y ? -1 : x > y;
}

static int write_entry(FILE *fp, const kt_st_entry *e) {
    size_t esz = (size_t)kt_st_dtype_size(e->dtype);
    if (e->numel == 0) return 1;
    if (e->dtype == e->src_dtype) return fwrite(e->src, esz, (size_t)e->numel, fp) == (size_t)e->numel;
    enum { CHUNK = 16384 };
    uint16_t buf[CHUNK];
    const float *src = e->src;
    for (int64_t at = 0; at < e->numel; at += CHUNK) {
        int64_t k = e->numel - at < CHUNK ? e->numel - at : CHUNK;
        kt_st_from_f32(e->dtype, src + at, buf, k);
        if (fwrite(buf, esz, (size_t)k, fp) != (size_t)k) return 0;
    }
    return 1;
}

kt_status kt_st_writer_save(const kt_st_writer *w, const char *path, kt_err *err) {
    const kt_st_entry **order = malloc(((size_t)w->n + 1) * sizeof *order);
    uint64_t *begin = malloc(((size_t)w->n + 1) * sizeof(uint64_t));
    cJSON *root = cJSON_CreateObject();
    char *json = NULL;
    kt_status st = KT_OK;
    if (!order || !begin || !root) {
        st = kt_err_set(err, KT_ERR_NOMEM, "saving %s: no memory", path);
        goto done;
    }
    for (int i = 0; i < w->n; i++) order[i] = &w->entries[i];
    qsort(order, (size_t)w->n, sizeof *order, cmp_entry_layout);
    uint64_t at = 0;
    for (int k = 0; k < w->n; k++) {
        const kt_st_entry *e = order[k];
        begin[e - w->entries] = at;
        at += (uint64_t)e->numel * (uint64_t)kt_st_dtype_size(e->dtype);
    }
    if (w->n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; m && i < w->n_meta; i++)
            if (!cJSON_AddStringToObject(m, w->meta_keys[i], w->meta_vals[i])) m = NULL;
        if (!m) {
            st = kt_err_set(err, KT_ERR_NOMEM, "saving %s: no memory", path);
            goto done;
        }
    }
    for (int i = 0; i < w->n; i++) {
        const kt_st_entry *e = &w->entries[i];
        cJSON *o = cJSON_AddObjectToObject(root, e->name);
        cJSON *shape = o ? cJSON_AddArrayToObject(o, "shape") : NULL;
        cJSON *offs = o ? cJSON_AddArrayToObject(o, "data_offsets") : NULL;
        int ok = o && shape && offs && cJSON_AddStringToObject(o, "dtype", kt_st_dtype_name(e->dtype));
        for (int d = 0; ok && d < e->ndim; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[d]));
        uint64_t end = begin[i] + (uint64_t)e->numel * (uint64_t)kt_st_dtype_size(e->dtype);
        ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)begin[i])) &&
             cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)end));
        if (!ok) {
            st = kt_err_set(err, KT_ERR_NOMEM, "saving %s: no memory", path);
            goto done;
        }
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) {
        st = kt_err_set(err, KT_ERR_NOMEM, "saving %s: no memory", path);
        goto done;
    }
    size_t jl = strlen(json);
    size_t pad = (8 - jl % 8) % 8; /* data section starts 8-byte aligned */
    uint64_t hl = jl + pad;
    kt_atomic_file af;
    if ((st = kt_atomic_open(&af, path, err)) != KT_OK) goto done;
    int ok = fwrite(&hl, 8, 1, af.fp) == 1 && fwrite(json, 1, jl, af.fp) == jl &&
             fwrite("        ", 1, pad, af.fp) == pad;
    for (int k = 0; ok && k < w->n; k++) ok = write_entry(af.fp, order[k]);
    if (!ok) {
        int e = errno;
        kt_atomic_abort(&af);
        st = kt_err_set(err, KT_ERR_IO, "cannot write %s: %s (nothing was replaced)", path, strerror(e));
        goto done;
    }
    st = kt_atomic_commit(&af, err);
done:
    free(json);
    cJSON_Delete(root);
    free(order);
    free(begin);
    return st;
}
