/*
 * The configuration matrix: precedence flag > env > file > default, unknown
 * keys and flags named, -X passed to librdkafka with its error verbatim,
 * secrets redacted in --dump-config; first in process through na_cli_load()
 * with a table of the test's own, then on the real programs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "newsalert/cli.h"
#include "newsalert/daemon.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

struct conf {
    char *brokers;
    long long batch;
    long long timeout_ms;
    long long grace_ms;
    int once;
    char *token;
    struct na_daemon_conf daemon;
    struct na_kafka_props props;
};

#define C(f) offsetof(struct conf, f)
static const struct na_conf_entry table[] = {
    {"brokers", NA_CONF_STRING, C(brokers), "127.0.0.1:9092", "brokers", 0, 0, 0},
    {"batch", NA_CONF_INT, C(batch), "10", "batch size", 0, 1, 1000},
    {"timeout", NA_CONF_DURATION, C(timeout_ms), "30s", "timeout", 0, 0, 0},
    {"grace", NA_CONF_DURATION, C(grace_ms), "1m", "grace", 0, 250, 7 * 86400000LL},
    {"once", NA_CONF_BOOL, C(once), "false", "one round", 0, 0, 0},
    {"token", NA_CONF_STRING, C(token), NULL, "API token", NA_CONF_SECRET, 0, 0},
    NA_DAEMON_CONF_ENTRIES(struct conf, daemon),
    NA_CONF_END,
};
#undef C

static char tmpdir[PATH_MAX];

/* What one na_cli_load() run did. */
struct run {
    enum na_cli_action action;
    struct conf conf;
    char out[8192];
    char err[4096];
};

