/*
 * ops: what each socket protocol op does (SPEC §2 "Ops"), as a table of
 * handlers over the scheduler.  A handler either answers at once or parks
 * the call on a waiter and answers when the waiter completes.
 */
#ifndef JOBD_OPS_H
#define JOBD_OPS_H

#include "server.h"

/*
 * Run a parsed call: 0 answered (the caller releases it); 1 parked, and
 * the connection's later requests wait for it (a full queue, wait, join,
 * cancel); 2 answered later, but later requests may go on meanwhile (a
 * submit waiting for its journal record: group commit across a pipeline).
 */
int	 ops_run(struct call *);

#endif
