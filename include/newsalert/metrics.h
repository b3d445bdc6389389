/**
 * @file metrics.h
 * @brief A process-wide registry of counters, gauges and histograms,
 *        rendered in the Prometheus text exposition format.
 *
 * Registration returns a handle that stays valid for the life of the
 * process; registering the same name and labels twice returns the same
 * handle. Updates are thread-safe. Label sets are given pre-rendered
 * (`route="desk",status="429"`); values that come from input must go
 * through na_metrics_label_escape().
 */
#ifndef NEWSALERT_METRICS_H
#define NEWSALERT_METRICS_H

#include <stddef.h>

typedef struct na_metric_s na_metric_t;

enum na_metric_type {
    NA_METRIC_COUNTER,
    NA_METRIC_GAUGE,
    NA_METRIC_HISTOGRAM,
};

/**
 * @brief Find or register a metric.
 * @param name `newsalert_<component>_<what>[_total|_seconds|..]`
 * @param help one line of help text (first registration wins)
 * @param labels rendered label pairs without braces, or NULL
 * @returns borrowed handle, valid until the process exits; NULL on no memory
 *          or when @p name exists with another type.
 */
na_metric_t *na_metrics_get(enum na_metric_type type, const char *name, const char *help,
                            const char *labels);

/** @brief Add @p v to a counter or gauge (NULL-safe). */
void na_metric_add(na_metric_t *m, double v);
/** @brief Set a gauge (NULL-safe). */
void na_metric_set(na_metric_t *m, double v);
/** @brief Record one observation in a histogram (NULL-safe). Buckets are
 *         fixed: 100 us to 10 s, roughly x2.5 apart. */
void na_metric_observe(na_metric_t *m, double v);
/** @returns the current value of a counter or gauge (sum for histograms). */
double na_metric_value(const na_metric_t *m);

/** @brief Shorthands: counter += 1, by name and labels. */
void na_metrics_inc(const char *name, const char *help, const char *labels);

/**
 * @brief Render every metric in Prometheus text format (version 0.0.4).
 * @returns new string; free().
 */
char *na_metrics_render(void);

/**
 * @brief Escape a label value (\\, ", newline) into @p buf.
 * @returns @p buf.
 */
char *na_metrics_label_escape(const char *value, char *buf, size_t size);

/** @brief Forget every metric (tests only; handles become invalid). */
void na_metrics_reset(void);

#endif
