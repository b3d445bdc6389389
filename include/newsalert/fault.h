/**
 * @file fault.h
 * @brief Fault points: named places where tests make the daemon fail on
 *        purpose (an allocation that fails, a write the broker refuses),
 *        to prove that the recovery path works.
 *
 * Off unless the environment sets NEWSALERT_FAULTS when the process starts:
 * "NAME[:COUNT][,NAME[:COUNT]..]" makes na_fault(NAME) true for its next
 * COUNT calls (default 1), then false again. With the variable unset a call
 * costs one atomic load. The points are listed in docs/reliability.md.
 *
 * Threading: any thread (a lock guards the table; with nothing armed a
 * call only reads an atomic counter).
 */
#ifndef NEWSALERT_FAULT_H
#define NEWSALERT_FAULT_H

#include <stdbool.h>

/**
 * @returns true when the fault point @p name should fail this time (and
 *          counts the hit); false when it is not armed or is used up.
 */
bool na_fault(const char *name);

/**
 * @brief Arm fault points from @p spec (same syntax as NEWSALERT_FAULTS),
 *        replacing what was armed; NULL or "" disarms every point. For unit
 *        tests, which cannot set the environment before the process starts.
 */
void na_fault_arm(const char *spec);

#endif
