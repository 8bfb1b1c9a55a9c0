/* Accounts: argon2id password hashes and signed expiring tokens (wrong password, expired, tampered). */
#include <sodium.h>
#include <string.h>

#include "kt_test.h"
#include "serve/auth.h"

KT_TEST(test_auth_password_hash_and_wrong_password) {
    kt_err err = {0};
    KT_REQUIRE_OK(kt_auth_init(2, &err), &err);
    char h1[KT_AUTH_HASH_MAX], h2[KT_AUTH_HASH_MAX];
    KT_REQUIRE_OK(kt_auth_hash_password("correct horse battery", h1, &err), &err);
    KT_REQUIRE_OK(kt_auth_hash_password("correct horse battery", h2, &err), &err);
    KT_CHECK(!strncmp(h1, "$argon2id$", 10), "%s", h1);
    KT_CHECK(strstr(h1, "m=65536,t=2"), "not the interactive limits: %s", h1);
    KT_CHECK(strcmp(h1, h2), "two hashes of one password share a salt");
    KT_CHECK(kt_auth_verify_password(h1, "correct horse battery") == 1);
    KT_CHECK(kt_auth_verify_password(h2, "correct horse battery") == 1);
    KT_CHECK(kt_auth_verify_password(h1, "correct horse batterY") == 0);
    KT_CHECK(kt_auth_verify_password(h1, "") == 0);
    KT_CHECK(kt_auth_verify_password(NULL, "correct horse battery") == 0, "unknown account accepted");
    KT_CHECK(kt_auth_verify_password("$argon2id$garbage", "x") == 0);
}

KT_TEST(test_auth_token_expired_and_tampered) {
    kt_err err = {0};
    KT_REQUIRE_OK(kt_auth_init(0, &err), &err);
    unsigned char key[KT_AUTH_KEY_BYTES], other[KT_AUTH_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    randombytes_buf(other, sizeof other);
    char tok[KT_AUTH_TOKEN_MAX];
    const int64_t now = 1700000000, exp = now + 1800;
    KT_REQUIRE_OK(kt_auth_token_make(key, 42, exp, tok, &err), &err);
    int64_t uid = 0;
    KT_CHECK_OK(kt_auth_token_check(key, tok, now, &uid, &err), &err);
    KT_CHECK(uid == 42);
    /* Expired: at and after the expiry second. */
    uid = 0;
    KT_CHECK(kt_auth_token_check(key, tok, exp, &uid, &err) == KT_ERR_STATE && uid == 0);
    KT_CHECK(strstr(err.msg, "expired"), "%s", err.msg);
    KT_CHECK(kt_auth_token_check(key, tok, exp + 86400, &uid, &err) == KT_ERR_STATE);
    /* Signed with another key. */
    KT_CHECK(kt_auth_token_check(other, tok, now, &uid, &err) == KT_ERR_FORMAT);
    /* Tampered: another user id, a later expiry, any flipped signature character. */
    char t2[KT_AUTH_TOKEN_MAX];
    snprintf(t2, sizeof t2, "kt1.43%s", strchr(tok + 4, '.'));
    KT_CHECK(kt_auth_token_check(key, t2, now, &uid, &err) == KT_ERR_FORMAT, "user id swap accepted");
    char *sig = strrchr(tok, '.') + 1;
    snprintf(t2, sizeof t2, "kt1.42.%lld.%s", (long long)exp + 100000, sig);
    KT_CHECK(kt_auth_token_check(key, t2, now, &uid, &err) == KT_ERR_FORMAT, "expiry extension accepted");
    size_t siglen = strlen(sig);
    for (size_t i = 0; i < siglen; i++) {
        snprintf(t2, sizeof t2, "%s", tok);
        char *s2 = strrchr(t2, '.') + 1;
        s2[i] = s2[i] == 'A' ? 'B' : 'A';
        KT_CHECK(kt_auth_token_check(key, t2, now, &uid, &err) == KT_ERR_FORMAT, "flip at %zu accepted", i);
    }
    /* Malformed. */
    const char *bad[] = {"", "kt1.", "kt1.42", "kt1.42.", "Bearer kt1.42.1", "kt1.042.1700001800.x",
                         "kt1.-42.1700001800.x", "kt1.42.1700001800.", "kt1.42.1700001800.!!!!", "jwt.header.body",
                         "kt1.42.1700001800.AAAA.extra",
                         "kt1.99999999999999999999999.1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        KT_CHECK(kt_auth_token_check(key, bad[i], now, &uid, &err) == KT_ERR_FORMAT, "'%s' accepted", bad[i]);
    KT_CHECK(kt_auth_token_check(key, NULL, now, &uid, &err) == KT_ERR_FORMAT);
    KT_CHECK(kt_auth_token_make(key, 0, exp, t2, &err) == KT_ERR_ARG);
}
