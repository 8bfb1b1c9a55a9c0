/* Bad input to the trainer (issue 5, item 7): each gives a clear error naming what is wrong, and no
 * partial checkpoint is left behind. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "kt_fixture.h"
#include "kt_test.h"
#include "nets/model.h"
#include "test_trainer_util.h"
#include "train/trainer.h"

KT_TEST(test_train_bad_unknown_model) {
    kt_train_config c;
    kt_train_config_default(&c);
    c.data = "x";
    c.out = "y";
    c.arch = "convnext_gigantic";
    kt_err err = {0};
    KT_CHECK(kt_train_config_validate(&c, &err) == KT_ERR_ARG, "accepted");
    KT_CHECK(strstr(err.msg, "convnext_gigantic") && strstr(err.msg, "convnext_atto") && strstr(err.msg, "smallcnn"),
             "the error names the model and the known ones: %s", err.msg);
    KT_CHECK(kt_train_run(&c, NULL, &err) == KT_ERR_ARG, "run accepted it");
}

KT_TEST(test_train_bad_one_fold) {
    kt_train_config c;
    kt_train_config_default(&c);
    c.data = "x";
    c.out = "y";
    c.folds = 1;
    kt_err err = {0};
    KT_CHECK(kt_train_config_validate(&c, &err) == KT_ERR_ARG && strstr(err.msg, "--folds 1") && strstr(err.msg, "at least 2"),
             "%s", err.msg);
}

KT_TEST(test_train_bad_options) {
    kt_train_config c;
    kt_train_config_default(&c);
    c.data = "x";
    c.out = "y";
    kt_err err = {0};
    c.img_size = 100; /* ConvNeXt needs multiples of 32 */
    KT_CHECK(kt_train_config_validate(&c, &err) == KT_ERR_ARG && strstr(err.msg, "--img-size 100"), "%s", err.msg);
    kt_train_config_default(&c);
    c.data = "x";
    c.out = "y";
    c.label_smoothing = 1.0f;
    KT_CHECK(kt_train_config_validate(&c, &err) == KT_ERR_ARG && strstr(err.msg, "--label-smoothing"), "%s", err.msg);
    kt_train_config_default(&c);
    c.out = "y";
    KT_CHECK(kt_train_config_validate(&c, &err) == KT_ERR_ARG && strstr(err.msg, "--data"), "%s", err.msg);
}

KT_TEST(test_train_bad_no_train_split) {
    char *data = kt_tt_synth("shapes", 3, 8, 32, 3, 0), *out = NULL;
    KT_REQUIRE(data, "dataset");
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/train'", data);
    KT_REQUIRE(system(cmd) == 0, "rm");
    kt_train_config c;
    kt_tt_config(&c, data, "run", &out);
    kt_err err = {0};
    kt_status s = kt_train_run(&c, NULL, &err);
    KT_CHECK(s != KT_OK && strstr(err.msg, "no train split") && strstr(err.msg, data), "%s", err.msg);
    KT_CHECK(kt_fixture_count_named(out, ".safetensors") == 0, "a checkpoint was written");
    free(data);
    free(out);
}

/* Rewrites <data>/<split>/_classes.csv keeping the header, the rows of other classes, and the first
 * `keep` rows whose last column (the last class) is 1. */
static void keep_last_class(const char *data, const char *split, int keep) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s/_classes.csv", data, split);
    char *text = NULL;
    size_t n = 0;
    kt_err err = {0};
    if (kt_file_read(path, &text, &n, &err) != KT_OK) {
        kt_test_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    FILE *f = fopen(path, "w");
    int kept = 0, first = 1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        size_t len = strlen(line);
        int last_one = len >= 3 && !strcmp(line + len - 3, ", 1");
        if (!first && last_one && kept++ >= keep) continue;
        fprintf(f, "%s\n", line);
        first = 0;
    }
    fclose(f);
    free(text);
}

