/* Whole-file reads, mkdir -p and atomic writes. */
#include "base/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

kt_status kt_file_read(const char *path, char **data, size_t *len, kt_err *err) {
    *data = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return kt_err_set(err, KT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return kt_err_set(err, KT_ERR_IO, "cannot seek in %s: %s", path, strerror(errno));
    }
    long n = ftell(f);
    if (n < 0) {
        fclose(f);
        return kt_err_set(err, KT_ERR_IO, "cannot size %s: %s", path, strerror(errno));
    }
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for %s (%ld bytes)", path, n);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != (size_t)n || rerr) {
        free(buf);
        return kt_err_set(err, KT_ERR_IO, "short read on %s (%zu of %ld bytes)", path, got, n);
    }
    buf[n] = '\0';
    *data = buf;
    if (len) *len = (size_t)n;
    return KT_OK;
}

int kt_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int kt_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

kt_status kt_mkdirs(const char *path, kt_err *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return kt_err_set(err, KT_ERR_ARG, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0775) != 0 && errno != EEXIST)
                return kt_err_set(err, KT_ERR_IO, "cannot create directory %s: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    if (!kt_dir_exists(path)) return kt_err_set(err, KT_ERR_IO, "%s exists and is not a directory", path);
    return KT_OK;
}

kt_status kt_atomic_open(kt_atomic_file *af, const char *path, kt_err *err) {
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path) return kt_err_set(err, KT_ERR_ARG, "path too long: %s", path);
    snprintf(af->path, sizeof af->path, "%s", path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp, "wb");
    if (!af->fp) return kt_err_set(err, KT_ERR_IO, "cannot create %s: %s", af->tmp, strerror(errno));
    return KT_OK;
}

static void fsync_dir_of(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

kt_status kt_atomic_commit(kt_atomic_file *af, kt_err *err) {
    if (!af->fp) return kt_err_set(err, KT_ERR_STATE, "atomic file %s is not open", af->path);
    int bad = fflush(af->fp) != 0 || ferror(af->fp);
    int e = errno;
    if (!bad && fsync(fileno(af->fp)) != 0) {
        bad = 1;
        e = errno;
    }
    if (fclose(af->fp) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    af->fp = NULL;
    if (bad) {
        unlink(af->tmp);
        return kt_err_set(err, KT_ERR_IO, "cannot write %s: %s (nothing was replaced)", af->path, strerror(e));
    }
    if (rename(af->tmp, af->path) != 0) {
        e = errno;
        unlink(af->tmp);
        return kt_err_set(err, KT_ERR_IO, "cannot rename %s to %s: %s", af->tmp, af->path, strerror(e));
    }
    fsync_dir_of(af->path);
    return KT_OK;
}

void kt_atomic_abort(kt_atomic_file *af) {
    if (af->fp) {
        fclose(af->fp);
        af->fp = NULL;
    }
    if (af->tmp[0]) unlink(af->tmp);
}

kt_status kt_file_write_atomic(const char *path, const void *data, size_t len, kt_err *err) {
    kt_atomic_file af;
    kt_status s = kt_atomic_open(&af, path, err);
    if (s) return s;
    if (len && fwrite(data, 1, len, af.fp) != len) {
        int e = errno;
        kt_atomic_abort(&af);
        return kt_err_set(err, KT_ERR_IO, "cannot write %s: %s (nothing was replaced)", path, strerror(e));
    }
    return kt_atomic_commit(&af, err);
}

int kt_process_gone(long pid) {
    if (pid <= 0 || (pid_t)pid == getpid()) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH; /* EPERM: alive, someone else's */
}

int kt_remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t || t == e->d_name) continue;
        const char *digits = t + 5;
        char *end;
        long pid = strtol(digits, &end, 10);
        if (end == digits || *end || !kt_process_gone(pid)) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) == 0) n++;
    }
    closedir(d);
    return n;
}
