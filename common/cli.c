#include "newsalert/cli.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/daemon.h"
#include "newsalert/util.h"

static void help(const struct na_cli *cli) {
    printf("Usage:\n%s\n", cli->synopsis);
    printf("Options (precedence: flag > NEWSALERT_* environment > config file > "
           "default):\n");
    printf("  %-26s JSON config file (env NEWSALERT_CONFIG); its keys are the "
           "option names\n",
           "--config FILE");
    printf("  %-26s librdkafka property, as kcat -X; also the config's \"kafka\" "
           "object\n",
           "-X key=value");
    na_conf_help(cli->table, stdout);
    if (cli->extra_help) {
        printf("%s", cli->extra_help);
    }
    printf("  %-26s validate the configuration and exit\n", "--check-config");
    printf("  %-26s with --check-config: also connect to the brokers and say\n"
           "  %-26s whether TLS and SASL let us in (exit 1 when not)\n",
           "--connect", "");
    printf("  %-26s print the resolved configuration (secrets redacted) and exit\n",
           "--dump-config");
    printf("  %-26s print the version and exit\n", "--version");
    printf("  %-26s this text\n", "--help");
    printf("Exit codes: 0 success, 1 bad input or a failed run, 2 bad usage.\n");
}

static int apply_file(const struct na_cli *cli, const char *path, char *errstr,
                      size_t errstr_size) {
    json_t *root = NULL;
    const char *key;
    json_t *v;
    int rc = -1;
    static const char *const skip_all[] = {NULL};
    json_t *rest = NULL;

    if (na_conf_load_file(path, &root, errstr, errstr_size)) {
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(errstr, errstr_size, "%s: the config must be a JSON object", path);
        goto out;
    }
    rest = json_object();
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "kafka")) {
            const char *k;
            json_t *kv;
            if (!json_is_object(v)) {
                snprintf(errstr, errstr_size, "%s: kafka: want an object of properties",
                         path);
                goto out;
            }
            json_object_foreach(v, k, kv) {
                struct na_buf line;
                na_buf_init(&line);
                if (json_is_string(kv)) {
                    na_buf_printf(&line, "%s=%s", k, json_string_value(kv));
                } else if (json_is_integer(kv)) {
                    na_buf_printf(&line, "%s=%lld", k, (long long)json_integer_value(kv));
                } else if (json_is_boolean(kv)) {
                    na_buf_printf(&line, "%s=%s", k, json_is_true(kv) ? "true" : "false");
                } else {
                    snprintf(errstr, errstr_size,
                             "%s: kafka.%s: want a string, number "
                             "or boolean",
                             path, k);
                    na_buf_cleanup(&line);
                    goto out;
                }
                char *s = na_buf_steal(&line);
                na_err_t err = s ? na_kafka_props_add(cli->props, s) : NA_ERR_NOMEM;
                free(s);
                if (err) {
                    snprintf(errstr, errstr_size, "%s: kafka.%s: %s", path, k,
                             na_err2str(err));
                    goto out;
                }
            }
            continue;
        }
        if (cli->file_key && !na_conf_find(cli->table, key)) {
            int r = cli->file_key(cli->ctx, key, v, errstr, errstr_size);
            if (r < 0) {
                goto out;
            }
            if (r > 0) {
                continue;
            }
        }
        json_object_set(rest, key, v);
    }
    if (na_conf_apply_json(cli->table, cli->obj, rest, path, skip_all, errstr,
                           errstr_size)) {
        goto out;
    }
    rc = 0;
out:
    json_decref(rest);
    json_decref(root);
    return rc;
}

/* --check-config --connect: a producer client of the resolved settings asks
 * the brokers for metadata (what every daemon does first). */
static enum na_cli_action check_connect(const struct na_cli *cli) {
    char errstr[1024];
    char value[256];
    size_t value_size;
    const char *brokers = NULL;
    const struct na_conf_entry *e = na_conf_find(cli->table, "brokers");
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *kconf;
    int cnt = 0;
    enum na_cli_action rc = NA_CLI_EXIT_FAIL;

