/*
 * Topic rules: loading a rules file (JSON) and compiling its topics
 * (rules_query.c) into a rules object. See docs/rules.md.
 */
#include "rules.h"

#include <hs/hs.h>
#include <jansson.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/util.h"
#include "rules_match.h"
#include "rules_scan.h"
#include "rules_watch.h"

/* ================================================================ */
/* Loading                                                          */
/* ================================================================ */

/* --- finding a line and column in the (valid) JSON text --- */

struct jloc {
    const char *s;
    size_t len;
    size_t i;
    int line;
    int col;
};

static void jl_adv(struct jloc *j) {
    if (j->i >= j->len) {
        return;
    }
    unsigned char c = (unsigned char)j->s[j->i++];
    if (c == '\n') {
        j->line++;
        j->col = 1;
    } else if ((c & 0xc0) != 0x80) {
        j->col++;
    }
}

static char jl_peek(const struct jloc *j) {
    return j->i < j->len ? j->s[j->i] : '\0';
}

static void jl_ws(struct jloc *j) {
    while (j->i < j->len && (jl_peek(j) == ' ' || jl_peek(j) == '\t' ||
                             jl_peek(j) == '\n' || jl_peek(j) == '\r')) {
        jl_adv(j);
    }
}

static void jl_string(struct jloc *j) {
    jl_adv(j); /* opening quote */
    while (j->i < j->len) {
        char c = jl_peek(j);
        jl_adv(j);
        if (c == '\\') {
            jl_adv(j);
        } else if (c == '"') {
            return;
        }
    }
}

static void jl_value(struct jloc *j) {
    char c = jl_peek(j);
    if (c == '"') {
        jl_string(j);
        return;
    }
    if (c == '{' || c == '[') {
        size_t depth = 0;
        while (j->i < j->len) {
            c = jl_peek(j);
            if (c == '"') {
                jl_string(j);
                continue;
            }
            if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                depth--;
            }
            jl_adv(j);
            if (!depth) {
                return;
            }
        }
        return;
    }
    while (j->i < j->len && !strchr(",}] \t\r\n", jl_peek(j))) {
        jl_adv(j);
    }
}

/* At '{': move to the value of member key; kl, kc get the key's place. */
static bool jl_member(struct jloc *j, const char *key, int *kl, int *kc) {
    size_t klen = strlen(key);
    jl_ws(j);
    if (jl_peek(j) != '{') {
        return false;
    }
    jl_adv(j);
    for (;;) {
        jl_ws(j);
        if (jl_peek(j) != '"') {
            return false;
        }
        int line = j->line;
        int col = j->col;
        size_t start = j->i + 1;
        jl_string(j);
        bool match = j->i - start - 1 == klen && !memcmp(j->s + start, key, klen);
        jl_ws(j);
        if (jl_peek(j) != ':') {
            return false;
        }
        jl_adv(j);
        jl_ws(j);
        if (match) {
            *kl = line;
            *kc = col;
            return true;
        }
        jl_value(j);
        jl_ws(j);
        if (jl_peek(j) != ',') {
            return false;
        }
        jl_adv(j);
    }
}

/* At '[': move to element idx. */
static bool jl_elem(struct jloc *j, size_t idx) {
    jl_ws(j);
    if (jl_peek(j) != '[') {
        return false;
    }
    jl_adv(j);
    for (size_t k = 0;; k++) {
        jl_ws(j);
        if (jl_peek(j) == ']' || j->i >= j->len) {
            return false;
        }
        if (k == idx) {
            return true;
        }
        jl_value(j);
        jl_ws(j);
        if (jl_peek(j) != ',') {
            return false;
        }
        jl_adv(j);
    }
}

/*
 * Line and column of a place in the rules text: the top-level member key1
 * (its key when want_key), inside it element idx1 (if >= 0), inside that
 * member key2 (its key when want_key, else its value), inside that element
 * idx2 (if >= 0). Stops at the deepest place it finds.
 */
static void locate(const char *buf, size_t len, const char *key1, long idx1,
                   const char *key2, long idx2, bool want_key, int *line, int *col) {
    struct jloc j = {buf, len, 0, 1, 1};
    int kl;
    int kc;
    jl_ws(&j);
    *line = j.line;
    *col = j.col;
    if (!key1) {
        return;
    }
    if (!jl_member(&j, key1, &kl, &kc)) {
        return;
    }
    *line = want_key && idx1 < 0 ? kl : j.line;
    *col = want_key && idx1 < 0 ? kc : j.col;
    if (idx1 < 0 || !jl_elem(&j, (size_t)idx1)) {
        return;
    }
    *line = j.line;
    *col = j.col;
    if (!key2 || !jl_member(&j, key2, &kl, &kc)) {
        return;
    }
    *line = want_key ? kl : j.line;
    *col = want_key ? kc : j.col;
    if (idx2 < 0 || !jl_elem(&j, (size_t)idx2)) {
        return;
    }
    *line = j.line;
    *col = j.col;
}

