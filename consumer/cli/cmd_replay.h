/**
 * @file cmd_replay.h
 * @brief The `replay` command of newsalert-consumer (docs/replay.md).
 *
 * main() dispatches `newsalert-consumer replay ...` as
 * na_cmd_replay(argc - 1, argv + 1), so argv[0] is the command name.
 */
#ifndef NEWSALERT_CMD_REPLAY_H
#define NEWSALERT_CMD_REPLAY_H

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

#endif