static void slurp(int fd, char *buf, size_t size) {
    ssize_t n = pread(fd, buf, size - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

/* na_cli_load() with stdout and stderr captured. @p argv NULL-terminated. */
static void cli_run(struct run *r, const char *const *argv) {
    char *args[32];
    int argc = 0;
    char path[PATH_MAX + 16];
    args[argc++] = (char *)"test";
    for (; *argv && argc < 31; argv++) {
        args[argc++] = (char *)*argv;
    }
    args[argc] = NULL;
    memset(r, 0, sizeof(*r));

    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    snprintf(path, sizeof(path), "%s/out", tmpdir);
    int out = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    snprintf(path, sizeof(path), "%s/err", tmpdir);
    int err = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(out >= 0 && err >= 0);
    dup2(out, 1);
    dup2(err, 2);
    struct na_cli cli = {
        .prog = "test",
        .synopsis = "  test [options]\n",
        .table = table,
        .obj = &r->conf,
        .props = &r->conf.props,
    };
    r->action = na_cli_load(&cli, argc, args);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    slurp(out, r->out, sizeof(r->out));
    slurp(err, r->err, sizeof(r->err));
    close(out);
    close(err);
}

static void run_cleanup(struct run *r) {
    na_conf_cleanup(table, &r->conf);
    na_kafka_props_cleanup(&r->conf.props);
}

static const char *write_file(const char *name, const char *text) {
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/na-test-config-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    unsetenv("NEWSALERT_CONFIG");
    unsetenv("NEWSALERT_BATCH");
    unsetenv("NEWSALERT_BROKERS");
    unsetenv("NEWSALERT_LOG_FORMAT");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Every combination of the four sources for one key: the highest wins. */
static void test_precedence_matrix(void **state) {
    (void)state;
    const char *cfg = write_file("p.json", "{\"batch\": 20}");
    char cfgcopy[PATH_MAX + 64];
    snprintf(cfgcopy, sizeof(cfgcopy), "%s", cfg);
    for (int mask = 0; mask < 8; mask++) {
        int file = mask & 1, env = mask & 2, flag = mask & 4;
        const char *argv[8] = {NULL};
        int n = 0;
        struct run r;
        if (file) {
            argv[n++] = "--config";
            argv[n++] = cfgcopy;
        }
        if (flag) {
            argv[n++] = "--batch";
            argv[n++] = "40";
        }
        if (env) {
            setenv("NEWSALERT_BATCH", "30", 1);
        } else {
            unsetenv("NEWSALERT_BATCH");
        }
        cli_run(&r, argv);
        assert_int_equal(r.action, NA_CLI_RUN);
        long long want = flag ? 40 : env ? 30 : file ? 20 : 10;
        if (r.conf.batch != want) {
            fail_msg("file=%d env=%d flag=%d: batch %lld, want %lld", file, !!env, !!flag,
                     r.conf.batch, want);
        }
        run_cleanup(&r);
    }
    unsetenv("NEWSALERT_BATCH");
}

static void test_config_file_from_env_and_flag_forms(void **state) {
    (void)state;
    struct run r;
    const char *cfg =
        write_file("e.json", "{\"brokers\": \"file:1\", \"timeout\": \"5m\","
                             " \"once\": true, \"log_format\": \"json\"}");
    setenv("NEWSALERT_CONFIG", cfg, 1);
    const char *argv[] = {"--timeout=250ms", "--once=false", NULL};
    cli_run(&r, argv);
    unsetenv("NEWSALERT_CONFIG");
    assert_int_equal(r.action, NA_CLI_RUN);
    assert_string_equal(r.conf.brokers, "file:1");
    assert_int_equal(r.conf.timeout_ms, 250);
    assert_int_equal(r.conf.once, 0);
    assert_string_equal(r.conf.daemon.log_format, "json");
    assert_string_equal(r.conf.daemon.http_listen, "");
    run_cleanup(&r);
}

static void test_unknown_keys_and_flags_are_named(void **state) {
    (void)state;
    struct run r;
    const char *cfg = write_file("u.json", "{\"batch\": 2, \"bacth_size\": 3}");
    const char *argv1[] = {"--config", cfg, NULL};
    cli_run(&r, argv1);
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(strstr(r.err, "unknown key \"bacth_size\""));
    assert_non_null(strstr(r.err, "u.json"));
    run_cleanup(&r);

    const char *argv2[] = {"--no-such-flag", "1", NULL};
    cli_run(&r, argv2);
    assert_int_equal(r.action, NA_CLI_EXIT_USAGE);
    assert_non_null(strstr(r.err, "unknown option \"--no-such-flag\""));
    run_cleanup(&r);

    /* Out of range and wrong type name the key and the origin. */
    setenv("NEWSALERT_BATCH", "5000", 1);
    const char *argv3[] = {NULL};
    cli_run(&r, argv3);
    unsetenv("NEWSALERT_BATCH");
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(
        strstr(r.err, "env NEWSALERT_BATCH: batch: want an integer in [1, 1000]"));
    run_cleanup(&r);

    /* A duration's range in the units it is written in, not bare ms. */
    setenv("NEWSALERT_GRACE", "8d", 1);
    cli_run(&r, argv3);
    unsetenv("NEWSALERT_GRACE");
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(strstr(r.err, "grace: want a duration (250ms, 30s, 5m, 1h) in "
                                  "[250ms, 7d]"));
    run_cleanup(&r);

    const char *argv4[] = {"--log-format", "xml", "--check-config", NULL};
    cli_run(&r, argv4);
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(strstr(r.err, "log_format: want logfmt|json, not \"xml\""));
    run_cleanup(&r);

    const char *argv5[] = {"--http-listen", "9464", "--check-config", NULL};
    cli_run(&r, argv5);
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(strstr(r.err, "http_listen: want HOST:PORT"));
    run_cleanup(&r);

    const char *bad = write_file("bad.json", "{\"batch\": 2,\n \"once\": tru}");
    const char *argv6[] = {"--config", bad, NULL};
    cli_run(&r, argv6);
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(strstr(r.err, "bad.json:2:"));
    run_cleanup(&r);

    /* A file that is not JSON is named by line and column, never by the
     * text there: that text may be a secret (an unterminated password;
     * a reload's failure is logged). */
    const char *leak =
        write_file("leak.json", "{\"token\": \"PLANTEDsecret\n, \"batch\": 2}");
    const char *argv7[] = {"--config", leak, NULL};
    cli_run(&r, argv7);
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(strstr(r.err, "leak.json:1:"));
    assert_null(strstr(r.err, "PLANTED"));
    run_cleanup(&r);
    leak = write_file("leak2.json", "{\"token\": PLANTEDsecret}");
    const char *argv8[] = {"--config", leak, NULL};
    cli_run(&r, argv8);
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(strstr(r.err, "leak2.json:1:"));
    assert_null(strstr(r.err, "PLANTED"));
    run_cleanup(&r);
}

/* A duration that is not a number is refused, wherever it comes from:
 * "nan" was read as a number and stored as -9223372036854775808 ms (a key
 * without a range, such as ledger_horizon, took it as "0: keep all"). */
static void test_duration_not_a_number_is_refused(void **state) {
    (void)state;
    static const char *const bad[] = {"nan", "NaN", "-nan", "nanms", "nan(1)h", "nand"};
    int64_t ms = 42;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (na_duration_parse_ms(bad[i], &ms) != NA_ERR_INVALID) {
            fail_msg("duration \"%s\" accepted as %lld ms", bad[i], (long long)ms);
        }
    }
    assert_int_equal(ms, 42);
    assert_int_equal(na_duration_parse_ms("1.5m", &ms), NA_OK);
    assert_int_equal(ms, 90000);

    struct run r;
    const char *argv1[] = {"--timeout", "nan", NULL};
    cli_run(&r, argv1);
    assert_int_equal(r.action, NA_CLI_EXIT_USAGE);
    assert_non_null(strstr(r.err, "flag: timeout: want a duration"));
    run_cleanup(&r);

    const char *cfg = write_file("nan.json", "{\"timeout\": \"nan\"}");
    const char *argv2[] = {"--config", cfg, NULL};
    cli_run(&r, argv2);
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(strstr(r.err, "timeout: want a duration"));
    run_cleanup(&r);
}

static void test_kafka_passthrough_error_verbatim(void **state) {
    (void)state;
    struct run r;
    char want[512];
    rd_kafka_conf_t *kconf = rd_kafka_conf_new();
    /* What librdkafka itself says about these, to compare verbatim. */
    assert_int_not_equal(
        rd_kafka_conf_set(kconf, "no.such.property", "1", want, sizeof(want)),
        RD_KAFKA_CONF_OK);
    const char *argv1[] = {"-X", "no.such.property=1", NULL};
    cli_run(&r, argv1);
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(strstr(r.err, want));
    run_cleanup(&r);

    assert_int_not_equal(
        rd_kafka_conf_set(kconf, "linger.ms", "soon", want, sizeof(want)),
        RD_KAFKA_CONF_OK);
    rd_kafka_conf_destroy(kconf);
    const char *cfg = write_file("k.json", "{\"kafka\": {\"linger.ms\": \"soon\"}}");
    const char *argv2[] = {"--config", cfg, NULL};
    cli_run(&r, argv2);
    assert_int_equal(r.action, NA_CLI_EXIT_FAIL);
    assert_non_null(strstr(r.err, want));
    run_cleanup(&r);

    const char *argv3[] = {"-X", "novalue", NULL};
    cli_run(&r, argv3);
    assert_int_equal(r.action, NA_CLI_EXIT_USAGE);
    run_cleanup(&r);

    /* -X after the file's "kafka" object: both kept in order, -X last. */
    const char *cfg2 = write_file("k2.json", "{\"kafka\": {\"linger.ms\": 5}}");
    const char *argv4[] = {"--config", cfg2, "-X", "linger.ms=7", NULL};
    cli_run(&r, argv4);
    assert_int_equal(r.action, NA_CLI_RUN);
    assert_int_equal(r.conf.props.cnt, 2);
    assert_string_equal(r.conf.props.kv[0], "linger.ms=5");
    assert_string_equal(r.conf.props.kv[1], "linger.ms=7");
    run_cleanup(&r);
}

static void test_dump_config_redacts_secrets(void **state) {
    (void)state;
    struct run r;
    json_error_t jerr;
    const char *cfg = write_file("s.json", "{\"token\": \"tok-SECRET-1\", \"kafka\": "
                                           "{\"sasl.password\": \"pw-SECRET-2\", "
                                           "\"sasl.username\": \"alice\"}}");
    const char *argv[] = {"--config", cfg, "--dump-config", NULL};
    cli_run(&r, argv);
    assert_int_equal(r.action, NA_CLI_EXIT_OK);
    assert_null(strstr(r.out, "SECRET"));
    json_t *root = json_loads(r.out, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "token")), "***");
    json_t *kafka = json_object_get(root, "kafka");
    assert_string_equal(json_string_value(json_object_get(kafka, "sasl.password")),
                        "***");
    assert_string_equal(json_string_value(json_object_get(kafka, "sasl.username")),
                        "alice");
    assert_string_equal(json_string_value(json_object_get(root, "timeout")), "30000ms");
    assert_string_equal(json_string_value(json_object_get(root, "log_format")), "logfmt");
    json_decref(root);
    run_cleanup(&r);

    const char *argv2[] = {"--check-config", NULL};
    cli_run(&r, argv2);
    assert_int_equal(r.action, NA_CLI_EXIT_OK);
    assert_non_null(strstr(r.out, "configuration ok"));
    run_cleanup(&r);

    const char *argv3[] = {"--help", NULL};
    cli_run(&r, argv3);
    assert_int_equal(r.action, NA_CLI_EXIT_OK);
    assert_non_null(strstr(r.out, "precedence: flag > NEWSALERT_* environment > config "
                                  "file > default"));
    assert_non_null(strstr(r.out, "Exit codes:"));
    assert_non_null(strstr(r.out, "--log-format"));
    assert_non_null(strstr(r.out, "NEWSALERT_HTTP_LISTEN"));
    run_cleanup(&r);
}

