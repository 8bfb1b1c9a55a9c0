/* CSV records, tolerant of the variations real exports contain (see csv.h). */
#include "datasets/csv.h"

#include <stdlib.h>
#include <string.h>

void kt_csv_init(kt_csv *c, const char *text, size_t len) {
    memset(c, 0, sizeof *c);
    c->p = text;
    c->end = text + len;
    c->line = 1;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) c->p += 3;
}

static int csv_putc(kt_csv *c, char ch) {
    if (c->len + 1 >= c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        char *b = realloc(c->buf, cap);
        if (!b) return 0;
        c->buf = b;
        c->cap = cap;
    }
    c->buf[c->len++] = ch;
    return 1;
}

static int csv_new_field(kt_csv *c) {
    if (c->n_fields == c->cap_fields) {
        int cap = c->cap_fields ? c->cap_fields * 2 : 16;
        size_t *o = realloc(c->offs, (size_t)cap * sizeof *o);
        if (o) c->offs = o;
        char **f = realloc(c->fields, (size_t)cap * sizeof *f);
        if (f) c->fields = f;
        if (!o || !f) return 0;
        c->cap_fields = cap;
    }
    c->offs[c->n_fields++] = c->len;
    return 1;
}

int kt_csv_next(kt_csv *c, int *line, const char *name, kt_err *err) {
    for (;;) {
        if (c->p >= c->end) return 0;
        c->len = 0;
        c->n_fields = 0;
        *line = c->line;
        int blank = 1;
        if (!csv_new_field(c)) goto nomem;
        for (;;) {
            while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
            if (c->p < c->end && *c->p == '"') {
                blank = 0;
                c->p++;
                for (;;) {
                    if (c->p >= c->end) {
                        kt_err_set(err, KT_ERR_FORMAT, "%s:%d: a quoted field is never closed", name, *line);
                        return -1;
                    }
                    char ch = *c->p++;
                    if (ch == '"') {
                        if (c->p < c->end && *c->p == '"') c->p++;
                        else break;
                    }
                    if (ch == '\n') c->line++;
                    if (!csv_putc(c, ch)) goto nomem;
                }
                /* Anything between the closing quote and the separator is kept, trimmed. */
                while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
            }
            size_t start = c->len;
            while (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
                if (!csv_putc(c, *c->p++)) goto nomem;
                blank = 0;
            }
            while (c->len > start && (c->buf[c->len - 1] == ' ' || c->buf[c->len - 1] == '\t')) c->len--;
            if (!csv_putc(c, '\0')) goto nomem;
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                blank = 0;
                if (!csv_new_field(c)) goto nomem;
                continue;
            }
            /* End of record: \n, \r\n, lone \r, or the end of the file. */
            if (c->p < c->end && *c->p == '\r') c->p++;
            if (c->p < c->end && *c->p == '\n') c->p++;
            c->line++;
            break;
        }
        if (blank) continue;
        for (int i = 0; i < c->n_fields; i++) c->fields[i] = c->buf + c->offs[i];
        return 1;
    }
nomem:
    kt_err_set(err, KT_ERR_NOMEM, "%s: no memory for a CSV record", name);
    return -1;
}

void kt_csv_free(kt_csv *c) {
    free(c->buf);
    free(c->offs);
    free(c->fields);
}

void kt_csv_write_field(FILE *f, const char *s) {
    size_t n = strlen(s);
    /* edge spaces would be trimmed, and a leading UTF-8 BOM taken for the file's own at its start */
    int quote = n && (s[0] == ' ' || s[n - 1] == ' ' || s[0] == '\t' || s[n - 1] == '\t' || !strncmp(s, "\xEF\xBB\xBF", 3));
    for (const char *p = s; *p && !quote; p++) quote = *p == ',' || *p == '"' || *p == '\n' || *p == '\r';
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}
