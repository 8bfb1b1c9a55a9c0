/* A minimal HTTP/1.1 client for the server tests (one request per connection, raw sockets), able to
 * send malformed requests on purpose. Test code only. */
#ifndef KT_TEST_HTTP_CLIENT_H
#define KT_TEST_HTTP_CLIENT_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct kt_test_resp {
    int status;       /* 0 when no HTTP response came back */
    char *headers;    /* raw header block, NUL-terminated */
    char *body;       /* NUL-terminated */
    size_t body_len;
    cJSON *json;      /* parsed body, or NULL */
} kt_test_resp;

/* Sends method path with optional extra header lines ("Name: value\r\n"...) and body. With
 * expect_continue, sends the headers with "Expect: 100-continue" and the body only after a 100. */
int kt_test_http(int port, const char *method, const char *path, const char *extra_headers, const void *body,
                 size_t len, int expect_continue, kt_test_resp *out);
/* Sends bytes exactly as given and reads the answer. */
int kt_test_http_raw(int port, const void *bytes, size_t len, kt_test_resp *out);
/* Sends bytes and closes the connection at once, without waiting for an answer. */
void kt_test_http_hangup(int port, const void *bytes, size_t len);
void kt_test_resp_free(kt_test_resp *r);

/* Lower-level: a connected socket to 127.0.0.1:port (-1 on failure), sending on it, and reading the
 * answer until the server closes (kt_test_http_timeout_ms of silence ends the wait). */
extern int kt_test_http_timeout_ms; /* default 30000 */
int kt_test_connect(int port);
int kt_test_send(int fd, const void *bytes, size_t len);
int kt_test_read(int fd, kt_test_resp *out); /* closes fd */

/* JSON request helpers (Content-Type: application/json; token may be NULL). */
int kt_test_post_json(int port, const char *path, const char *token, const char *json, kt_test_resp *out);
int kt_test_get(int port, const char *path, const char *token, kt_test_resp *out);
/* A header's value (case-insensitive name) copied into buf, or NULL. */
const char *kt_test_header(const kt_test_resp *r, const char *name, char *buf, size_t cap);
/* The "detail" string of an error body, or the first detail[].loc[1] of a 422, or "". */
const char *kt_test_detail(const kt_test_resp *r);

#endif
