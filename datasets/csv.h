/* A reader of CSV records as exports write them: comma-separated, optional spaces after commas,
 * quoted fields with "" escapes and line breaks, CRLF/LF/CR endings, a UTF-8 BOM, blank lines. */
#ifndef KT_CSV_H
#define KT_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "base/status.h"

typedef struct kt_csv {
    const char *p, *end; /* unread text */
    int line;            /* current line, 1-based */
    char *buf;           /* the record's fields, NUL-separated */
    size_t len, cap;     /* bytes used / allocated in buf */
    size_t *offs;        /* (n_fields) start of each field in buf */
    char **fields;       /* (n_fields) pointers into buf, valid until the next record */
    int n_fields, cap_fields;
} kt_csv;

/* Reads from text[0..len) (borrowed; skips a UTF-8 BOM). */
void kt_csv_init(kt_csv *c, const char *text, size_t len);
void kt_csv_free(kt_csv *c);
/* Reads one record into c->fields / c->n_fields. Returns 1 (a record; *line = the line it starts
 * on), 0 at the end, or -1 with err set (name labels the message: "name:line: ..."). Unquoted
 * fields are trimmed of spaces and tabs; blank lines are skipped. */
int kt_csv_next(kt_csv *c, int *line, const char *name, kt_err *err);
/* Writes s to f as one CSV field, quoted when it holds a comma, quote, line break or edge space, or
 * starts with a UTF-8 BOM: kt_csv_next reads it back as s. */
void kt_csv_write_field(FILE *f, const char *s);

#endif
