/* Accounts: argon2id password hashes (libsodium, interactive limits) and signed, expiring bearer
 * tokens "kt1.<user id>.<expiry unix s>.<HMAC-SHA256, base64url>" checked in constant time. */
#ifndef KT_SERVE_AUTH_H
#define KT_SERVE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define KT_AUTH_HASH_MAX 128  /* crypto_pwhash_STRBYTES */
#define KT_AUTH_TOKEN_MAX 128 /* longest token kt_auth_token_make writes, with the NUL */
#define KT_AUTH_KEY_BYTES 32

/* Initialises libsodium; max_hashing bounds how many argon2id computations (64 MiB each) run at
 * once across threads (<= 0: the number of online CPUs). Safe to call more than once. */
kt_status kt_auth_init(int max_hashing, kt_err *err);

/* argon2id, crypto_pwhash_OPSLIMIT/MEMLIMIT_INTERACTIVE, random salt; out gets the encoded string. */
kt_status kt_auth_hash_password(const char *password, char out[KT_AUTH_HASH_MAX], kt_err *err);
/* 1 if password matches hash, else 0. hash NULL runs a verification against a dummy hash, so an
 * unknown account costs the same time as a wrong password (no account probing by timing). */
int kt_auth_verify_password(const char *hash, const char *password);

/* Writes a token for user_id valid until expires_unix_s. */
kt_status kt_auth_token_make(const unsigned char key[KT_AUTH_KEY_BYTES], int64_t user_id, int64_t expires_unix_s,
                             char out[KT_AUTH_TOKEN_MAX], kt_err *err);
/* Checks the signature (constant time), then the expiry against now_unix_s. KT_ERR_FORMAT: malformed
 * or bad signature (tampered); KT_ERR_STATE: expired. *user_id is set only on success. */
kt_status kt_auth_token_check(const unsigned char key[KT_AUTH_KEY_BYTES], const char *token, int64_t now_unix_s,
                              int64_t *user_id, kt_err *err);

#endif