/* ---- the real programs ---- */

static char bindir[PATH_MAX];

struct proc {
    int status;
    char out[16384];
};

/* Run @p cmd (a shell line; "BIN" stands for the build folder) with stderr
 * merged into out. */
static void sh(struct proc *p, const char *cmd) {
    struct na_buf line;
    na_buf_init(&line);
    for (const char *c = cmd; *c; c++) {
        if (!strncmp(c, "BIN/", 4)) {
            na_buf_printf(&line, "%s/", bindir);
            c += 3;
        } else {
            na_buf_append(&line, c, 1);
        }
    }
    na_buf_puts(&line, " 2>&1");
    FILE *fp = popen(line.data, "r");
    assert_non_null(fp);
    size_t n = fread(p->out, 1, sizeof(p->out) - 1, fp);
    p->out[n] = '\0';
    int st = pclose(fp);
    p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    na_buf_cleanup(&line);
}

/* The programs sit next to this test in the build dir (CMakeLists.txt makes
 * them dependencies of test_config): missing ones are a failure, not a skip. */
static void find_programs(void) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    snprintf(bindir, sizeof(bindir), "%s", dirname(exe));
    for (int i = 0; i < 2; i++) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "%s/%s", bindir,
                 i ? "newsalert-consumer" : "newsalert-producer");
        if (access(path, X_OK)) {
            fail_msg("%s not built next to the test", path);
        }
    }
}

