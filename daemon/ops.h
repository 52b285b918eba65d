/*
 * ops: what each socket protocol op does (SPEC §2 "Ops"), as a table of
 * handlers over the scheduler.  A handler either answers at once or parks
 * the call on a waiter and answers when the waiter completes.
 */
#ifndef JOBD_OPS_H
#define JOBD_OPS_H

#include "server.h"

/* Run a parsed call: 0 answered (the caller frees it), 1 parked. */
int	 ops_run(struct call *);

#endif
