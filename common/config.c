#include "newsalert/config.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

#define FIELD(obj, e, type) ((type *)((char *)(obj) + (e)->offset))

static int key_eq(const char *key, const char *name) {
    for (; *key && *name; key++, name++) {
        char a = *key == '-' ? '_' : *key;
        char b = *name == '-' ? '_' : *name;
        if (a != b) {
            return 0;
        }
    }
    return !*key && !*name;
}

const struct na_conf_entry *na_conf_find(const struct na_conf_entry *table,
                                         const char *key) {
    for (const struct na_conf_entry *e = table; e->key; e++) {
        if (key_eq(e->key, key)) {
            return e;
        }
    }
    return NULL;
}

static int parse_bool(const char *v, int *out) {
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
        !strcasecmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* @p ms in the largest unit that writes it whole ("7d", "90s", "250ms"), as
 * na_duration_parse_ms() reads it back. @returns @p buf. */
static const char *duration_text(long long ms, char *buf, size_t size) {
    static const struct {
        long long ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms && ms % units[i].ms == 0) {
            snprintf(buf, size, "%lld%s", ms / units[i].ms, units[i].unit);
            return buf;
        }
    }
    snprintf(buf, size, "%lldms", ms);
    return buf;
}

na_err_t na_conf_set(const struct na_conf_entry *e, void *obj, const char *value,
                     const char *origin, char *errstr, size_t errstr_size) {
    long long ll;
    int64_t ms;
    int b;
    char *end = NULL;

    switch (e->type) {
    case NA_CONF_STRING: {
        char *s = na_strdup(value);
        if (!s) {
            return NA_ERR_NOMEM;
        }
        free(*FIELD(obj, e, char *));
        *FIELD(obj, e, char *) = s;
        return NA_OK;
    }
    case NA_CONF_INT:
        if (na_parse_int64(value, e->min || e->max ? e->min : -(1LL << 62),
                           e->min || e->max ? e->max : (1LL << 62), &ll)) {
            break;
        }
        *FIELD(obj, e, long long) = ll;
        return NA_OK;
    case NA_CONF_DURATION:
        if (na_duration_parse_ms(value, &ms) ||
            ((e->min || e->max) && (ms < e->min || ms > e->max))) {
            break;
        }
        *FIELD(obj, e, long long) = ms;
        return NA_OK;
    case NA_CONF_BOOL:
        if (parse_bool(value, &b)) {
            break;
        }
        *FIELD(obj, e, int) = b;
        return NA_OK;
    case NA_CONF_DOUBLE: {
        double d = strtod(value, &end);
        if (end == value || *end) {
            break;
        }
        *FIELD(obj, e, double) = d;
        return NA_OK;
    }
    }
    static const char *const want[] = {"a string", "an integer", "a boolean",
                                       "a duration (250ms, 30s, 5m, 1h)", "a number"};
    if (e->type == NA_CONF_DURATION && (e->min || e->max)) {
        char lo[32], hi[32];
        snprintf(errstr, errstr_size, "%s: %s: want %s in [%s, %s]", origin, e->key,
                 want[e->type], duration_text(e->min, lo, sizeof(lo)),
                 duration_text(e->max, hi, sizeof(hi)));
    } else if (e->type == NA_CONF_INT && (e->min || e->max)) {
        snprintf(errstr, errstr_size, "%s: %s: want %s in [%lld, %lld]", origin, e->key,
                 want[e->type], e->min, e->max);
    } else {
        snprintf(errstr, errstr_size, "%s: %s: want %s", origin, e->key, want[e->type]);
    }
    return NA_ERR_CONFIG;
}

na_err_t na_conf_defaults(const struct na_conf_entry *table, void *obj, char *errstr,
                          size_t errstr_size) {
    for (const struct na_conf_entry *e = table; e->key; e++) {
        if (e->def) {
            na_err_t err = na_conf_set(e, obj, e->def, "default", errstr, errstr_size);
            if (err) {
                return err;
            }
        }
    }
    return NA_OK;
}

