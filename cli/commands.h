/* The subcommands of the keratrack program; each parses its own options and prints its own --help.
 * Each returns the process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef KT_CLI_COMMANDS_H
#define KT_CLI_COMMANDS_H

typedef struct kt_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} kt_command;

int kt_cmd_info(int argc, char **argv);
int kt_cmd_train(int argc, char **argv);
int kt_cmd_eval(int argc, char **argv);
int kt_cmd_predict(int argc, char **argv);
int kt_cmd_diet(int argc, char **argv);
int kt_cmd_serve(int argc, char **argv);
int kt_cmd_synth(int argc, char **argv);
int kt_cmd_bench(int argc, char **argv);

/* Shared by subcommands: prints "keratrack <cmd>: <msg>" and a hint, returns 1. */
int kt_cli_fail(const char *cmd, const char *msg, const char *hint);

typedef struct kt_device_spec kt_device_spec;
/* Parses --device's value (engine/device_spec.h); a bad one is printed with a pointer at --help and
 * gives exit status 2, else 0. */
int kt_cli_device(const char *cmd, const char *text, int allow_auto, kt_device_spec *out);

typedef struct kt_backend kt_backend;
/* The backend of --device (parsed by kt_cli_device) and --precision: *be = NULL (the CPU) for
 * "cpu"; for "cuda" or "cuda:N" a CUDA backend on that GPU computing in precision (NULL: bf16; free
 * it with (*be)->destroy). Otherwise prints why (with hint
 * when this build has no CUDA backend; pointing at --device cpu and `keratrack info` when it has)
 * and returns the exit status: 1 no usable GPU, 2 a precision this device does not offer. */
int kt_cli_backend(const char *cmd, const kt_device_spec *dev, const char *precision, const char *hint, kt_backend **be);

#endif