KT_TEST(test_train_bad_class_missing_from_training_fold) {
    char *data = kt_tt_synth("shapes", 3, 8, 32, 19, 0), *out = NULL;
    KT_REQUIRE(data, "dataset");
    keep_last_class(data, "train", 1); /* one triangle in TRAIN+VALID */
    keep_last_class(data, "valid", 0);
    kt_train_config c;
    kt_tt_config(&c, data, "run", &out);
    kt_err err = {0};
    KT_CHECK(kt_train_run(&c, NULL, &err) == KT_ERR_ARG, "accepted: %s", err.msg);
    KT_CHECK(strstr(err.msg, "class 'triangle'") && strstr(err.msg, "training images of fold") && strstr(err.msg, "1 image"),
             "the error names the class and the fold: %s", err.msg);
    KT_CHECK(kt_fixture_count_named(out, ".safetensors") == 0, "a checkpoint was written");
    free(data);
    free(out);
}

KT_TEST(test_train_bad_class_missing_from_validation_fold) {
    char *data = kt_tt_synth("shapes", 3, 9, 32, 21, 0), *out = NULL;
    KT_REQUIRE(data, "dataset");
    keep_last_class(data, "train", 2); /* two triangles, three folds: one fold validates without any */
    keep_last_class(data, "valid", 0);
    kt_train_config c;
    kt_tt_config(&c, data, "run", &out);
    c.folds = 3;
    kt_err err = {0};
    KT_CHECK(kt_train_run(&c, NULL, &err) == KT_ERR_ARG, "accepted: %s", err.msg);
    KT_CHECK(strstr(err.msg, "class 'triangle'") && strstr(err.msg, "validation images of fold") && strstr(err.msg, "3 folds"),
             "%s", err.msg);
    free(data);
    free(out);
}

KT_TEST(test_train_bad_batch_larger_than_data) {
    char *data = kt_tt_synth("shapes", 3, 8, 32, 23, 0), *out = NULL;
    KT_REQUIRE(data, "dataset");
    kt_train_config c;
    kt_tt_config(&c, data, "run", &out);
    c.batch = 64; /* 30 folded images: 15 to train on per fold */
    kt_err err = {0};
    KT_CHECK(kt_train_run(&c, NULL, &err) == KT_ERR_ARG, "accepted");
    KT_CHECK(strstr(err.msg, "--batch 64") && strstr(err.msg, "15 training images of fold 1"), "%s", err.msg);
    free(data);
    free(out);
}

KT_TEST(test_train_bad_init_other_architecture) {
    char *data = kt_tt_synth("shapes", 3, 8, 32, 25, 0), *out = NULL;
    KT_REQUIRE(data, "dataset");
    /* a smallcnn checkpoint given to a convnext_atto run */
    kt_model m;
    kt_model_opts o = {.arch = "smallcnn", .num_classes = 3, .batch = 1, .img_h = 32, .img_w = 32};
    kt_err err = {0};
    KT_REQUIRE_OK(kt_model_create(&m, &o, NULL, &err), &err);
    KT_REQUIRE_OK(kt_model_init_weights(&m, 1, &err), &err);
    char ckpt[8192];
    snprintf(ckpt, sizeof ckpt, "%s/small.safetensors", kt_test_tmpdir());
    KT_REQUIRE_OK(kt_model_save_weights(&m, ckpt, NULL, &err), &err);
    kt_model_free(&m);
    kt_train_config c;
    kt_tt_config(&c, data, "run", &out);
    c.arch = "convnext_atto";
    c.init = ckpt;
    KT_CHECK(kt_train_run(&c, NULL, &err) == KT_ERR_ARG, "accepted: %s", err.msg);
    KT_CHECK(strstr(err.msg, "--init") && strstr(err.msg, "smallcnn") && strstr(err.msg, "not convnext_atto"), "%s", err.msg);
    KT_CHECK(kt_fixture_count_named(out, "_best.safetensors") == 0, "a checkpoint was written");
    /* a missing file */
    c.init = "/nonexistent/x.safetensors";
    KT_CHECK(kt_train_run(&c, NULL, &err) != KT_OK && strstr(err.msg, "/nonexistent/x.safetensors"), "%s", err.msg);
    free(data);
    free(out);
}