na_err_t na_conf_apply_json(const struct na_conf_entry *table, void *obj, json_t *root,
                            const char *name, const char *const *skip, char *errstr,
                            size_t errstr_size) {
    const char *key;
    json_t *v;
    char text[64];

    if (!json_is_object(root)) {
        snprintf(errstr, errstr_size, "%s: the config must be a JSON object", name);
        return NA_ERR_CONFIG;
    }
    json_object_foreach(root, key, v) {
        int skipped = 0;
        for (const char *const *s = skip; s && *s; s++) {
            skipped |= !strcmp(*s, key);
        }
        if (skipped) {
            continue;
        }
        const struct na_conf_entry *e = na_conf_find(table, key);
        if (!e) {
            snprintf(errstr, errstr_size, "%s: unknown key \"%s\"", name, key);
            return NA_ERR_CONFIG;
        }
        const char *value = NULL;
        if (json_is_string(v)) {
            value = json_string_value(v);
        } else if (json_is_integer(v)) {
            snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
            value = text;
        } else if (json_is_real(v)) {
            snprintf(text, sizeof(text), "%.17g", json_real_value(v));
            value = text;
        } else if (json_is_boolean(v)) {
            value = json_is_true(v) ? "true" : "false";
        } else if (json_is_null(v)) {
            continue;
        }
        if (!value) {
            snprintf(errstr, errstr_size, "%s: %s: not a scalar value", name, key);
            return NA_ERR_CONFIG;
        }
        na_err_t err = na_conf_set(e, obj, value, name, errstr, errstr_size);
        if (err) {
            return err;
        }
    }
    return NA_OK;
}

static void env_name(const char *key, char *buf, size_t size) {
    size_t o = (size_t)snprintf(buf, size, "NEWSALERT_");
    for (; *key && o + 1 < size; key++) {
        buf[o++] = *key == '-' || *key == '.' ? '_' : (char)toupper((unsigned char)*key);
    }
    buf[o] = '\0';
}

na_err_t na_conf_apply_env(const struct na_conf_entry *table, void *obj, char *errstr,
                           size_t errstr_size) {
    char name[128];
    char origin[160];
    for (const struct na_conf_entry *e = table; e->key; e++) {
        env_name(e->key, name, sizeof(name));
        const char *v = getenv(name);
        if (!v) {
            continue;
        }
        snprintf(origin, sizeof(origin), "env %s", name);
        na_err_t err = na_conf_set(e, obj, v, origin, errstr, errstr_size);
        if (err) {
            return err;
        }
    }
    return NA_OK;
}

json_t *na_conf_dump(const struct na_conf_entry *table, const void *obj) {
    json_t *root = json_object();
    for (const struct na_conf_entry *e = table; root && e->key; e++) {
        json_t *v = NULL;
        switch (e->type) {
        case NA_CONF_STRING: {
            const char *s = *FIELD(obj, e, char *const);
            v = !s                            ? json_null()
                : (e->flags & NA_CONF_SECRET) ? json_string("***")
                                              : json_string(s);
            break;
        }
        case NA_CONF_INT:
        case NA_CONF_DURATION:
            v = json_integer(*FIELD(obj, e, const long long));
            break;
        case NA_CONF_BOOL:
            v = json_boolean(*FIELD(obj, e, const int));
            break;
        case NA_CONF_DOUBLE:
            v = json_real(*FIELD(obj, e, const double));
            break;
        }
        if (e->type == NA_CONF_DURATION) {
            char buf[48];
            snprintf(buf, sizeof(buf), "%lldms", *FIELD(obj, e, const long long));
            json_decref(v);
            v = json_string(buf);
        }
        json_object_set_new(root, e->key, v);
    }
    return root;
}

void na_conf_help(const struct na_conf_entry *table, FILE *fp) {
    char env[128];
    char flag[128];
    for (const struct na_conf_entry *e = table; e->key; e++) {
        size_t o = (size_t)snprintf(flag, sizeof(flag), "--");
        for (const char *k = e->key; *k && o + 1 < sizeof(flag); k++) {
            flag[o++] = *k == '_' ? '-' : *k;
        }
        flag[o] = '\0';
        env_name(e->key, env, sizeof(env));
        fprintf(fp, "  %-26s %s\n  %-26s env %s, key \"%s\"%s%s\n", flag, e->desc, "",
                env, e->key, e->def ? ", default " : "", e->def ? e->def : "");
    }
}

void na_conf_cleanup(const struct na_conf_entry *table, void *obj) {
    for (const struct na_conf_entry *e = table; e->key; e++) {
        if (e->type == NA_CONF_STRING) {
            free(*FIELD(obj, e, char *));
            *FIELD(obj, e, char *) = NULL;
        }
    }
}