/* --- the loader --- */

struct load {
    const char *buf;
    size_t len;
    const char *name;
    char *errstr;
    size_t errstr_size;
    na_rules_t *rules;
    double def_threshold;
    double def_fw[NA_RULES_FIELDS];
    /* (key, topic) pairs for the postings */
    uint64_t *pairs;
    size_t pairs_cnt;
    size_t pairs_cap;
};

/* One error line: "FILE:LINE:COL: topic "NAME": MESSAGE". */
static void load_error(struct load *ld, long topic, const char *key2, long idx2,
                       bool want_key, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void load_error(struct load *ld, long topic, const char *key2, long idx2,
                       bool want_key, const char *fmt, ...) {
    char msg[512];
    char who[128] = "";
    int line;
    int col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (topic >= 0) {
        const char *tname = NULL;
        if ((size_t)topic < ld->rules->topics_cnt) {
            tname = ld->rules->topics[topic].name;
        }
        if (tname) {
            snprintf(who, sizeof(who), "topic \"%.64s\": ", tname);
        } else {
            snprintf(who, sizeof(who), "topic #%ld: ", topic + 1);
        }
        locate(ld->buf, ld->len, "topics", topic, key2, idx2, want_key, &line, &col);
    } else {
        locate(ld->buf, ld->len, key2, -1, NULL, -1, want_key, &line, &col);
    }
    snprintf(ld->errstr, ld->errstr_size, "%s:%d:%d: %s%s", ld->name, line, col, who,
             msg);
}

static bool valid_name(const char *s, size_t len) {
    if (!len || len > 64) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) {
            return false;
        }
    }
    return true;
}

/* Parse a "weights" object into fw (which holds the defaults). */
static na_err_t load_weights(struct load *ld, long topic, json_t *obj, double *fw) {
    const char *key;
    json_t *v;
    const char *where = topic >= 0 ? "weights" : "defaults";
    if (!json_is_object(obj)) {
        load_error(ld, topic, where, -1, false, "\"weights\" must be an object");
        return NA_ERR_CONFIG;
    }
    json_object_foreach(obj, key, v) {
        double w = json_number_value(v);
        if (!json_is_number(v) || !isfinite(w) || w < 0 || w > NA_RULES_MAX_WEIGHT) {
            load_error(ld, topic, where, -1, false,
                       "weight \"%.32s\" must be a number from 0 to %g", key,
                       NA_RULES_MAX_WEIGHT);
            return NA_ERR_CONFIG;
        }
        if (!strcmp(key, "title")) {
            fw[NA_RULES_TITLE] = w;
        } else if (!strcmp(key, "summary")) {
            fw[NA_RULES_SUMMARY] = w;
        } else if (!strcmp(key, "content")) {
            fw[NA_RULES_CONTENT] = w;
        } else if (!strcmp(key, "body")) {
            fw[NA_RULES_SUMMARY] = w;
            fw[NA_RULES_CONTENT] = w;
        } else {
            load_error(ld, topic, where, -1, false,
                       "unknown field \"%.32s\" in \"weights\" (title, summary, content, "
                       "body)",
                       key);
            return NA_ERR_CONFIG;
        }
    }
    return NA_OK;
}

static na_err_t load_threshold(struct load *ld, long topic, json_t *v, double *out) {
    double t = json_number_value(v);
    if (!json_is_number(v) || !isfinite(t) || t < 0 || t > 1e6) {
        load_error(ld, topic, topic >= 0 ? "threshold" : "defaults", -1, false,
                   "\"threshold\" must be a number >= 0");
        return NA_ERR_CONFIG;
    }
    *out = t;
    return NA_OK;
}

/* Compile a "query" or "exclude" value (a string, or an array of strings
 * that are ORed) of topic t into *root. */
