/**
 * @file producer_reload.h
 * @brief SIGHUP for the producer: the sources file read again.
 *
 * Loads into a fresh list and hands it over only when the whole file is
 * valid; on failure the live list is untouched and the reason is logged
 * (event=reload_failed). Main thread only.
 */
#ifndef NEWSALERT_PRODUCER_RELOAD_H
#define NEWSALERT_PRODUCER_RELOAD_H

#include <stddef.h>

#include "newsalert/err.h"
#include "sources.h"

/**
 * @brief Read @p path into @p staged.
 * @param staged filled on success (na_sources_cleanup() it); empty on failure.
 *        The caller rebuilds its per-feed state: keep the state of ids that
 *        stay (na_producer_source_find()), start new ids now, and drop
 *        removed ids once their fetch and deliveries are finished.
 * @returns NA_OK, or the load error with @p staged empty.
 */
NA_WUR na_err_t na_producer_reload_sources(const char *path, struct na_sources *staged);

/** @returns the index of the source with id @p id in @p s, or -1 (a binary
 *           search of s->by_id when there is one). */
long na_producer_source_find(const struct na_sources *s, const char *id);

#endif
