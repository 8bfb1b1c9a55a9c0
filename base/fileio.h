/* File helpers shared by every part: whole-file reads, directory creation, and atomic writes
 * (temp file in the same folder, fsync, rename) so no reader ever sees a half-written file. */
#ifndef KT_FILEIO_H
#define KT_FILEIO_H

#include <stdio.h>
#include <stddef.h>

#include "base/status.h"

/* Reads a whole file into a malloc'd buffer (NUL-terminated for convenience; *len excludes it). */
kt_status kt_file_read(const char *path, char **data, size_t *len, kt_err *err);
/* mkdir -p. */
kt_status kt_mkdirs(const char *path, kt_err *err);
int kt_file_exists(const char *path);
int kt_dir_exists(const char *path);

/* Atomic writer: kt_atomic_open gives a FILE* on "<path>.tmp.<pid>"; kt_atomic_commit flushes,
 * fsyncs, renames over path and fsyncs the folder; kt_atomic_abort removes the temp file.
 * A failed commit (full disk, ...) leaves any old file at path untouched. */
typedef struct kt_atomic_file {
    FILE *fp;
    char path[4096];
    char tmp[4200];
} kt_atomic_file;

kt_status kt_atomic_open(kt_atomic_file *af, const char *path, kt_err *err);
kt_status kt_atomic_commit(kt_atomic_file *af, kt_err *err);
void kt_atomic_abort(kt_atomic_file *af);
/* One-shot: writes len bytes atomically. */
kt_status kt_file_write_atomic(const char *path, const void *data, size_t len, kt_err *err);
/* Removes the "<name>.tmp.<pid>" files in dir whose writer process no longer exists (killed
 * mid-write; a training state's can be ~1 GB). Returns how many went; a live writer's are kept. */
int kt_remove_stale_temps(const char *dir);
/* 1 when no process pid exists (a temporary file's or folder's writer was killed); never for ours. */
int kt_process_gone(long pid);

#endif