static na_err_t load_query(struct load *ld, size_t t, const char *key, json_t *v,
                           bool positive, uint32_t *root) {
    const char *clauses_one[1];
    const char **clauses = clauses_one;
    size_t cnt = 0;
    size_t err_clause = 0;
    size_t err_col = 1;
    char msg[256];
    na_err_t err = NA_OK;

    if (json_is_string(v)) {
        clauses_one[0] = json_string_value(v);
        cnt = 1;
        if (strlen(clauses_one[0]) != json_string_length(v)) {
            load_error(ld, (long)t, key, -1, false, "\"%s\" contains a NUL byte", key);
            return NA_ERR_CONFIG;
        }
    } else if (json_is_array(v) && json_array_size(v) > 0 &&
               json_array_size(v) <= NA_RULES_MAX_NODES) {
        cnt = json_array_size(v);
        clauses = calloc(cnt, sizeof(*clauses));
        if (!clauses) {
            return NA_ERR_NOMEM;
        }
        for (size_t i = 0; i < cnt; i++) {
            json_t *c = json_array_get(v, i);
            if (!json_is_string(c) ||
                strlen(json_string_value(c)) != json_string_length(c)) {
                load_error(ld, (long)t, key, (long)i, false,
                           "\"%s\"[%zu] must be a string without NUL bytes", key, i);
                err = NA_ERR_CONFIG;
                goto out;
            }
            clauses[i] = json_string_value(c);
        }
    } else {
        load_error(ld, (long)t, key, -1, false,
                   "\"%s\" must be a query string or a non-empty array of them", key);
        return NA_ERR_CONFIG;
    }
    err = na_rules_query_compile(&ld->rules->b, clauses, cnt, positive, root, &err_clause,
                                 &err_col, msg, sizeof(msg));
    if (err == NA_ERR_CONFIG) {
        if (json_is_array(v)) {
            load_error(ld, (long)t, key, (long)err_clause, false,
                       "%s[%zu] column %zu: %s", key, err_clause, err_col, msg);
        } else {
            load_error(ld, (long)t, key, -1, false, "%s column %zu: %s", key, err_col,
                       msg);
        }
    } else if (err) {
        snprintf(ld->errstr, ld->errstr_size, "%s: %s", ld->name, msg);
    }
out:
    if (clauses != clauses_one) {
        free(clauses);
    }
    return err;
}

static int pair_push(struct load *ld, uint32_t key, uint32_t topic) {
    if (ld->pairs_cnt == ld->pairs_cap) {
        size_t cap = ld->pairs_cap ? ld->pairs_cap * 2 : 256;
        uint64_t *p = realloc(ld->pairs, cap * sizeof(*p));
        if (!p) {
            return -1;
        }
        ld->pairs = p;
        ld->pairs_cap = cap;
    }
    ld->pairs[ld->pairs_cnt++] = ((uint64_t)key << 32) | topic;
    return 0;
}

/*
 * Candidate selection. A topic is evaluated only for articles that hit one
 * of its posted keys, so the posted keys must cover every way the query can
 * be true, and should be as rare as possible. For each node we pick a
 * "necessary" set of atoms, one of which occurs whenever the node is true:
 * an atom itself; all branches of an OR; the cheapest child of an AND; the
 * cheaper side of a NEAR. NOT has none (the compiler made sure that every
 * query needs a term outside NOT). Each form of a chosen atom is posted
 * under its longest key. Cost is a guess at how often the keys occur:
 * short words and prefixes are common.
 */
#define COST_NONE 1e300

static double key_cost(const struct na_rbuild *b, uint32_t k) {
    return (b->keys[k].prefix ? 3.0 : 1.0) / (1.0 + b->keys[k].len);
}

static uint32_t form_proxy(const struct na_rbuild *b, const struct na_rform *form) {
    uint32_t best = b->elems[form->elem_first];
    for (uint32_t e = 1; e < form->elem_cnt; e++) {
        uint32_t k = b->elems[form->elem_first + e];
        if (b->keys[k].len > b->keys[best].len) {
            best = k;
        }
    }
    return best;
}

static double atom_cost(const struct na_rbuild *b, uint32_t a) {
    const struct na_ratom *atom = &b->atoms[a];
    double cost = 0;
    for (uint32_t f = 0; f < atom->form_cnt; f++) {
        cost += key_cost(b, form_proxy(b, &b->forms[atom->form_first + f]));
    }
    return cost;
}

static double node_cost(const struct na_rbuild *b, uint32_t n) {
    const struct na_rnode *node = &b->nodes[n];
    double cost = 0;
    switch (node->kind) {
    case NA_RNODE_ATOM:
        return atom_cost(b, node->a);
    case NA_RNODE_OR:
        for (uint32_t i = 0; i < node->b; i++) {
            cost += node_cost(b, b->kids[node->a + i]);
        }
        return cost > COST_NONE ? COST_NONE : cost;
    case NA_RNODE_AND:
        cost = COST_NONE;
        for (uint32_t i = 0; i < node->b; i++) {
            double c = node_cost(b, b->kids[node->a + i]);
            cost = c < cost ? c : cost;
        }
        return cost;
    case NA_RNODE_NEAR: {
        double left = 0;
        double right = 0;
        for (uint32_t i = 0; i < node->b; i++) {
            left += atom_cost(b, b->kids[node->a + i]);
        }
        for (uint32_t i = 0; i < node->c; i++) {
            right += atom_cost(b, b->kids[node->a + node->b + i]);
        }
        return left < right ? left : right;
    }
    default:
        return COST_NONE;
    }
}

