/*
 * queue.c -- chunked deque of 4-byte refs for the eviction segments (see
 * queue.h).
 *
 * Blocks are never empty while linked: pop frees the head block when its
 * last entry leaves, and compaction frees the blocks it empties. A block
 * made for a push at the tail starts at lo = hi = 0, one made for a push at
 * the head at lo = hi = QUEUE_BLOCK_REFS, so both kinds of push keep
 * filling it.
 *
 * Compaction walks the chain once per pass with a cursor: at each step it
 * squeezes the cursor's block to the start of its slots (dead entries
 * dropped through the callback), then pulls entries from the blocks after
 * it until it is full, freeing the blocks it empties. After a pass every
 * block but the last is full, so the queue holds about 4 bytes per entry
 * plus the dead entries that arrived since. A pop that frees the cursor's
 * block moves the cursor on.
 */
#include "evict/queue.h"

#include "util/mem.h"

#include <stdlib.h>
#include <string.h>

/* Entries one step may examine before it yields. */
#define STEP_LIMIT (2 * QUEUE_BLOCK_REFS)

void
queue_init(struct queue *q, uint8_t seg)
{
    memset(q, 0, sizeof(*q));
    q->seg = seg;
}

void
queue_free(struct queue *q)
{
    struct queue_block *b = q->head;

    while (b != NULL) {
        struct queue_block *next = b->next;
        free(b);
        b = next;
    }
    queue_init(q, q->seg);
}

static struct queue_block *
block_new(struct queue *q, uint32_t at)
{
    struct queue_block *b = xmalloc(sizeof(*b));

    b->prev = NULL;
    b->next = NULL;
    b->lo = at;
    b->hi = at;
    q->blocks++;
    return b;
}

/* Unlink and free a block (empty or not: its entries are forgotten). */
static void
block_drop(struct queue *q, struct queue_block *b)
{
    if (b->prev != NULL) {
        b->prev->next = b->next;
    } else {
        q->head = b->next;
    }
    if (b->next != NULL) {
        b->next->prev = b->prev;
    } else {
        q->tail = b->prev;
    }
    if (q->cursor == b) {
        q->cursor = b->next;
    }
    q->blocks--;
    free(b);
}

void
queue__push_tail_block(struct queue *q, uint32_t ref)
{
    struct queue_block *b = block_new(q, 0);

    b->prev = q->tail;
    if (q->tail != NULL) {
        q->tail->next = b;
    } else {
        q->head = b;
    }
    q->tail = b;
    b->refs[b->hi++] = ref;
    q->len++;
}

void
queue_push_head(struct queue *q, uint32_t ref)
{
    struct queue_block *b = q->head;

    if (b == NULL || b->lo == 0) {
        b = block_new(q, QUEUE_BLOCK_REFS);
        b->next = q->head;
        if (q->head != NULL) {
            q->head->prev = b;
        } else {
            q->tail = b;
        }
        q->head = b;
    }
    b->refs[--b->lo] = ref;
    q->len++;
}

void
queue__drop_head(struct queue *q)
{
    block_drop(q, q->head);
}

void
queue_splice(struct queue *to, struct queue *from)
{
    if (from->len == 0) {
        return;
    }
    if (to->tail != NULL) {
        to->tail->next = from->head;
        from->head->prev = to->tail;
    } else {
        to->head = from->head;
    }
    to->tail = from->tail;
    to->len += from->len;
    to->dead += from->dead;
    to->count += from->count;
    to->weight += from->weight;
    to->blocks += from->blocks;
    from->head = NULL;
    from->tail = NULL;
    from->cursor = NULL;
    from->len = 0;
    from->dead = 0;
    from->count = 0;
    from->weight = 0;
    from->blocks = 0;
}

size_t
queue_compact_step(struct queue *q, queue_drop_fn drop, void *ctx)
{
    struct queue_block *b = q->cursor != NULL ? q->cursor : q->head;
    struct queue_block *n;
    size_t examined = 0;
    uint32_t w = 0;

    if (b == NULL) {
        return 0;
    }
    q->cursor = b;
    /* Squeeze the block to the start of its slots. */
    for (uint32_t i = b->lo; i < b->hi; i++) {
        uint32_t ref = b->refs[i];
        examined++;
        if (drop(ref, ctx)) {
            q->len--;
            q->dead--;
        } else {
            b->refs[w++] = ref;
        }
    }
    b->lo = 0;
    b->hi = w;
    /* Fill it from the blocks after it. */
    while (b->hi < QUEUE_BLOCK_REFS && (n = b->next) != NULL &&
           examined < STEP_LIMIT) {
        while (n->lo < n->hi && b->hi < QUEUE_BLOCK_REFS) {
            uint32_t ref = n->refs[n->lo++];
            examined++;
            if (drop(ref, ctx)) {
                q->len--;
                q->dead--;
            } else {
                b->refs[b->hi++] = ref;
            }
        }
        if (n->lo == n->hi) {
            block_drop(q, n);
        }
    }
    if (b->hi == 0) {
        /* Everything was dead and nothing follows (or the step ran out):
         * the cursor moves on with the block's removal. */
        block_drop(q, b);
    } else if (b->hi == QUEUE_BLOCK_REFS) {
        q->cursor = b->next;
    } else if (b->next == NULL) {
        q->cursor = NULL;
    }
    return examined;
}
