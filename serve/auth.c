/* Password hashing and token signing with libsodium; no home-made crypto. */
#include "serve/auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_max = 1, gate_busy;
static char dummy_hash[KT_AUTH_HASH_MAX];

kt_status kt_auth_init(int max_hashing, kt_err *err) {
    if (sodium_init() < 0) return kt_err_set(err, KT_ERR_UNSUPPORTED, "libsodium failed to initialise");
    if (max_hashing <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        max_hashing = n > 0 ? (int)n : 1;
    }
    pthread_mutex_lock(&gate_mu);
    gate_max = max_hashing;
    int need_dummy = !dummy_hash[0];
    pthread_mutex_unlock(&gate_mu);
    if (need_dummy) {
        char h[KT_AUTH_HASH_MAX];
        unsigned char pw[16];
        randombytes_buf(pw, sizeof pw);
        if (crypto_pwhash_str(h, (const char *)pw, sizeof pw, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
            return kt_err_set(err, KT_ERR_NOMEM, "argon2id: not enough memory for a password hash");
        pthread_mutex_lock(&gate_mu);
        memcpy(dummy_hash, h, sizeof h);
        pthread_mutex_unlock(&gate_mu);
    }
    return KT_OK;
}

/* Bounds concurrent argon2id runs: each takes 64 MiB. */
static void gate_enter(void) {
    pthread_mutex_lock(&gate_mu);
    while (gate_busy >= gate_max) pthread_cond_wait(&gate_cv, &gate_mu);
    gate_busy++;
    pthread_mutex_unlock(&gate_mu);
}

static void gate_leave(void) {
    pthread_mutex_lock(&gate_mu);
    gate_busy--;
    pthread_cond_signal(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

kt_status kt_auth_hash_password(const char *password, char out[KT_AUTH_HASH_MAX], kt_err *err) {
    gate_enter();
    int rc = crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
    gate_leave();
    if (rc != 0) return kt_err_set(err, KT_ERR_NOMEM, "argon2id: not enough memory for a password hash");
    return KT_OK;
}

int kt_auth_verify_password(const char *hash, const char *password) {
    char local[KT_AUTH_HASH_MAX];
    int real = hash != NULL;
    if (!real) {
        pthread_mutex_lock(&gate_mu);
        memcpy(local, dummy_hash, sizeof local);
        pthread_mutex_unlock(&gate_mu);
        if (!local[0]) return 0;
        hash = local;
    }
    gate_enter();
    int ok = crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
    gate_leave();
    return real && ok;
}

/* The signed part: "kt1.<uid>.<exp>". */
static int signed_part(int64_t uid, int64_t exp, char *buf, size_t cap) {
    return snprintf(buf, cap, "kt1.%lld.%lld", (long long)uid, (long long)exp);
}

kt_status kt_auth_token_make(const unsigned char key[KT_AUTH_KEY_BYTES], int64_t user_id, int64_t expires_unix_s,
                             char out[KT_AUTH_TOKEN_MAX], kt_err *err) {
    if (user_id <= 0 || expires_unix_s <= 0) return kt_err_set(err, KT_ERR_ARG, "token: bad user id or expiry");
    char msg[64];
    int n = signed_part(user_id, expires_unix_s, msg, sizeof msg);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256(mac, (const unsigned char *)msg, (unsigned long long)n, key);
    char b64[sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(b64, sizeof b64, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(out, KT_AUTH_TOKEN_MAX, "%s.%s", msg, b64);
    return KT_OK;
}

/* Parses a positive decimal without sign, spaces or leading zeros; -1 on anything else. */
static int64_t parse_id(const char *s, size_t n) {
    if (n == 0 || n > 18 || (s[0] == '0')) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

kt_status kt_auth_token_check(const unsigned char key[KT_AUTH_KEY_BYTES], const char *token, int64_t now_unix_s,
                              int64_t *user_id, kt_err *err) {
    if (!token || strncmp(token, "kt1.", 4)) return kt_err_set(err, KT_ERR_FORMAT, "token: not a keratrack token");
    const char *p = token + 4, *d1 = strchr(p, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strlen(token) >= KT_AUTH_TOKEN_MAX) return kt_err_set(err, KT_ERR_FORMAT, "token: malformed");
    int64_t uid = parse_id(p, (size_t)(d1 - p)), exp = parse_id(d1 + 1, (size_t)(d2 - d1 - 1));
    if (uid <= 0 || exp <= 0) return kt_err_set(err, KT_ERR_FORMAT, "token: malformed");
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    size_t mac_len = 0;
    const char *end = NULL;
    if (sodium_base642bin(mac, sizeof mac, d2 + 1, strlen(d2 + 1), NULL, &mac_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        mac_len != sizeof mac || (end && *end))
        return kt_err_set(err, KT_ERR_FORMAT, "token: bad signature encoding");
    /* Verify over the exact bytes received (the canonical form is enforced by parse_id). */
    if (crypto_auth_hmacsha256_verify(mac, (const unsigned char *)token, (unsigned long long)(d2 - token), key) != 0)
        return kt_err_set(err, KT_ERR_FORMAT, "token: signature does not match");
    if (exp <= now_unix_s) return kt_err_set(err, KT_ERR_STATE, "token expired");
    *user_id = uid;
    return KT_OK;
}
