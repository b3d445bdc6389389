/*
 * newsalert-consumer replay: backfill and backtests over a range of the
 * articles topic (see replay.h and docs/replay.md).
 */
#include "cmd_replay.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer.h"
#include "newsalert/cli.h"
#include "newsalert/daemon.h"
#include "newsalert/http.h"
#include "newsalert/log.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "replay.h"
#include "rules.h"

#define PROG "newsalert-consumer replay"

static volatile sig_atomic_t running = 1;

/* The first signal asks for a clean stop; a second one kills. */
static void on_signal(int sig) {
    running = 0;
    signal(sig, SIG_DFL);
}

static const char synopsis[] =
    "  newsalert-consumer replay --from X --to Y [--brokers HOST:PORT[,..]]\n"
    "        [--topic news.articles] [--config FILE] [--rules FILE] [-X key=value]..\n"
    "        [--routes] [--dry-run] [--output FILE [--append]] [--output-topic TOPIC]\n"
    "        [--baseline-rules FILE]\n"
    "\n"
    "Reads the articles topic from --from to --to with manual assignment and a\n"
    "consumer that never commits (the live group's offsets are never touched),\n"
    "classifies every article and stops by itself at the end bound, which is\n"
    "resolved once at start. X and Y are each\n"
    "  beginning | end                 the low / high watermark\n"
    "  2026-01-06T00:00:00Z            RFC 3339: message timestamps (published\n"
    "                                  times); the window is [from, to)\n"
    "  0:120,1:80                      offsets per partition (--to exclusive);\n"
    "                                  only the partitions named are read\n"
    "Outputs (any combination, at least one):\n"
    "  --routes           post alerts to the config's routes; the ledger (topic\n"
    "                     news.alerts) skips every alert a route already got,\n"
    "                     waits for one a live member is sending, and sends\n"
    "                     again one it dead-lettered\n"
    "  --dry-run          print the alerts it would send, alert/v1 JSON lines\n"
    "  --output FILE      classified articles, classify's JSON lines ('-': stdout);\n"
    "                     FILE is truncated first, unless --append\n"
    "  --output-topic T   the same lines produced to topic T (key = article id)\n"
    "  --baseline-rules OLD  backtest: compare --rules (new) with OLD and print\n"
    "                     alerts gained (+) and lost (-) per topic, and per topic\n"
    "                     a summary line \"taiwan: +3 -1\"\n"
    "Ctrl-C stops cleanly (in-flight alerts finish, up to drain_timeout) and prints\n"
    "how far it got and the command that resumes from there (with --append, so\n"
    "the first run's --output lines stay). So does a delivered alert whose ledger\n"
    "record the broker refused for write_stall. Exit: 0 done (an empty range is\n"
    "said on stderr), 1 failed or interrupted, 2 bad usage.\n";

static const char extra_help[] =
    "  --from X / --to Y          the range (required; see above)\n"
    "  --routes                   post alerts to the routes (through the ledger)\n"
    "  --dry-run                  print alerts as alert/v1 JSON lines on stdout\n"
    "  --output FILE              classified articles as JSON lines\n"
    "  --append                   add to --output FILE instead of truncating it\n"
    "                             (the resume command carries it)\n"
    "  --output-topic TOPIC       classified articles to a topic\n"
    "  --baseline-rules FILE      backtest --rules against these rules\n"
    "  --lateness DUR             with a time --to, also read records written up to\n"
    "                             DUR after the first one stamped past it (1h)\n"
    "  --ts-from T / --ts-to T    keep only records stamped in [T, T) (resume uses it)\n"
    "  --progress auto|bar|log|none  progress on stderr (auto: a bar on a terminal,\n"
    "                             else a log line every --progress-interval)\n"
    "  --progress-interval DUR    time between progress log lines (5s)\n";

struct replay_args {
    struct na_consumer_conf conf;
    const char *from;
    const char *to;
    const char *output;
    const char *output_topic;
    const char *baseline;
    const char *ts_from;
    const char *ts_to;
    const char *progress;
    int64_t lateness_ms;
    int64_t progress_interval_ms;
    bool dry_run;
    bool routes;
    bool append;
};

static int file_key(void *ctx, const char *key, json_t *value, char *errstr,
                    size_t errstr_size) {
    struct replay_args *a = ctx;
    if (strcmp(key, "routes")) {
        return 0;
    }
    return na_routes_parse(value, &a->conf.routes, errstr, errstr_size) ? -1 : 1;
}