static void test_programs_exit_codes(void **state) {
    (void)state;
    struct proc p;
    find_programs();
    sh(&p, "BIN/newsalert-producer --version");
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "newsalert-producer "));
    sh(&p, "BIN/newsalert-producer --no-such-flag");
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.out, "--no-such-flag"));
    sh(&p, "BIN/newsalert-consumer --check-config --rules /nonexistent.json");
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "configuration ok"));
    sh(&p, "BIN/newsalert-consumer -X no.such.property=1 --check-config");
    assert_int_equal(p.status, 1);
    assert_non_null(
        strstr(p.out, "No such configuration property: \"no.such.property\""));
    const char *cfg = write_file("prog.json", "{\"fetch_concurrency\": 5, \"topik\": 1}");
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof(cmd), "BIN/newsalert-producer --config %s --check-config", cfg);
    sh(&p, cmd);
    assert_int_equal(p.status, 1);
    assert_non_null(strstr(p.out, "unknown key \"topik\""));
}

static void test_programs_precedence_and_redaction(void **state) {
    (void)state;
    struct proc p;
    json_error_t jerr;
    char cmd[PATH_MAX * 2];
    find_programs();
    const char *cfg = write_file("prog2.json", "{\"fetch_concurrency\": 5, "
                                               "\"fetch_per_host\": 6}");
    snprintf(cmd, sizeof(cmd),
             "NEWSALERT_FETCH_PER_HOST=7 NEWSALERT_FETCH_MAX_REDIRECTS=3 "
             "BIN/newsalert-producer --config %s --fetch-max-redirects 2 --dump-config",
             cfg);
    sh(&p, cmd);
    assert_int_equal(p.status, 0);
    json_t *root = json_loads(p.out, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "fetch_concurrency")), 5);
    assert_int_equal(json_integer_value(json_object_get(root, "fetch_per_host")), 7);
    assert_int_equal(json_integer_value(json_object_get(root, "fetch_max_redirects")), 2);
    json_decref(root);

    /* Webhook URLs and route secrets never appear. */
    const char *ccfg = write_file(
        "cons.json",
        "{\"routes\": [{\"name\": \"desk\", \"url\": "
        "\"https://hooks.example/services/T0/B0/URLSECRET1\", \"format\": \"json\", "
        "\"secret\": \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}],"
        " \"kafka\": {\"sasl.password\": \"PWSECRET3\"}}");
    snprintf(cmd, sizeof(cmd),
             "BIN/newsalert-consumer --config %s --webhook "
             "'https://user:PASSSECRET4@chat.example/hook/URLSECRET5?token=QSECRET6' "
             "--dump-config",
             ccfg);
    sh(&p, cmd);
    assert_int_equal(p.status, 0);
    root = json_loads(p.out, 0, &jerr);
    assert_non_null(root);
    assert_null(strstr(p.out, "SECRET"));
    assert_null(strstr(p.out, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    assert_non_null(strstr(p.out, "desk"));
    json_decref(root);
}

static void test_programs_log_format(void **state) {
    (void)state;
    struct proc p;
    find_programs();
    for (int i = 0; i < 2; i++) {
        const char *prog = i ? "newsalert-consumer" : "newsalert-producer";
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "BIN/%s --help", prog);
        sh(&p, cmd);
        assert_non_null(strstr(p.out, "--log-format"));
        snprintf(cmd, sizeof(cmd), "BIN/%s --log-format json --check-config", prog);
        sh(&p, cmd);
        assert_int_equal(p.status, 0);
        snprintf(cmd, sizeof(cmd), "BIN/%s --log-format xml --check-config", prog);
        sh(&p, cmd);
        assert_int_equal(p.status, 1);
        assert_non_null(strstr(p.out, "log_format: want logfmt|json"));
    }
}

