/**
 * @file cmd_replay.h
 * @brief The `replay` command of newsalert-consumer (docs/replay.md).
 *
 * main() dispatches `newsalert-consumer replay ...` as
 * na_cmd_replay(argc - 1, argv + 1), so argv[0] is the command name.
 */
#ifndef NEWSALERT_CMD_REPLAY_H
#define NEWSALERT_CMD_REPLAY_H

#include <stdbool.h>

/**
 * @brief `replay --from X --to Y [outputs] [consumer options]`: read a range
 *        of the articles topic without touching the live group's offsets,
 *        and post alerts (--routes, through the ledger), print them
 *        (--dry-run), write classified articles (--output FILE,
 *        --output-topic T), and/or compare two rule sets (--rules NEW
 *        --baseline-rules OLD).
 * @returns the exit code: 0 done (also for an empty range, which is said on
 *          stderr), 1 a failed run, failed deliveries or an interruption
 *          (SIGINT/SIGTERM: the resume command is printed), 2 bad usage.
 */
int na_cmd_replay(int argc, char **argv);

/**
 * @brief The command line that resumes an interrupted replay: @p argv minus
 *        its bounds (--from, --to, --ts-from, --ts-to), plus @p bounds
 *        (na_replay_resume_args()), and --append once when @p append.
 *        Secrets given on the command line (-X with a property that
 *        --dump-config hides, --webhook) are shown as "***", as on every
 *        other line on stderr; @p redacted says so.
 * @returns the line (free() it), or NULL on no memory.
 */
char *na_replay_resume_command(int argc, char **argv, const char *bounds, bool append,
                               bool *redacted);

#endif