/* Flags of the replay command that the consumer's table does not know. */
static int flag(void *ctx, const char *name, const char *value, int *used, char *errstr,
                size_t errstr_size) {
    struct replay_args *a = ctx;
    static const char *const valued[] = {
        "from",    "to",    "output",   "output-topic", "baseline-rules",
        "ts-from", "ts-to", "progress", "lateness",     "progress-interval",
        NULL};
    const char **slots[] = {&a->from,     &a->to,      &a->output, &a->output_topic,
                            &a->baseline, &a->ts_from, &a->ts_to,  &a->progress,
                            NULL,         NULL};
    *used = 0;
    if (!strcmp(name, "dry-run")) {
        a->dry_run = true;
        return 1;
    }
    if (!strcmp(name, "routes")) {
        a->routes = true;
        return 1;
    }
    if (!strcmp(name, "append")) {
        a->append = true;
        return 1;
    }
    for (size_t i = 0; valued[i]; i++) {
        if (strcmp(name, valued[i])) {
            continue;
        }
        if (!value) {
            snprintf(errstr, errstr_size, "--%s needs a value", name);
            return -1;
        }
        *used = 1;
        if (slots[i]) {
            *slots[i] = value;
            return 1;
        }
        int64_t ms;
        if (na_duration_parse_ms(value, &ms) || ms < 0) {
            snprintf(errstr, errstr_size, "--%s: \"%s\" is not a duration (90s, 1h)",
                     name, value);
            return -1;
        }
        if (!strcmp(name, "lateness")) {
            a->lateness_ms = ms;
        } else if (ms > 0) {
            a->progress_interval_ms = ms;
        } else {
            snprintf(errstr, errstr_size,
                     "--progress-interval: want more than 0 (--progress none: no "
                     "progress)");
            return -1;
        }
        return 1;
    }
    return 0;
}

/* Shell-quote @p s onto @p b when it holds anything but safe characters. */
static void shell_arg(struct na_buf *b, const char *s) {
    bool plain = *s != '\0';
    for (const char *p = s; *p && plain; p++) {
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                       "-_./:=,@+%",
                       *p) != NULL;
    }
    if (plain) {
        na_buf_puts(b, s);
        return;
    }
    na_buf_puts(b, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            na_buf_puts(b, "'\\''");
        } else {
            na_buf_append(b, p, 1);
        }
    }
    na_buf_puts(b, "'");
}

/* @returns true when @p s ends with @p suffix. */
static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* A secret given on the command line is shown as "***": -X with a
 * property --dump-config hides, but for the file names (a "@FILE" value,
 * ssl.key.location, sasl.kerberos.keytab), and the options marked secret
 * (--webhook). */
static const char *shown_arg(const char *arg, bool x_value, const char *flag_name,
                             struct na_buf *tmp, bool *redacted) {
    if (x_value) {
        const char *eq = strchr(arg, '=');
        if (!eq) {
            return arg;
        }
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - arg), arg);
        if (!na_kafka_prop_is_secret(key) || ends_with(key, ".location") ||
            ends_with(key, ".keytab") || (eq[1] == '@' && eq[2] != '@')) {
            return arg;
        }
        na_buf_printf(tmp, "%s=***", key);
        *redacted = true;
        return tmp->oom ? "***" : tmp->data;
    }
    const struct na_conf_entry *e =
        flag_name ? na_conf_find(na_consumer_conf_table, flag_name) : NULL;
    if (e && (e->flags & NA_CONF_SECRET)) {
        *redacted = true;
        return "***";
    }
    return arg;
}