na_err_t na_conf_load_file(const char *path, json_t **root, char *errstr,
                           size_t errstr_size) {
    char *buf = NULL;
    size_t len = 0;
    json_error_t jerr;
    na_err_t err =
        na_read_file(path, NA_MAX_CONFIG_BYTES, &buf, &len, errstr, errstr_size);
    if (err) {
        return err;
    }
    *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!*root) {
        char why[JSON_ERROR_TEXT_LENGTH];
        snprintf(errstr, errstr_size, "%s:%d:%d: %s", path, jerr.line, jerr.column,
                 na_json_error_shown(&jerr, why, sizeof(why)));
        return NA_ERR_PARSE;
    }
    return NA_OK;
}

const char *na_json_error_shown(const json_error_t *jerr, char *buf, size_t size) {
    /* "MESSAGE near 'TEXT'" or "MESSAGE near end of file" */
    const char *near = strstr(jerr->text, " near '");
    size_t n = near ? (size_t)(near - jerr->text) : strlen(jerr->text);
    snprintf(buf, size, "%.*s", (int)n, jerr->text);
    return buf;
}

/* scheme://host[:port] of @p url, user info dropped; then, with @p keep_path,
 * the path and "?" (or "#" for a fragment alone) and three asterisks for
 * what follows, else "/" and three asterisks for anything after the host. */
static char *redact(const char *url, bool keep_path) {
    struct na_buf buf;
    const char *p;
    na_buf_init(&buf);
    if (!url) {
        return na_strdup("");
    }
    p = strstr(url, "://");
    if (!p) {
        na_buf_puts(&buf, "***");
        return na_buf_steal(&buf);
    }
    p += 3;
    const char *host = p;
    const char *at = NULL;
    while (*p && *p != '/' && *p != '?' && *p != '#') {
        if (*p == '@') {
            at = p;
        }
        p++;
    }
    if (at) {
        host = at + 1;
    }
    na_buf_append(&buf, url, (size_t)(strstr(url, "://") + 3 - url));
    na_buf_append(&buf, host, (size_t)(p - host));
    if (keep_path) {
        size_t path = strcspn(p, "?#");
        na_buf_append(&buf, p, path);
        if (p[path]) {
            na_buf_puts(&buf, p[path] == '?' ? "?***" : "#***");
        }
    } else if (*p) {
        na_buf_puts(&buf, "/***");
    }
    return na_buf_steal(&buf);
}

char *na_conf_redact_url(const char *url) {
    return redact(url, false);
}

char *na_conf_redact_url_query(const char *url) {
    return redact(url, true);
}

char *na_conf_shown_id(const char *id) {
    char hash[NA_SHA256_HEX_LEN + 1];
    char *r;
    struct na_buf buf;
    if (!strstr(id, "://")) {
        return na_strdup(id);
    }
    if (!(r = na_conf_redact_url_query(id)) || !strcmp(r, id)) {
        return r;
    }
    if (na_sha256_hex(id, strlen(id), hash)) {
        free(r);
        return NULL; /* no memory */
    }
    na_buf_init(&buf);
    na_buf_printf(&buf, "%s~%.8s", r, hash);
    free(r);
    return na_buf_steal(&buf);
}

const char *na_conf_shown_id_buf(const char *id, char *buf, size_t size) {
    char *l = na_conf_shown_id(id);
    snprintf(buf, size, "%s", l ? l : "?");
    free(l);
    return buf;
}

na_err_t na_conf_read_secret(const char *path, char **out, char *errstr,
                             size_t errstr_size) {
    char full[4096];
    char *buf = NULL;
    size_t len = 0;
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    na_err_t err;

    *out = NULL;
    if (!path || !*path || !strcmp(path, "-")) {
        snprintf(errstr, errstr_size, "want a secret file name, not \"%s\"",
                 path ? path : "");
        return NA_ERR_CONFIG;
    }
    if (path[0] != '/' && dir && *dir) {
        if ((size_t)snprintf(full, sizeof(full), "%s/%s", dir, path) >= sizeof(full)) {
            snprintf(errstr, errstr_size, "secret file %s: name too long", path);
            return NA_ERR_CONFIG;
        }
        path = full;
    }
    err = na_read_file(path, NA_MAX_SECRET_BYTES, &buf, &len, errstr, errstr_size);
    if (err) {
        return err;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
                       buf[len - 1] == ' ' || buf[len - 1] == '\t')) {
        len--;
    }
    buf[len] = '\0';
    if (!len || memchr(buf, '\n', len) || strlen(buf) != len) {
        snprintf(errstr, errstr_size, "secret file %s: want one non-empty line", path);
        free(buf);
        return NA_ERR_CONFIG;
    }
    *out = buf;
    return NA_OK;
}
