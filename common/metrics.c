#include "newsalert/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/util.h"

static const double bucket_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                       0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                       1,      2.5,     5,      10};
#define NBUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

struct na_metric_s {
    enum na_metric_type type;
    char *name;
    char *help;
    char *labels;
    double value;             /* counter / gauge; histogram sum */
    unsigned long long count; /* histogram */
    unsigned long long buckets[NBUCKETS];
    struct na_metric_s *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct na_metric_s *head;
static struct na_metric_s **tail = &head;

static int same(const char *a, const char *b) {
    return (!a && !b) || (a && b && !strcmp(a, b));
}

na_metric_t *na_metrics_get(enum na_metric_type type, const char *name, const char *help,
                            const char *labels) {
    struct na_metric_s *m;
    if (labels && !*labels) {
        labels = NULL;
    }
    pthread_mutex_lock(&lock);
    for (m = head; m; m = m->next) {
        if (!strcmp(m->name, name)) {
            if (m->type != type) {
                m = NULL;
                goto out;
            }
            if (same(m->labels, labels)) {
                goto out;
            }
        }
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        goto out;
    }
    m->type = type;
    m->name = na_strdup(name);
    m->help = na_strdup(help ? help : "");
    m->labels = labels ? na_strdup(labels) : NULL;
    if (!m->name || !m->help || (labels && !m->labels)) {
        free(m->name);
        free(m->help);
        free(m->labels);
        free(m);
        m = NULL;
        goto out;
    }
    *tail = m;
    tail = &m->next;
out:
    pthread_mutex_unlock(&lock);
    return m;
}

void na_metric_add(na_metric_t *m, double v) {
    if (!m) {
        return;
    }
    pthread_mutex_lock(&lock);
    m->value += v;
    pthread_mutex_unlock(&lock);
}

void na_metric_set(na_metric_t *m, double v) {
    if (!m) {
        return;
    }
    pthread_mutex_lock(&lock);
    m->value = v;
    pthread_mutex_unlock(&lock);
}

void na_metric_observe(na_metric_t *m, double v) {
    if (!m) {
        return;
    }
    pthread_mutex_lock(&lock);
    m->value += v;
    m->count++;
    for (size_t i = 0; i < NBUCKETS; i++) {
        if (v <= bucket_bounds[i]) {
            m->buckets[i]++;
        }
    }
    pthread_mutex_unlock(&lock);
}

double na_metric_value(const na_metric_t *m) {
    double v;
    if (!m) {
        return 0;
    }
    pthread_mutex_lock(&lock);
    v = m->value;
    pthread_mutex_unlock(&lock);
    return v;
}

void na_metrics_inc(const char *name, const char *help, const char *labels) {
    na_metric_add(na_metrics_get(NA_METRIC_COUNTER, name, help, labels), 1);
}

static const char *type_name(enum na_metric_type t) {
    return t == NA_METRIC_COUNTER ? "counter"
           : t == NA_METRIC_GAUGE ? "gauge"
                                  : "histogram";
}

char *na_metrics_render(void) {
    struct na_buf b;
    na_buf_init(&b);
    pthread_mutex_lock(&lock);
    for (struct na_metric_s *m = head; m; m = m->next) {
        /* HELP and TYPE once per name: at its first series. */
        int first = 1;
        for (struct na_metric_s *p = head; p != m; p = p->next) {
            if (!strcmp(p->name, m->name)) {
                first = 0;
                break;
            }
        }
        if (first) {
            na_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                          type_name(m->type));
        }
        const char *l = m->labels ? m->labels : "";
        if (m->type != NA_METRIC_HISTOGRAM) {
            na_buf_printf(&b, "%s%s%s%s %.17g\n", m->name, *l ? "{" : "", l,
                          *l ? "}" : "", m->value);
            continue;
        }
        for (size_t i = 0; i < NBUCKETS; i++) {
            na_buf_printf(&b, "%s_bucket{%s%sle=\"%g\"} %llu\n", m->name, l,
                          *l ? "," : "", bucket_bounds[i], m->buckets[i]);
        }
        na_buf_printf(&b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", m->name, l, *l ? "," : "",
                      m->count);
        na_buf_printf(&b, "%s_sum%s%s%s %.17g\n%s_count%s%s%s %llu\n", m->name,
                      *l ? "{" : "", l, *l ? "}" : "", m->value, m->name, *l ? "{" : "",
                      l, *l ? "}" : "", m->count);
    }
    pthread_mutex_unlock(&lock);
    return na_buf_steal(&b);
}

char *na_metrics_label_escape(const char *value, char *buf, size_t size) {
    size_t o = 0;
    for (const char *p = value ? value : ""; *p && o + 3 < size; p++) {
        if (*p == '\\' || *p == '"') {
            buf[o++] = '\\';
            buf[o++] = *p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *p;
        }
    }
    if (size) {
        buf[o < size ? o : size - 1] = '\0';
    }
    return buf;
}

void na_metrics_reset(void) {
    pthread_mutex_lock(&lock);
    while (head) {
        struct na_metric_s *m = head;
        head = m->next;
        free(m->name);
        free(m->help);
        free(m->labels);
        free(m);
    }
    tail = &head;
    pthread_mutex_unlock(&lock);
}
