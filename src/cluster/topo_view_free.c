/*
 * topo_view_free.c -- TEMPORARY, branch cl-route only: topo.c (another
 * branch) defines topo_view_free; this stand-in lets view.c link until the
 * merge, where this file is dropped. It frees a view whose struct and
 * arrays were each allocated on their own, as the unit tests build them.
 */
#include <stdlib.h>

#include "cluster/topo.h"

void
topo_view_free(struct topo_view *v)
{
    if (v == NULL) {
        return;
    }
    free(v->nodes);
    free(v->vb_n);
    free(v->vb_nodes);
    free(v);
}
