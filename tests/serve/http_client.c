/* Raw-socket HTTP client for the server tests. */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int kt_test_http_timeout_ms = 30000;

static int connect_local(int port) {
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return -1;
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
        int e = errno;
        close(fd);
        if (e != EINTR) return -1; /* a signal cut the handshake short: start a fresh connection */
    }
    return -1;
}

static int send_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* poll for input, resumed when a signal interrupts it (a profiler's or libFuzzer's timer ticks
 * during slow requests, such as a password check under the sanitizers). */
static int wait_readable(int fd, int timeout_ms) {
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        return r;
    }
}

/* Reads until the peer closes (or 30 s of silence). */
static char *read_all(int fd, size_t *len) {
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (wait_readable(fd, kt_test_http_timeout_ms) <= 0) break;
        if (n + 4096 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void parse(char *raw, size_t len, kt_test_resp *out) {
    memset(out, 0, sizeof *out);
    char *p = raw;
    /* Skip interim 100 Continue responses. */
    while (!strncmp(p, "HTTP/1.1 100", 12) || !strncmp(p, "HTTP/1.0 100", 12)) {
        char *e = strstr(p, "\r\n\r\n");
        if (!e) break;
        p = e + 4;
    }
    if (strncmp(p, "HTTP/1.", 7) || strlen(p) < 12) {
        out->headers = strdup("");
        out->body = strdup("");
        return;
    }
    out->status = atoi(p + 9);
    char *e = strstr(p, "\r\n\r\n");
    size_t hl = e ? (size_t)(e - p) : strlen(p);
    out->headers = strndup(p, hl);
    const char *b = e ? e + 4 : p + hl;
    out->body_len = len - (size_t)(b - raw);
    out->body = malloc(out->body_len + 1);
    memcpy(out->body, b, out->body_len);
    out->body[out->body_len] = '\0';
    out->json = cJSON_ParseWithLength(out->body, out->body_len);
}

int kt_test_http_raw(int port, const void *bytes, size_t len, kt_test_resp *out) {
    memset(out, 0, sizeof *out);
    int fd = connect_local(port);
    if (fd < 0) return -1;
    send_all(fd, bytes, len); /* the server may close early: read what it answered anyway */
    shutdown(fd, SHUT_WR);
    size_t n;
    char *raw = read_all(fd, &n);
    close(fd);
    if (!raw) return -1;
    parse(raw, n, out);
    free(raw);
    return 0;
}

void kt_test_http_hangup(int port, const void *bytes, size_t len) {
    int fd = connect_local(port);
    if (fd < 0) return;
    send_all(fd, bytes, len);
    close(fd);
}

int kt_test_http(int port, const char *method, const char *path, const char *extra_headers, const void *body,
                 size_t len, int expect_continue, kt_test_resp *out) {
    memset(out, 0, sizeof *out);
    int fd = connect_local(port);
    if (fd < 0) return -1;
    char head[8192];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s", method, path,
                      extra_headers ? extra_headers : "", expect_continue ? "Expect: 100-continue\r\n" : "");
    if (body || len) hn += snprintf(head + hn, sizeof head - (size_t)hn, "Content-Length: %zu\r\n", len);
    hn += snprintf(head + hn, sizeof head - (size_t)hn, "\r\n");
    send_all(fd, head, (size_t)hn);
    if (expect_continue) {
        /* Wait for the interim or final answer before sending the body. */
        char peek[64];
        if (wait_readable(fd, 30000) > 0) {
            ssize_t k = recv(fd, peek, sizeof peek - 1, MSG_PEEK);
            if (k > 0) {
                peek[k] = '\0';
                if (!strncmp(peek, "HTTP/1.1 100", 12) && len) send_all(fd, body, len);
            }
        }
    } else if (len) {
        send_all(fd, body, len);
    }
    size_t n;
    char *raw = read_all(fd, &n);
    close(fd);
    if (!raw) return -1;
    parse(raw, n, out);
    free(raw);
    return 0;
}

void kt_test_resp_free(kt_test_resp *r) {
    free(r->headers);
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

static void auth_header(char *buf, size_t cap, const char *token, const char *ct) {
    int n = snprintf(buf, cap, "%s", ct ? ct : "");
    if (token) snprintf(buf + n, cap - (size_t)n, "Authorization: Bearer %s\r\n", token);
}

int kt_test_post_json(int port, const char *path, const char *token, const char *json, kt_test_resp *out) {
    char h[1024];
    auth_header(h, sizeof h, token, "Content-Type: application/json\r\n");
    return kt_test_http(port, "POST", path, h, json, strlen(json), 0, out);
}

int kt_test_get(int port, const char *path, const char *token, kt_test_resp *out) {
    char h[1024];
    auth_header(h, sizeof h, token, NULL);
    return kt_test_http(port, "GET", path, h, NULL, 0, 0, out);
}

const char *kt_test_header(const kt_test_resp *r, const char *name, char *buf, size_t cap) {
    size_t nl = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > nl && !strncasecmp(line, name, nl) && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            size_t vl = ll - (size_t)(v - line);
            snprintf(buf, cap, "%.*s", (int)vl, v);
            return buf;
        }
        line = eol ? eol + 2 : NULL;
    }
    return NULL;
}

const char *kt_test_detail(const kt_test_resp *r) {
    const cJSON *d = cJSON_GetObjectItem(r->json, "detail");
    if (cJSON_IsString(d)) return d->valuestring;
    if (cJSON_IsArray(d)) {
        const cJSON *loc = cJSON_GetObjectItem(cJSON_GetArrayItem(d, 0), "loc");
        const cJSON *f = cJSON_GetArrayItem(loc, cJSON_GetArraySize(loc) - 1);
        if (cJSON_IsString(f)) return f->valuestring;
    }
    return "";
}

int kt_test_connect(int port) { return connect_local(port); }
int kt_test_send(int fd, const void *bytes, size_t len) { return send_all(fd, bytes, len); }

int kt_test_read(int fd, kt_test_resp *out) {
    memset(out, 0, sizeof *out);
    size_t n;
    char *raw = read_all(fd, &n);
    close(fd);
    if (!raw) return -1;
    parse(raw, n, out);
    free(raw);
    return 0;
}