static na_err_t post_atom(struct load *ld, uint32_t a, uint32_t t) {
    const struct na_rbuild *b = &ld->rules->b;
    const struct na_ratom *atom = &b->atoms[a];
    for (uint32_t f = 0; f < atom->form_cnt; f++) {
        if (pair_push(ld, form_proxy(b, &b->forms[atom->form_first + f]), t)) {
            return NA_ERR_NOMEM;
        }
    }
    return NA_OK;
}

static na_err_t post_node(struct load *ld, uint32_t n, uint32_t t) {
    const struct na_rbuild *b = &ld->rules->b;
    const struct na_rnode *node = &b->nodes[n];
    na_err_t err = NA_OK;
    switch (node->kind) {
    case NA_RNODE_ATOM:
        return post_atom(ld, node->a, t);
    case NA_RNODE_OR:
        for (uint32_t i = 0; i < node->b && !err; i++) {
            err = post_node(ld, b->kids[node->a + i], t);
        }
        return err;
    case NA_RNODE_AND: {
        uint32_t best = b->kids[node->a];
        double best_cost = node_cost(b, best);
        for (uint32_t i = 1; i < node->b; i++) {
            double c = node_cost(b, b->kids[node->a + i]);
            if (c < best_cost) {
                best = b->kids[node->a + i];
                best_cost = c;
            }
        }
        return post_node(ld, best, t);
    }
    case NA_RNODE_NEAR: {
        double left = 0;
        double right = 0;
        for (uint32_t i = 0; i < node->b; i++) {
            left += atom_cost(b, b->kids[node->a + i]);
        }
        for (uint32_t i = 0; i < node->c; i++) {
            right += atom_cost(b, b->kids[node->a + node->b + i]);
        }
        uint32_t first = left <= right ? 0 : node->b;
        uint32_t cnt = left <= right ? node->b : node->c;
        for (uint32_t i = 0; i < cnt && !err; i++) {
            err = post_atom(ld, b->kids[node->a + first + i], t);
        }
        return err;
    }
    default:
        return NA_OK; /* unreachable for a compiled query: needs_hit() holds */
    }
}

/*
 * Post the requirements of topic t: every child of a top-level AND that
 * needs a hit (and both sides of a NEAR) is a group of its own, posted
 * with its group number, so a topic becomes a candidate only when every
 * group had a hit; at most NA_RULES_MAX_GROUPS groups (fewer groups only
 * make more candidates, never fewer).
 */
static na_err_t post_groups(struct load *ld, uint32_t n, uint32_t t, uint32_t *g) {
    const struct na_rbuild *b = &ld->rules->b;
    const struct na_rnode *node = &b->nodes[n];
    na_err_t err = NA_OK;
    if (*g >= NA_RULES_MAX_GROUPS) {
        return NA_OK;
    }
    if (node->kind == NA_RNODE_AND) {
        for (uint32_t i = 0; i < node->b && !err; i++) {
            uint32_t kid = b->kids[node->a + i];
            if (node_cost(b, kid) < COST_NONE) {
                err = post_groups(ld, kid, t, g);
            }
        }
        return err;
    }
    if (node->kind == NA_RNODE_NEAR && *g + 1 < NA_RULES_MAX_GROUPS) {
        for (uint32_t i = 0; i < node->b && !err; i++) {
            err = post_atom(ld, b->kids[node->a + i], t | *g << 24);
        }
        (*g)++;
        for (uint32_t i = 0; i < node->c && !err; i++) {
            err = post_atom(ld, b->kids[node->a + node->b + i], t | *g << 24);
        }
        (*g)++;
        return err;
    }
    err = post_node(ld, n, t | *g << 24);
    (*g)++;
    return err;
}

/* The file of a watchlist: relative to the rules file's folder. */
static char *watch_path(const struct load *ld, const char *file) {
    const char *slash = strrchr(ld->name, '/');
    struct na_buf b;
    if (file[0] == '/' || !slash) {
        return na_strdup(file);
    }
    na_buf_init(&b);
    na_buf_append(&b, ld->name, (size_t)(slash - ld->name) + 1);
    na_buf_puts(&b, file);
    if (b.oom) {
        na_buf_cleanup(&b);
        return NULL;
    }
    return na_buf_steal(&b);
}

/* A watchlist topic: {"name", "watchlist": FILE, "format", "exact_case_below",
 * "threshold", "weights", "description"}; topic->name is set. */
