/**
 * @file metrics.h
 * @brief A process-wide registry of counters, gauges and histograms,
 *        rendered in the Prometheus text exposition format.
 *
 * Registration returns a handle that stays valid for the life of the
 * process; registering the same name and labels twice returns the same
 * handle. Lookups are O(1) (hash tables) and rendering is linear, so hot
 * callers may look up by name every time or keep the handle. Updates are
 * thread-safe. Label sets are given pre-rendered
 * (`route="desk",status="429"`); values that come from input must go
 * through na_metrics_label_escape().
 *
 * Series of things that go away (a feed removed from the sources) are
 * removed with na_metrics_remove() or na_metrics_remove_label(): they leave
 * the rendered text at once. Their handles stay valid: updates through them
 * are kept nowhere visible, and registering the same name and labels again
 * brings the series back from zero (same handle). Memory is one small
 * record per distinct name and labels ever registered.
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
 * @brief Remove one series (name and labels exactly as registered).
 * @returns 1 when a live series was removed, 0 when there was none.
 */
int na_metrics_remove(const char *name, const char *labels);

/**
 * @brief Remove every series that carries the label pair @p pair, rendered
 *        as in the label sets (`feed="bbc"`, value escaped with
 *        na_metrics_label_escape()), whatever its name and other labels.
 *        Cost: the series carrying that pair, not all series.
 * @returns the number of series removed.
 */
size_t na_metrics_remove_label(const char *pair);

/**
 * @brief Render every metric in Prometheus text format (version 0.0.4).
 * @returns new string; free().
 */
char *na_metrics_render(void);

/**
 * @brief Escape a label value (\\, ", newline) into @p buf, cut to fit
 *        (@p size with its NUL) between two characters, never inside one.
 * @returns @p buf.
 */
char *na_metrics_label_escape(const char *value, char *buf, size_t size);

/** @brief Free every metric (tests only; handles become invalid). */
void na_metrics_reset(void);

#endif