    if (e && e->type == NA_CONF_STRING) {
        brokers = *(char *const *)((const char *)cli->obj + e->offset);
    }
    if (!(kconf = na_kafka_conf_new(brokers, cli->props, errstr, sizeof(errstr)))) {
        fprintf(stderr, "%s: %s\n", cli->prog, errstr);
        return NA_CLI_EXIT_FAIL;
    }
    /* One line on stderr is the answer: librdkafka's own lines stay quiet. */
    if (na_kafka_conf_set(kconf, "client.id", NA_KAFKA_QUIET_CLIENT, errstr,
                          sizeof(errstr))) {
        rd_kafka_conf_destroy(kconf);
        fprintf(stderr, "%s: %s\n", cli->prog, errstr);
        return NA_CLI_EXIT_FAIL;
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof(errstr)))) {
        rd_kafka_conf_destroy(kconf);
        fprintf(stderr, "%s: %s\n", cli->prog, errstr);
        return NA_CLI_EXIT_FAIL;
    }
    na_err_t err = na_kafka_check_connect(rk, NA_KAFKA_CHECK_TIMEOUT_MS, &cnt, errstr,
                                          sizeof(errstr));
    if (err) {
        fprintf(stderr, "%s: kafka: %s\n", cli->prog, errstr);
        goto out;
    }
    char proto[64] = "plaintext", mech[64] = "";
    value_size = sizeof(proto);
    (void)rd_kafka_conf_get(rd_kafka_conf(rk), "security.protocol", proto, &value_size);
    value_size = sizeof(mech);
    (void)rd_kafka_conf_get(rd_kafka_conf(rk), "sasl.mechanisms", mech, &value_size);
    value_size = sizeof(value);
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "bootstrap.servers", value, &value_size)) {
        value[0] = '\0';
    }
    bool sasl = !strncasecmp(proto, "sasl", 4);
    bool tls = !strcasecmp(proto, "ssl") || !strcasecmp(proto, "sasl_ssl");
    char verify[16] = "true", endpoint[16] = "https";
    value_size = sizeof(verify);
    (void)rd_kafka_conf_get(rd_kafka_conf(rk), "enable.ssl.certificate.verification",
                            verify, &value_size);
    value_size = sizeof(endpoint);
    (void)rd_kafka_conf_get(rd_kafka_conf(rk), "ssl.endpoint.identification.algorithm",
                            endpoint, &value_size);
    const char *checked = !tls                     ? ""
                          : strcmp(verify, "true") ? ", broker certificate NOT verified"
                          : strcmp(endpoint, "https") ? ", broker certificate verified "
                                                        "(hostname not checked)"
                                                      : ", broker certificate and "
                                                        "hostname verified";
    printf("%s: configuration ok; connected to %s (%d broker%s) over %s%s%s%s\n",
           cli->prog, value, cnt, cnt == 1 ? "" : "s", proto,
           sasl ? ", authenticated with " : "", sasl ? mech : "", checked);
    rc = NA_CLI_EXIT_OK;
out:
    rd_kafka_destroy(rk);
    return rc;
}

enum na_cli_action na_cli_load(const struct na_cli *cli, int argc, char **argv) {
    char errstr[1024];
    const char *config = getenv("NEWSALERT_CONFIG");
    int dump = 0, check = 0, connect = 0;

    /* Pass 1: --help, --version and --config come first. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help(cli);
            return NA_CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("%s %s (librdkafka %s)\n", cli->prog, NA_VERSION,
                   rd_kafka_version_str());
            return NA_CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: --config needs a file\n", cli->prog);
                return NA_CLI_EXIT_USAGE;
            }
            config = argv[++i];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            config = argv[i] + 9;
        }
    }
    if (na_conf_defaults(cli->table, cli->obj, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s: %s\n", cli->prog, errstr);
        return NA_CLI_EXIT_FAIL;
    }
    if (config && apply_file(cli, config, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s: %s\n", cli->prog, errstr);
        return NA_CLI_EXIT_FAIL;
    }
    if (na_conf_apply_env(cli->table, cli->obj, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s: %s\n", cli->prog, errstr);
        return NA_CLI_EXIT_FAIL;
    }

    /* Pass 2: flags. */
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        char name[128];
        const char *value = NULL;
        int value_from_next = 0;