static na_err_t load_watch_topic(struct load *ld, size_t t, json_t *obj) {
    struct na_rtopic *topic = &ld->rules->topics[t];
    enum na_watch_format format = NA_WATCH_CSL_CSV;
    unsigned exact_below = NA_WATCH_EXACT_CASE_BELOW;
    const char *file = NULL;
    const char *key;
    json_t *v;
    char *path = NULL;
    char msg[512];
    na_err_t err = NA_OK;

    json_object_foreach(obj, key, v) {
        if (!strcmp(key, "name")) {
            continue;
        } else if (!strcmp(key, "watchlist")) {
            if (!json_is_string(v) || !json_string_length(v) ||
                strlen(json_string_value(v)) != json_string_length(v)) {
                load_error(ld, (long)t, key, -1, false,
                           "\"watchlist\" must be the path of a list file");
                return NA_ERR_CONFIG;
            }
            file = json_string_value(v);
        } else if (!strcmp(key, "format")) {
            if (!json_is_string(v) ||
                na_watch_format_parse(json_string_value(v), &format)) {
                load_error(ld, (long)t, key, -1, false,
                           "\"format\" must be \"csl-csv\", \"csl-json\" or \"names\"");
                return NA_ERR_CONFIG;
            }
        } else if (!strcmp(key, "exact_case_below")) {
            json_int_t n = json_integer_value(v);
            if (!json_is_integer(v) || n < 0 || n > NA_RULES_MAX_TERM_BYTES) {
                load_error(
                    ld, (long)t, key, -1, false,
                    "\"exact_case_below\" must be a whole number of letters from 0 "
                    "to %u",
                    NA_RULES_MAX_TERM_BYTES);
                return NA_ERR_CONFIG;
            }
            exact_below = (unsigned)n;
        } else if (!strcmp(key, "threshold")) {
            if ((err = load_threshold(ld, (long)t, v, &topic->threshold))) {
                return err;
            }
        } else if (!strcmp(key, "weights")) {
            if ((err = load_weights(ld, (long)t, v, topic->fw))) {
                return err;
            }
        } else if (!strcmp(key, "description")) {
            if (!json_is_string(v)) {
                load_error(ld, (long)t, key, -1, false,
                           "\"description\" must be a string");
                return NA_ERR_CONFIG;
            }
            topic->description = na_strdup(json_string_value(v));
            if (!topic->description) {
                return NA_ERR_NOMEM;
            }
        } else {
            load_error(ld, (long)t, key, -1, true,
                       "unknown key \"%.40s\" in a watchlist topic (name, description, "
                       "watchlist, format, exact_case_below, threshold, weights)",
                       key);
            return NA_ERR_CONFIG;
        }
    }
    path = watch_path(ld, file);
    if (!path) {
        return NA_ERR_NOMEM;
    }
    err = na_watch_load(path, format, exact_below, topic->name, &topic->watch, msg,
                        sizeof(msg));
    if (err && err != NA_ERR_NOMEM) {
        load_error(ld, (long)t, "watchlist", -1, false, "%s", msg);
        err = err == NA_ERR_TOO_LARGE ? NA_ERR_TOO_LARGE : NA_ERR_CONFIG;
    }
    free(path);
    if (err) {
        return err;
    }
    uint32_t *wt =
        realloc(ld->rules->watch_topics, (ld->rules->watch_cnt + 1) * sizeof(*wt));
    if (!wt) {
        return NA_ERR_NOMEM;
    }
    ld->rules->watch_topics = wt;
    wt[ld->rules->watch_cnt++] = (uint32_t)t;
    return NA_OK;
}

