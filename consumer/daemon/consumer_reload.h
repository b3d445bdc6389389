/**
 * @file consumer_reload.h
 * @brief SIGHUP for the consumer: new rules and routes without a restart.
 *
 * Both functions load into a fresh object and swap only when the load
 * succeeded; on failure the live object is untouched and the reason is
 * logged (event=reload_failed). See na_daemon_reload() in daemon.h.
 * Main thread only, between two records (never inside a callback).
 */
#ifndef NEWSALERT_CONSUMER_RELOAD_H
#define NEWSALERT_CONSUMER_RELOAD_H

#include "newsalert/err.h"
#include "route.h"
#include "rules.h"

/**
 * @brief Compile @p path and, when it compiles, replace *@p rulesp (the old
 *        rules are destroyed: call it where no classification is running).
 * @returns NA_OK, or the load error with *@p rulesp unchanged (already logged:
 *          callers may ignore it).
 */
na_err_t na_consumer_reload_rules(const char *path, na_rules_t **rulesp);

/**
 * @brief Read the "routes" array of config file @p config_path again (plus
 *        the --webhook shortcut when @p webhook is set) into @p staged.
 * @param staged filled on success (na_routes_cleanup() it); empty on failure.
 *        The caller swaps it in once no delivery of the old routes is in
 *        flight (deliveries point at their route), e.g. when
 *        na_deliver_pending() is 0, and frees the old routes then.
 * @returns NA_OK, or an error (logged) with @p staged empty.
 */
NA_WUR na_err_t na_consumer_reload_routes(const char *config_path, const char *webhook,
                                          const char *webhook_format,
                                          struct na_routes *staged);

#endif
