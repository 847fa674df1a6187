/*
 * downward.c -- a probe compiled as a source of cmd/ would be: headers of
 * cmd/ itself and of the layers below it compile (ctest
 * layers_allow_downward_include), so the refusals the other probes expect
 * come from the layering and not from a broken probe.
 */
#include "cluster/cluster.h"
#include "cmd/keys.h"
#include "conf/config.h"
#include "core/server.h"
#include "persist/mstream.h"
#include "proto/proto.h"
#include "store/store.h"
#include "util/buf.h"

size_t probe_keys(struct store *st);

size_t
probe_keys(struct store *st)
{
    struct store_shard_stats s;
    store_shard_stats(st, 0, &s);
    return s.keys;
}