static na_err_t load_topic(struct load *ld, size_t t, json_t *obj) {
    struct na_rtopic *topic = &ld->rules->topics[t];
    const char *key;
    json_t *v;
    json_t *query = NULL;
    json_t *exclude = NULL;
    na_err_t err;

    topic->threshold = ld->def_threshold;
    memcpy(topic->fw, ld->def_fw, sizeof(topic->fw));
    topic->query = NA_RNONE;
    topic->exclude = NA_RNONE;
    if (!json_is_object(obj)) {
        load_error(ld, (long)t, NULL, -1, false, "a topic must be an object");
        return NA_ERR_CONFIG;
    }
    v = json_object_get(obj, "name");
    if (!v) {
        load_error(ld, (long)t, NULL, -1, false, "missing \"name\"");
        return NA_ERR_CONFIG;
    }
    if (!json_is_string(v) || !valid_name(json_string_value(v), json_string_length(v))) {
        load_error(ld, (long)t, "name", -1, false,
                   "\"name\" must be 1 to 64 letters, digits, '_', '-' or '.'");
        return NA_ERR_CONFIG;
    }
    topic->name = na_strdup(json_string_value(v));
    if (!topic->name) {
        return NA_ERR_NOMEM;
    }
    if (json_object_get(obj, "watchlist")) {
        return load_watch_topic(ld, t, obj);
    }
    json_object_foreach(obj, key, v) {
        if (!strcmp(key, "name")) {
            continue;
        } else if (!strcmp(key, "query")) {
            query = v;
        } else if (!strcmp(key, "exclude")) {
            exclude = v;
        } else if (!strcmp(key, "threshold")) {
            if ((err = load_threshold(ld, (long)t, v, &topic->threshold))) {
                return err;
            }
        } else if (!strcmp(key, "weights")) {
            if ((err = load_weights(ld, (long)t, v, topic->fw))) {
                return err;
            }
        } else if (!strcmp(key, "description")) {
            if (!json_is_string(v)) {
                load_error(ld, (long)t, key, -1, false,
                           "\"description\" must be a string");
                return NA_ERR_CONFIG;
            }
            topic->description = na_strdup(json_string_value(v));
            if (!topic->description) {
                return NA_ERR_NOMEM;
            }
        } else {
            load_error(ld, (long)t, key, -1, true,
                       "unknown key \"%.40s\" (name, description, query, exclude, "
                       "threshold, weights; or watchlist, format, exact_case_below)",
                       key);
            return NA_ERR_CONFIG;
        }
    }
    if (!query) {
        load_error(ld, (long)t, NULL, -1, false, "missing \"query\"");
        return NA_ERR_CONFIG;
    }
    if ((err = load_query(ld, t, "query", query, true, &topic->query))) {
        return err;
    }
    uint32_t groups = 0;
    if ((err = post_groups(ld, topic->query, (uint32_t)t, &groups))) {
        return err;
    }
    if (!groups) { /* cannot happen: every query needs a hit */
        if ((err = post_node(ld, topic->query, (uint32_t)t))) {
            return err;
        }
        groups = 1;
    }
    topic->req = (uint8_t)((1u << groups) - 1);
    if (exclude &&
        (err = load_query(ld, t, "exclude", exclude, false, &topic->exclude))) {
        return err;
    }
    return NA_OK;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static na_err_t build_postings(struct load *ld) {
    na_rules_t *r = ld->rules;
    size_t n = 0;
    if (!ld->pairs_cnt) {
        return NA_OK;
    }
    qsort(ld->pairs, ld->pairs_cnt, sizeof(*ld->pairs), cmp_u64);
    r->posts = malloc(ld->pairs_cnt * sizeof(*r->posts));
    if (!r->posts) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < ld->pairs_cnt; i++) {
        if (i && ld->pairs[i] == ld->pairs[i - 1]) {
            continue;
        }
        uint32_t key = (uint32_t)(ld->pairs[i] >> 32);
        struct na_rkey *k = &r->b.keys[key];
        if (!k->post_cnt) {
            k->post_first = (uint32_t)n;
        }
        k->post_cnt++;
        r->posts[n++] = (uint32_t)ld->pairs[i];
    }
    r->posts_cnt = n;
    return NA_OK;
}

/* The key filter: 16 bits or more per key, so few words pass by chance. */
static na_err_t build_bloom(na_rules_t *r) {
    size_t bits = 4096;
    while (bits < r->b.keys_cnt * 16) {
        bits *= 2;
    }
    r->bloom = calloc(bits / 64, sizeof(*r->bloom));
    if (!r->bloom) {
        return NA_ERR_NOMEM;
    }
    r->bloom_mask = bits - 1;
    r->req = malloc(r->topics_cnt + 1);
    if (!r->req) {
        return NA_ERR_NOMEM;
    }
    for (size_t t = 0; t < r->topics_cnt; t++) {
        r->req[t] = r->topics[t].req;
    }
    size_t slots = 16;
    while (slots < r->b.keys_cnt * 2) {
        slots *= 2;
    }
    r->ktab = calloc(slots, sizeof(*r->ktab));
    if (!r->ktab) {
        return NA_ERR_NOMEM;
    }
    r->ktab_mask = slots - 1;
    for (size_t i = 0; i < r->b.keys_cnt; i++) {
        const struct na_rkey *k = &r->b.keys[i];
        char w[NA_RULES_QUICK_PAD] = {0};
        memcpy(w, r->b.strs + k->str_off,
               k->len < sizeof(w) - 8 ? k->len : sizeof(w) - 8);
        uint64_t h = na_rules_quick_hash(w, k->len, k->prefix);
        uint64_t q = h & r->bloom_mask;
        r->bloom[q >> 6] |= (uint64_t)1 << (q & 63);
        if (k->len > NA_RULES_MAX_TERM_BYTES) {
            continue; /* no word is looked up at that length */
        }
        size_t j = (uint32_t)(h >> 32) & r->ktab_mask;
        while (r->ktab[j].len) {
            j = (j + 1) & r->ktab_mask;
        }
        struct na_rslot *sl = &r->ktab[j];
        memcpy(sl->w, w, 16);
        if (k->len < 16) {
            memset((char *)sl->w + k->len, 0, 16 - k->len);
        }
        sl->hash = (uint32_t)(h >> 32);
        sl->key = (uint32_t)i;
        sl->len = (uint8_t)k->len;
        sl->prefix = k->prefix;
    }
    return NA_OK;
}