char *na_replay_resume_command(int argc, char **argv, const char *bounds, bool append,
                               bool *redacted) {
    static const char *const drop[] = {"--from", "--to", "--ts-from", "--ts-to", NULL};
    struct na_buf b;
    na_buf_init(&b);
    *redacted = false;
    na_buf_puts(&b, "newsalert-consumer replay");
    for (int i = 1; i < argc; i++) {
        bool skip = false;
        for (size_t k = 0; drop[k] && !skip; k++) {
            size_t n = strlen(drop[k]);
            if (!strcmp(argv[i], drop[k])) {
                skip = true;
                i++;
            } else if (!strncmp(argv[i], drop[k], n) && argv[i][n] == '=') {
                skip = true;
            }
        }
        if (!skip && !strcmp(argv[i], "--append")) {
            skip = true; /* added once below */
        }
        if (skip) {
            continue;
        }
        /* The option's name, when argv[i] is "--name=value" or "--name"
         * followed by its value, for shown_arg(). */
        char name[128] = "";
        const char *eq = strchr(argv[i], '=');
        if (!strncmp(argv[i], "--", 2)) {
            size_t n = eq ? (size_t)(eq - argv[i] - 2) : strlen(argv[i] + 2);
            snprintf(name, sizeof(name), "%.*s", (int)n, argv[i] + 2);
        }
        struct na_buf tmp;
        na_buf_init(&tmp);
        na_buf_puts(&b, " ");
        if (name[0] && eq) {
            na_buf_printf(&b, "--%s=", name);
            shell_arg(&b, shown_arg(eq + 1, false, name, &tmp, redacted));
        } else {
            shell_arg(&b, argv[i]);
            if (i + 1 < argc && (!strcmp(argv[i], "-X") || name[0])) {
                const char *v = shown_arg(argv[i + 1], !name[0], name[0] ? name : NULL,
                                          &tmp, redacted);
                if (v != argv[i + 1]) {
                    na_buf_puts(&b, " ");
                    shell_arg(&b, v);
                    i++;
                }
            }
        }
        na_buf_cleanup(&tmp);
    }
    if (append) {
        na_buf_puts(&b, " --append");
    }
    na_buf_printf(&b, " %s", bounds);
    if (b.oom) {
        na_buf_cleanup(&b);
        return NULL;
    }
    return na_buf_steal(&b);
}

static void report_interrupted(const struct na_replay_range *range, int argc, char **argv,
                               bool append) {
    uint64_t done = na_replay_range_done(range);
    uint64_t total = na_replay_range_total(range);
    char *bounds = na_replay_resume_args(range);
    bool redacted = false;
    char *cmd =
        bounds ? na_replay_resume_command(argc, argv, bounds, append, &redacted) : NULL;
    fprintf(stderr, "%s: interrupted after %llu of %llu records (%.1f%%)\n", PROG,
            (unsigned long long)done, (unsigned long long)total,
            total ? 100.0 * (double)done / (double)total : 100.0);
    for (size_t i = 0; i < range->cnt; i++) {
        const struct na_replay_part *p = &range->parts[i];
        fprintf(stderr, "  partition %d: next offset %lld (range %lld..%lld)%s\n",
                (int)p->partition, (long long)p->resume, (long long)p->start,
                (long long)p->end, p->resume >= p->end ? " done" : "");
    }
    fprintf(stderr, "resume with:\n  %s\n", cmd ? cmd : "(out of memory)");
    if (redacted) {
        fprintf(stderr, "(secrets given on the command line are shown as ***: give them "
                        "again, or keep them in a file: -X key=@FILE, the config)\n");
    }
    free(cmd);
    free(bounds);
}

/* Why a range holds nothing, for the one stderr line. */
static void report_empty(const struct na_replay_bound *from,
                         const struct na_replay_bound *to,
                         const struct na_replay_range *range, const char *topic) {
    int64_t now_ms = na_now_ms();
    bool before_retention = to->kind == NA_REPLAY_TIME && range->cnt > 0;
    bool empty_topic = true;
    for (size_t i = 0; i < range->cnt; i++) {
        before_retention &= range->parts[i].end <= range->parts[i].low;
        empty_topic &= range->parts[i].low == range->parts[i].high;
    }
    if (from->kind == NA_REPLAY_TIME && from->time_ms > now_ms) {
        fprintf(stderr, "%s: nothing to replay: the range starts in the future\n", PROG);
    } else if (empty_topic) {
        fprintf(stderr, "%s: nothing to replay: topic %s holds no records\n", PROG,
                topic);
    } else if (before_retention) {
        fprintf(stderr,
                "%s: nothing to replay: the range ends before the oldest "
                "record still retained in %s\n",
                PROG, topic);
    } else {
        fprintf(stderr, "%s: nothing to replay: no records of %s in the range\n", PROG,
                topic);
    }
}

static na_err_t parse_ts(const char *s, int64_t *ms) {
    int64_t t;
    if (na_time_parse_rfc3339_ms(s, &t) || t < 0) {
        return NA_ERR_INVALID;
    }
    *ms = t;
    return NA_OK;
}

/* NULL-terminated topic names of both rule sets, new first; free() the array. */
static const char **topic_names(const na_rules_t *a, const na_rules_t *b) {
    size_t na = na_rules_topic_count(a), nb = na_rules_topic_count(b);
    const char **v = calloc(na + nb + 1, sizeof(*v));
    size_t n = 0;
    if (!v) {
        return NULL;
    }
    for (size_t i = 0; i < na + nb; i++) {
        const char *t =
            i < na ? na_rules_topic_name(a, i) : na_rules_topic_name(b, i - na);
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++) {
            dup = !strcmp(v[k], t);
        }
        if (!dup) {
            v[n++] = t;
        }
    }
    return v;
}