/* A log level the daemons would refuse at start is refused by --check-config
 * too, as bad configuration (exit 1), from a flag or a config file: it was
 * "configuration ok", and the daemon then left with exit 2 (bad usage). */
static void test_programs_check_log_level(void **state) {
    (void)state;
    struct proc p;
    char cmd[PATH_MAX + 128];
    find_programs();
    const char *cfg = write_file("level.json", "{\"log_level\": \"verbose\"}");
    for (int i = 0; i < 2; i++) {
        const char *prog = i ? "newsalert-consumer" : "newsalert-producer";
        snprintf(cmd, sizeof(cmd), "BIN/%s --log-level debug --check-config", prog);
        sh(&p, cmd);
        assert_int_equal(p.status, 0);
        snprintf(cmd, sizeof(cmd), "BIN/%s --log-level loud --check-config", prog);
        sh(&p, cmd);
        assert_int_equal(p.status, 1);
        assert_non_null(
            strstr(p.out, "log_level: want error|warn|info|debug, not \"loud\""));
        snprintf(cmd, sizeof(cmd), "BIN/%s --config %s --check-config", prog, cfg);
        sh(&p, cmd);
        assert_int_equal(p.status, 1);
        assert_non_null(strstr(p.out, "log_level: want error|warn|info|debug"));
        /* The daemon itself leaves the same way, before any work. */
        snprintf(cmd, sizeof(cmd), "BIN/%s --config %s --brokers 127.0.0.1:1", prog, cfg);
        sh(&p, cmd);
        assert_int_equal(p.status, 1);
        assert_non_null(strstr(p.out, "log_level: want error|warn|info|debug"));
    }
}