struct name_ref {
    const char *name;
    size_t idx;
};

static int cmp_name_ref(const void *a, const void *b) {
    const struct name_ref *x = a;
    const struct name_ref *y = b;
    int c = strcmp(x->name, y->name);
    if (c) {
        return c;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static na_err_t check_names(struct load *ld) {
    na_rules_t *r = ld->rules;
    struct name_ref *refs;
    long dup = -1;
    if (r->topics_cnt < 2) {
        return NA_OK;
    }
    refs = malloc(r->topics_cnt * sizeof(*refs));
    if (!refs) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < r->topics_cnt; i++) {
        refs[i].name = r->topics[i].name;
        refs[i].idx = i;
    }
    qsort(refs, r->topics_cnt, sizeof(*refs), cmp_name_ref);
    for (size_t i = 1; i < r->topics_cnt; i++) {
        if (!strcmp(refs[i].name, refs[i - 1].name) &&
            (dup < 0 || refs[i].idx < (size_t)dup)) {
            dup = (long)refs[i].idx;
        }
    }
    free(refs);
    if (dup >= 0) {
        load_error(ld, dup, "name", -1, false, "a topic of this name comes earlier");
        return NA_ERR_CONFIG;
    }
    return NA_OK;
}

na_err_t na_rules_load_buf(const char *buf, size_t len, const char *name,
                           na_rules_t **rulesp, char *errstr, size_t errstr_size) {
    struct load ld;
    json_error_t jerr;
    json_t *root = NULL;
    json_t *topics = NULL;
    json_t *v;
    const char *key;
    char hex[NA_SHA256_HEX_LEN + 1];
    na_err_t err = NA_OK;

    memset(&ld, 0, sizeof(ld));
    ld.buf = buf;
    ld.len = len;
    ld.name = name ? name : "rules";
    ld.errstr = errstr;
    ld.errstr_size = errstr_size;
    ld.def_threshold = 1.0;
    ld.def_fw[NA_RULES_TITLE] = 3.0;
    ld.def_fw[NA_RULES_SUMMARY] = 1.5;
    ld.def_fw[NA_RULES_CONTENT] = 1.0;
    *rulesp = NULL;

    if (len > NA_MAX_CONFIG_BYTES) {
        snprintf(errstr, errstr_size, "%s: larger than %u bytes", ld.name,
                 NA_MAX_CONFIG_BYTES);
        return NA_ERR_TOO_LARGE;
    }
    ld.rules = calloc(1, sizeof(*ld.rules));
    if (!ld.rules) {
        return NA_ERR_NOMEM;
    }
    if ((err = na_sha256_hex(buf, len, hex))) {
        goto out;
    }
    memcpy(ld.rules->version, hex, 12);
    ld.rules->version[12] = '\0';

    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(errstr, errstr_size, "%s:%d:%d: JSON error: %s", ld.name, jerr.line,
                 jerr.column, jerr.text);
        err = NA_ERR_PARSE;
        goto out;
    }
    if (!json_is_object(root)) {
        load_error(&ld, -1, NULL, -1, false, "the rules must be a JSON object");
        err = NA_ERR_CONFIG;
        goto out;
    }
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "topics")) {
            topics = v;
        } else if (!strcmp(key, "description")) {
            if (!json_is_string(v)) {
                load_error(&ld, -1, key, -1, false, "\"description\" must be a string");
                err = NA_ERR_CONFIG;
                goto out;
            }
        } else if (!strcmp(key, "defaults")) {
            const char *dkey;
            json_t *dv;
            if (!json_is_object(v)) {
                load_error(&ld, -1, key, -1, false, "\"defaults\" must be an object");
                err = NA_ERR_CONFIG;
                goto out;
            }
            json_object_foreach(v, dkey, dv) {
                if (!strcmp(dkey, "threshold")) {
                    err = load_threshold(&ld, -1, dv, &ld.def_threshold);
                } else if (!strcmp(dkey, "weights")) {
                    err = load_weights(&ld, -1, dv, ld.def_fw);
                } else {
                    load_error(
                        &ld, -1, key, -1, false,
                        "unknown key \"%.40s\" in \"defaults\" (threshold, weights)",
                        dkey);
                    err = NA_ERR_CONFIG;
                }
                if (err) {
                    goto out;
                }
            }
        } else {
            load_error(&ld, -1, key, -1, true,
                       "unknown key \"%.40s\" (topics, defaults, description)", key);
            err = NA_ERR_CONFIG;
            goto out;
        }
    }
    if (!json_is_array(topics)) {
        load_error(&ld, -1, topics ? "topics" : NULL, -1, false,
                   "\"topics\" must be an array of topics");
        err = NA_ERR_CONFIG;
        goto out;
    }
    if (json_array_size(topics) > NA_RULES_MAX_TOPICS) {
        load_error(&ld, -1, "topics", -1, false, "more than %u topics",
                   NA_RULES_MAX_TOPICS);
        err = NA_ERR_TOO_LARGE;
        goto out;
    }
    if (json_array_size(topics)) {
        ld.rules->topics = calloc(json_array_size(topics), sizeof(*ld.rules->topics));
        if (!ld.rules->topics) {
            err = NA_ERR_NOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < json_array_size(topics); i++) {
        ld.rules->topics_cnt = i + 1;
        if ((err = load_topic(&ld, i, json_array_get(topics, i)))) {
            goto out;
        }
    }
    if ((err = check_names(&ld)) || (err = build_postings(&ld)) ||
        (err = build_bloom(ld.rules)) || (err = na_rules_db_build(ld.rules))) {
        goto out;
    }
    if (ld.rules->watch_cnt) {
        /* the version names the lists too: a changed list is other rules */
        const char **parts = calloc(ld.rules->watch_cnt + 2, sizeof(*parts));
        if (!parts) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        parts[0] = hex;
        for (size_t i = 0; i < ld.rules->watch_cnt; i++) {
            parts[i + 1] =
                na_watch_digest(ld.rules->topics[ld.rules->watch_topics[i]].watch);
        }
        char vhex[NA_SHA256_HEX_LEN + 1];
        err = na_sha256_hex_parts(parts, vhex);
        free(parts);
        if (err) {
            goto out;
        }
        memcpy(ld.rules->version, vhex, 12);
    }
out:
    if (err == NA_ERR_NOMEM) {
        snprintf(errstr, errstr_size, "%s: out of memory", ld.name);
    }
    json_decref(root);
    free(ld.pairs);
    if (err) {
        na_rules_destroy(ld.rules);
    } else {
        *rulesp = ld.rules;
    }
    return err;
}