int na_cmd_replay(int argc, char **argv) {
    struct replay_args a;
    struct na_replay_bound from, to;
    struct na_replay_range range;
    struct na_replay_stats stats;
    struct na_replay_diff diff;
    na_rules_t *rules = NULL, *baseline = NULL;
    rd_kafka_t *rk = NULL;
    FILE *out = NULL;
    const char **topics = NULL;
    char errstr[1024];
    struct sigaction sa;
    bool http = false;
    int rc = 0;
    na_err_t err;

    memset(&a, 0, sizeof(a));
    memset(&from, 0, sizeof(from));
    memset(&to, 0, sizeof(to));
    memset(&range, 0, sizeof(range));
    na_replay_diff_init(&diff);
    a.lateness_ms = NA_REPLAY_LATENESS_MS;
    a.progress_interval_ms = 5000;
    struct na_cli cli = {
        .prog = PROG,
        .synopsis = synopsis,
        .table = na_consumer_conf_table,
        .obj = &a.conf,
        .props = &a.conf.props,
        .file_key = file_key,
        .flag = flag,
        .extra_help = extra_help,
        .ctx = &a,
    };
    switch (na_cli_load(&cli, argc, argv)) {
    case NA_CLI_RUN:
        break;
    case NA_CLI_EXIT_OK:
        goto out;
    case NA_CLI_EXIT_FAIL:
        rc = 1;
        goto out;
    case NA_CLI_EXIT_USAGE:
        rc = 2;
        goto out;
    }
    if (a.conf.webhook &&
        na_routes_add_url(&a.conf.routes, a.conf.webhook, a.conf.webhook_format, errstr,
                          sizeof(errstr))) {
        fprintf(stderr, "%s: %s\n", PROG, errstr);
        rc = 2;
        goto out;
    }
    enum na_log_level level;
    if (na_log_level_parse(a.conf.log_level, &level)) {
        fprintf(stderr, "%s: log_level: want error|warn|info|debug\n", PROG);
        rc = 2;
        goto out;
    }
    na_log_set_level(level);
    /* log_format as the daemon takes it; http_listen is the daemon's
     * listener: a replay run opens none (docs/replay.md) */
    if (na_daemon_conf_apply(&a.conf.daemon, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s: %s\n", PROG, errstr);
        rc = 2;
        goto out;
    }
    if (!a.from || !a.to) {
        fprintf(stderr, "%s: --from and --to are required (see --help)\n", PROG);
        rc = 2;
        goto out;
    }
    if (na_replay_bound_parse(a.from, &from, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s: --from: %s\n", PROG, errstr);
        rc = 2;
        goto out;
    }
    if (na_replay_bound_parse(a.to, &to, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s: --to: %s\n", PROG, errstr);
        rc = 2;
        goto out;
    }
    if (from.kind == NA_REPLAY_TIME && to.kind == NA_REPLAY_TIME &&
        to.time_ms < from.time_ms) {
        fprintf(stderr, "%s: --to is before --from\n", PROG);
        rc = 2;
        goto out;
    }
    if (!a.routes && !a.dry_run && !a.output && !a.output_topic && !a.baseline) {
        fprintf(stderr,
                "%s: choose an output: --routes, --dry-run, --output FILE, "
                "--output-topic TOPIC or --baseline-rules FILE\n",
                PROG);
        rc = 2;
        goto out;
    }
    if (a.routes && !a.conf.routes.cnt) {
        fprintf(stderr,
                "%s: --routes: the configuration has no routes (config "
                "\"routes\" or --webhook)\n",
                PROG);
        rc = 2;
        goto out;
    }
    if (a.routes && !a.conf.ledger) {
        fprintf(stderr,
                "%s: --routes needs the ledger (ledger=true), which keeps a "
                "replay from sending an alert twice\n",
                PROG);
        rc = 2;
        goto out;
    }
    int progress = 0;
    if (!a.progress || !strcmp(a.progress, "auto")) {
        progress = isatty(2) ? 1 : 2;
    } else if (!strcmp(a.progress, "bar")) {
        progress = 1;
    } else if (!strcmp(a.progress, "log")) {
        progress = 2;
    } else if (strcmp(a.progress, "none")) {
        fprintf(stderr, "%s: --progress: want auto, bar, log or none\n", PROG);
        rc = 2;
        goto out;
    }
    if (na_rules_load_file(a.conf.rules, &rules, errstr, sizeof(errstr)) ||
        (a.baseline &&
         na_rules_load_file(a.baseline, &baseline, errstr, sizeof(errstr)))) {
        fprintf(stderr, "%s: %s\n", PROG, errstr);
        rc = 1;
        goto out;
    }
    if (!(rk = na_replay_consumer_new(a.conf.brokers, &a.conf.props, errstr,
                                      sizeof(errstr))) ||
        na_kafka_start_check(rk, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s: %s\n", PROG, errstr);
        rc = 1;
        goto out;
    }
    err = na_replay_resolve(rk, a.conf.topic, &from, &to, a.lateness_ms, 30000, &range,
                            errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "%s: %s\n", PROG, errstr);
        rc = err == NA_ERR_INVALID ? 2 : 1;
        goto out;
    }
    if ((a.ts_from && parse_ts(a.ts_from, &range.ts_from_ms)) ||
        (a.ts_to && parse_ts(a.ts_to, &range.ts_to_ms))) {
        fprintf(stderr, "%s: --ts-from/--ts-to: want an RFC 3339 time\n", PROG);
        rc = 2;
        goto out;
    }
    /* Only now: a command refused above leaves the file as it was. */
    if (a.output) {
        out = strcmp(a.output, "-") ? fopen(a.output, a.append ? "a" : "w") : stdout;
        if (!out) {
            fprintf(stderr, "%s: %s: %s\n", PROG, a.output, strerror(errno));
            rc = 1;
            goto out;
        }
    }
    for (size_t i = 0; i < range.cnt; i++) {
        const struct na_replay_part *p = &range.parts[i];
        na_log(NA_LOG_INFO, "replay", "range",
               "partition=%d start=%lld end=%lld low=%lld "
               "high=%lld",
               (int)p->partition, (long long)p->start, (long long)p->end,
               (long long)p->low, (long long)p->high);
    }
    if (!na_replay_range_total(&range)) {
        report_empty(&from, &to, &range, a.conf.topic);
    }
    if (a.routes) {
        if (na_http_global_init()) {
            fprintf(stderr, "%s: libcurl initialisation failed\n", PROG);
            rc = 1;
            goto out;
        }
        http = true;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct na_replay_opts opts = {
        .rk = rk,
        .conf = &a.conf,
        .rules = rules,
        .baseline = baseline,
        .diff = &diff,
        .post_routes = a.routes,
        .dry_run = a.dry_run ? stdout : NULL,
        .output = out,
        .output_topic = a.output_topic,
        .progress = progress,
        .progress_interval_ms = a.progress_interval_ms,
        .running = &running,
    };
    err = na_replay_run(&opts, &range, &stats, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "%s: %s\n", PROG, errstr);
        rc = 1;
    }
    if (baseline) {
        if (!(topics = topic_names(rules, baseline))) {
            fprintf(stderr, "%s: out of memory\n", PROG);
            rc = 1;
        } else {
            na_replay_diff_print(&diff, topics, stdout);
        }
    }
    if (stats.failed) {
        fprintf(stderr, "%s: %llu alert deliveries failed (see log)\n", PROG,
                (unsigned long long)stats.failed);
        rc = 1;
    }
    /* Flush before saying how to resume: the resumed run appends to
     * what is in the file now. */
    if ((out && fflush(out)) || fflush(stdout) || ferror(stdout) ||
        (out && ferror(out))) {
        fprintf(stderr, "%s: write error: %s\n", PROG, strerror(errno));
        rc = 1;
    }
    if (stats.interrupted) {
        report_interrupted(&range, argc, argv, out && out != stdout);
        rc = 1;
    }
out:
    if (out && out != stdout) {
        fclose(out);
    }
    if (rk) {
        rd_kafka_consumer_close(rk); /* nothing to commit: auto-commit is off */
        rd_kafka_destroy(rk);
    }
    if (http) {
        na_http_global_cleanup();
    }
    free(topics);
    na_replay_diff_cleanup(&diff);
    na_replay_range_cleanup(&range);
    na_replay_bound_cleanup(&from);
    na_replay_bound_cleanup(&to);
    na_rules_destroy(rules);
    na_rules_destroy(baseline);
    na_conf_cleanup(na_consumer_conf_table, &a.conf);
    na_kafka_props_cleanup(&a.conf.props);
    na_routes_cleanup(&a.conf.routes);
    return rc;
}