/* What the consumer refuses at start, --check-config refuses too, with the
 * same message and exit code: a ledger_horizon shorter than story_window,
 * a --webhook-format no format has. Both were "configuration ok" (exit 0),
 * and the daemon then refused to start (exit 1, or 2 for the format). */
static void test_programs_check_config_refuses_what_the_start_refuses(void **state) {
    (void)state;
    struct proc p;
    find_programs();
    const char *horizon = "ledger_horizon (86400000 ms) is shorter than story_window "
                          "(259200000 ms)";
    const char *format = "\"nope\" is not one of json|slack";
    const char *cmds[][2] = {
        {"BIN/newsalert-consumer --ledger-horizon 1d --check-config", horizon},
        {"BIN/newsalert-consumer --ledger-horizon 1d --brokers 127.0.0.1:1", horizon},
        {"BIN/newsalert-consumer --webhook http://127.0.0.1:9/x --webhook-format nope "
         "--check-config",
         format},
        {"BIN/newsalert-consumer --webhook http://127.0.0.1:9/x --webhook-format nope "
         "--brokers 127.0.0.1:1",
         format},
        {"BIN/newsalert-consumer --webhook http://127.0.0.1:9/x --webhook-format nope "
         "--dump-config",
         format},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        sh(&p, cmds[i][0]);
        if (p.status != 1 || !strstr(p.out, cmds[i][1])) {
            fail_msg("%s: exit %d, output: %s", cmds[i][0], p.status, p.out);
        }
    }
    /* Without stories, or without the ledger, or keeping every alert
     * (0), a short horizon is fine; so is a known format. */
    sh(&p, "BIN/newsalert-consumer --ledger-horizon 1d --stories=false --check-config");
    assert_int_equal(p.status, 0);
    sh(&p, "BIN/newsalert-consumer --ledger-horizon 1d --ledger=false --check-config");
    assert_int_equal(p.status, 0);
    sh(&p, "BIN/newsalert-consumer --ledger-horizon 0 --check-config");
    assert_int_equal(p.status, 0);
    sh(&p, "BIN/newsalert-consumer --webhook http://127.0.0.1:9/x --webhook-format slack "
           "--check-config");
    assert_int_equal(p.status, 0);
    assert_non_null(strstr(p.out, "configuration ok"));
}