na_err_t na_rules_load_file(const char *path, na_rules_t **rulesp, char *errstr,
                            size_t errstr_size) {
    char *buf = NULL;
    size_t len = 0;
    na_err_t err;
    *rulesp = NULL;
    err = na_read_file(path, NA_MAX_CONFIG_BYTES, &buf, &len, errstr, errstr_size);
    if (err) {
        return err == NA_ERR_TOO_LARGE || err == NA_ERR_NOMEM ? err : NA_ERR_IO;
    }
    err = na_rules_load_buf(buf, len, path, rulesp, errstr, errstr_size);
    free(buf);
    return err;
}

void na_rules_destroy(na_rules_t *rules) {
    if (!rules) {
        return;
    }
    for (size_t i = 0; i < rules->topics_cnt; i++) {
        free(rules->topics[i].name);
        free(rules->topics[i].description);
        na_watch_destroy(rules->topics[i].watch);
    }
    free(rules->watch_topics);
    free(rules->topics);
    free(rules->posts);
    free(rules->bloom);
    free(rules->ktab);
    free(rules->req);
    na_rules_db_free(rules);
    na_rbuild_cleanup(&rules->b);
    free(rules);
}

const char *na_rules_version(const na_rules_t *rules) {
    return rules->version;
}

size_t na_rules_topic_count(const na_rules_t *rules) {
    return rules->topics_cnt;
}

const char *na_rules_topic_name(const na_rules_t *rules, size_t i) {
    return i < rules->topics_cnt ? rules->topics[i].name : NULL;
}

const char *na_rules_watch_message(const na_rules_t *rules, size_t i) {
    for (size_t k = 0; k < rules->watch_cnt; k++) {
        const na_watch_t *w = rules->topics[rules->watch_topics[k]].watch;
        const char *m;
        size_t n = 0;
        while ((m = na_watch_message(w, n))) {
            if (n == i) {
                return m;
            }
            n++;
        }
        i -= n;
    }
    return NULL;
}

size_t na_rules_watch_rejected(const na_rules_t *rules, size_t *entries) {
    size_t rejected = 0;
    size_t total = 0;
    for (size_t k = 0; k < rules->watch_cnt; k++) {
        size_t r = 0;
        total += na_watch_entry_count(rules->topics[rules->watch_topics[k]].watch, &r);
        rejected += r;
    }
    if (entries) {
        *entries = total;
    }
    return rejected;
}

long na_rules_topic_index(const na_rules_t *rules, const char *name) {
    for (size_t i = 0; i < rules->topics_cnt; i++) {
        if (!strcmp(rules->topics[i].name, name)) {
            return (long)i;
        }
    }
    return -1;
}