/* --init from our own checkpoint with another class count: the head is new, the rest loaded. */
KT_TEST(test_train_init_finetunes_with_new_head) {
    char *data3 = kt_tt_synth("three", 3, 8, 32, 27, 0), *data4 = kt_tt_synth("four", 4, 8, 32, 29, 0), *out3 = NULL, *out4 = NULL;
    KT_REQUIRE(data3 && data4, "datasets");
    kt_train_config c;
    kt_tt_config(&c, data3, "run3", &out3);
    c.epochs = 1;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_train_run(&c, NULL, &err), &err);
    char ckpt[8192], logpath[8192];
    snprintf(ckpt, sizeof ckpt, "%s/smallcnn_fold1_best.safetensors", out3);
    snprintf(logpath, sizeof logpath, "%s/log.txt", kt_test_tmpdir());
    kt_tt_config(&c, data4, "run4", &out4);
    c.epochs = 1;
    c.init = ckpt;
    c.log = fopen(logpath, "w+");
    KT_REQUIRE(c.log, "log file");
    KT_CHECK_OK(kt_train_run(&c, NULL, &err), &err);
    fclose(c.log);
    char *log = kt_tt_read(kt_test_tmpdir(), "log.txt");
    KT_CHECK(log && strstr(log, "new classifier head"), "log: %.300s", log ? log : "");
    free(log);
    free(data3), free(data4), free(out3), free(out4);
}

KT_TEST(test_train_bad_out_under_a_file) {
    char *data = kt_tt_synth("shapes", 3, 8, 32, 31, 0);
    KT_REQUIRE(data, "dataset");
    char file[8192];
    snprintf(file, sizeof file, "%s/plainfile", kt_test_tmpdir());
    FILE *f = fopen(file, "w");
    KT_REQUIRE(f, "file");
    fputs("x", f);
    fclose(f);
    char *out = NULL;
    kt_train_config c;
    kt_tt_config(&c, data, "plainfile/run", &out);
    kt_err err = {0};
    kt_status s = kt_train_run(&c, NULL, &err);
    KT_CHECK(s == KT_ERR_IO && strstr(err.msg, "plainfile"), "status %d: %s", s, err.msg);
    free(data);
    free(out);
}

/* A full disk while saving: the child process may write at most 64 KiB per file (RLIMIT_FSIZE, with
 * SIGXFSZ ignored so writes fail with EFBIG). folds.csv fits; the first best checkpoint (377 KB of
 * smallcnn weights) does not: the run fails naming it, and no checkpoint or temporary file is left. */
KT_TEST(test_train_bad_full_disk_leaves_no_partial_checkpoint) {
    char *data = kt_tt_synth("shapes", 3, 8, 32, 33, 0), *out = NULL;
    KT_REQUIRE(data, "dataset");
    kt_train_config c;
    kt_tt_config(&c, data, "run", &out);
    c.epochs = 1;
    int fds[2];
    KT_REQUIRE(pipe(fds) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    KT_REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {.rlim_cur = 64 * 1024, .rlim_max = 64 * 1024};
        setrlimit(RLIMIT_FSIZE, &rl);
        kt_err err = {0};
        kt_status s = kt_train_run(&c, NULL, &err);
        char msg[KT_ERR_MSG_MAX + 16];
        int n = snprintf(msg, sizeof msg, "%d %s", (int)s, err.msg);
        ssize_t w = write(fds[1], msg, (size_t)n);
        (void)w;
        _exit(0);
    }
    close(fds[1]);
    char msg[KT_ERR_MSG_MAX + 16] = {0};
    ssize_t got = 0, r;
    while ((r = read(fds[0], msg + got, sizeof msg - 1 - (size_t)got)) > 0) got += r;
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    KT_REQUIRE(WIFEXITED(st), "the child died (signal %d)", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    int code = atoi(msg);
    KT_CHECK(code == KT_ERR_IO, "status %d: %s", code, msg);
    KT_CHECK(strstr(msg, "smallcnn_fold1_best.safetensors") != NULL, "the error names the checkpoint: %s", msg);
    KT_CHECK(kt_fixture_count_named(out, ".safetensors") == 0, "a (partial) checkpoint was left in %s", out);
    KT_CHECK(kt_fixture_count_named(out, ".tmp.") == 0, "a temporary file was left in %s", out);
    free(data);
    free(out);
}