static char *write_tmp(const char *dir, const char *name, const char *text) {
    char *path = NULL;
    struct na_buf b;
    na_buf_init(&b);
    na_buf_printf(&b, "%s/%s", dir, name);
    path = na_buf_steal(&b);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* Secrets from files: one line, final newline dropped, relative names in
 * $CREDENTIALS_DIRECTORY, errors name the file and never the content. */
static void test_secret_files(void **state) {
    (void)state;
    char dir[] = "/tmp/na-secret-XXXXXX";
    char errstr[512];
    char *out = NULL;
    assert_non_null(mkdtemp(dir));
    char *one = write_tmp(dir, "one", "s3cret-value\n");
    char *two = write_tmp(dir, "two", "line1\nline2\n");
    char *empty = write_tmp(dir, "empty", "\n");

    assert_int_equal(na_conf_read_secret(one, &out, errstr, sizeof(errstr)), NA_OK);
    assert_string_equal(out, "s3cret-value");
    free(out);
    assert_int_equal(na_conf_read_secret(two, &out, errstr, sizeof(errstr)),
                     NA_ERR_CONFIG);
    assert_null(out);
    assert_non_null(strstr(errstr, "want one non-empty line"));
    assert_null(strstr(errstr, "line1"));
    assert_int_equal(na_conf_read_secret(empty, &out, errstr, sizeof(errstr)),
                     NA_ERR_CONFIG);
    assert_int_not_equal(na_conf_read_secret("-", &out, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_conf_read_secret("missing", &out, errstr, sizeof(errstr)),
                     NA_ERR_IO);

    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    assert_int_equal(na_conf_read_secret("one", &out, errstr, sizeof(errstr)), NA_OK);
    assert_string_equal(out, "s3cret-value");
    free(out);

    /* -X key=@FILE for password-like keys only; @@ escapes; the source is
     * kept so that a reload reads the file again. */
    struct na_kafka_props props = {NULL, 0, NULL};
    assert_int_equal(na_kafka_props_add(&props, "sasl.password=@one"), NA_OK);
    assert_int_equal(na_kafka_props_add(&props, "ssl.key.password=@@literal"), NA_OK);
    assert_int_equal(na_kafka_props_add(&props, "client.id=@not-a-file"), NA_OK);
    assert_int_equal(na_kafka_props_resolve(&props, errstr, sizeof(errstr)), NA_OK);
    assert_string_equal(props.kv[0], "sasl.password=s3cret-value");
    assert_string_equal(props.kv[1], "ssl.key.password=@literal");
    assert_string_equal(props.kv[2], "client.id=@not-a-file");
    assert_string_equal(props.src[0], "sasl.password=@one");
    char *again = write_tmp(dir, "one", "rotated\n");
    free(again);
    assert_int_equal(na_kafka_props_resolve(&props, errstr, sizeof(errstr)), NA_OK);
    assert_string_equal(props.kv[0], "sasl.password=rotated");
    na_kafka_props_cleanup(&props);

    assert_int_equal(na_kafka_props_add(&props, "sasl.password=@nowhere"), NA_OK);
    assert_int_equal(na_kafka_props_resolve(&props, errstr, sizeof(errstr)), NA_ERR_IO);
    assert_non_null(strstr(errstr, "kafka sasl.password: "));
    na_kafka_props_cleanup(&props);
    unsetenv("CREDENTIALS_DIRECTORY");

    unlink(one);
    unlink(two);
    unlink(empty);
    rmdir(dir);
    free(one);
    free(two);
    free(empty);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_precedence_matrix),
        cmocka_unit_test(test_config_file_from_env_and_flag_forms),
        cmocka_unit_test(test_unknown_keys_and_flags_are_named),
        cmocka_unit_test(test_duration_not_a_number_is_refused),
        cmocka_unit_test(test_kafka_passthrough_error_verbatim),
        cmocka_unit_test(test_dump_config_redacts_secrets),
        cmocka_unit_test(test_programs_exit_codes),
        cmocka_unit_test(test_programs_precedence_and_redaction),
        cmocka_unit_test(test_programs_log_format),
        cmocka_unit_test(test_programs_check_log_level),
        cmocka_unit_test(test_programs_check_config_refuses_what_the_start_refuses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