        if (!strcmp(arg, "--config")) {
            i++;
            continue;
        }
        if (!strncmp(arg, "--config=", 9)) {
            continue;
        }
        if (!strcmp(arg, "-X")) {
            if (i + 1 >= argc || na_kafka_props_add(cli->props, argv[i + 1])) {
                fprintf(stderr, "%s: -X wants key=value\n", cli->prog);
                return NA_CLI_EXIT_USAGE;
            }
            i++;
            continue;
        }
        if (!strcmp(arg, "--dump-config")) {
            dump = 1;
            continue;
        }
        if (!strcmp(arg, "--check-config")) {
            check = 1;
            continue;
        }
        if (!strcmp(arg, "--connect")) {
            connect = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) || !arg[2]) {
            fprintf(stderr, "%s: unexpected argument \"%s\" (see --help)\n", cli->prog,
                    arg);
            return NA_CLI_EXIT_USAGE;
        }
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nlen >= sizeof(name)) {
            fprintf(stderr, "%s: unknown option \"%s\"\n", cli->prog, arg);
            return NA_CLI_EXIT_USAGE;
        }
        memcpy(name, arg + 2, nlen);
        name[nlen] = '\0';
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[i + 1];
            value_from_next = 1;
        }
        const struct na_conf_entry *e = na_conf_find(cli->table, name);
        if (e) {
            if (e->type == NA_CONF_BOOL && !eq) {
                value = "true";
                value_from_next = 0;
            }
            if (!value) {
                fprintf(stderr, "%s: --%s needs a value\n", cli->prog, name);
                return NA_CLI_EXIT_USAGE;
            }
            if (na_conf_set(e, cli->obj, value, "flag", errstr, sizeof(errstr))) {
                fprintf(stderr, "%s: %s\n", cli->prog, errstr);
                return NA_CLI_EXIT_USAGE;
            }
            i += value_from_next;
            continue;
        }
        if (cli->flag) {
            int used = 0;
            int r =
                cli->flag(cli->ctx, name, eq ? value : (value_from_next ? value : NULL),
                          &used, errstr, sizeof(errstr));
            if (r < 0) {
                fprintf(stderr, "%s: %s\n", cli->prog, errstr);
                return NA_CLI_EXIT_USAGE;
            }
            if (r > 0) {
                i += eq ? 0 : used;
                continue;
            }
        }
        fprintf(stderr, "%s: unknown option \"--%s\" (see --help)\n", cli->prog, name);
        return NA_CLI_EXIT_USAGE;
    }

    if (connect && !check) {
        fprintf(stderr, "%s: --connect goes with --check-config\n", cli->prog);
        return NA_CLI_EXIT_USAGE;
    }
    /* Secrets given as "-X sasl.password=@FILE" are read now. */
    if (na_kafka_props_resolve(cli->props, errstr, sizeof(errstr))) {
        fprintf(stderr, "%s: %s\n", cli->prog, errstr);
        return NA_CLI_EXIT_FAIL;
    }
    /* -X and "kafka" are checked by librdkafka itself, its text verbatim. */
    rd_kafka_conf_t *kconf = na_kafka_conf_new(NULL, cli->props, errstr, sizeof(errstr));
    if (!kconf) {
        fprintf(stderr, "%s: %s\n", cli->prog, errstr);
        return NA_CLI_EXIT_FAIL;
    }
    rd_kafka_conf_destroy(kconf);
    if (na_daemon_conf_check(cli->table, cli->obj, errstr, sizeof(errstr)) ||
        (cli->check && cli->check(cli->ctx, errstr, sizeof(errstr)))) {
        fprintf(stderr, "%s: %s\n", cli->prog, errstr);
        return NA_CLI_EXIT_FAIL;
    }

    if (dump) {
        json_t *root = na_conf_dump(cli->table, cli->obj);
        json_t *kafka = json_object();
        for (size_t i = 0; i < cli->props->cnt; i++) {
            const char *kv = cli->props->kv[i];
            const char *eq = strchr(kv, '=');
            char key[256];
            snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
            json_object_set_new(
                kafka, key, json_string(na_kafka_prop_is_secret(key) ? "***" : eq + 1));
        }
        json_object_set_new(root, "kafka", kafka);
        if (cli->dump) {
            cli->dump(cli->ctx, root);
        }
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(root);
        return NA_CLI_EXIT_OK;
    }
    if (check && connect) {
        return check_connect(cli);
    }
    if (check) {
        printf("%s: configuration ok\n", cli->prog);
        return NA_CLI_EXIT_OK;
    }
    return NA_CLI_RUN;
}
