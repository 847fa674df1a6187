/*
 * queue.h -- the FIFO of 4-byte refs behind each segment of the eviction
 * policy (evict/queue.c): a chunked deque, internal to the evict layer.
 *
 * A queue is a doubly linked chain of blocks of QUEUE_BLOCK_REFS refs
 * (1 KiB each, header included, from xmalloc: a small shard's three
 * queues start at 3 KiB, not 12). Each block holds a run
 * [lo, hi) of its slots, so the queue pops at the head, pushes at the tail
 * and pushes back at the head in O(1), and a block can be compacted in
 * place without touching the others: compaction keeps the FIFO order and
 * never pauses for more than two blocks.
 *
 * The queue only stores refs: which entries are dead is the policy's
 * business (the meta byte of the item), and compaction asks it through a
 * callback. `len` counts the entries held, dead ones included; `dead` is
 * kept by the policy (it marks entries dead and knows when it pops them).
 *
 * Not thread-safe: the policy's owner serialises every call.
 */
#ifndef CRAB_EVICT_QUEUE_H
#define CRAB_EVICT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_BLOCK_BYTES 1024u
#define QUEUE_BLOCK_REFS \
    ((QUEUE_BLOCK_BYTES - 2 * sizeof(void *) - 2 * sizeof(uint32_t)) / \
     sizeof(uint32_t))

struct queue_block {
    struct queue_block *prev;    /* towards the head */
    struct queue_block *next;    /* towards the tail */
    uint32_t lo;                 /* first entry */
    uint32_t hi;                 /* one past the last */
    uint32_t refs[QUEUE_BLOCK_REFS];
};
_Static_assert(sizeof(struct queue_block) <= QUEUE_BLOCK_BYTES,
               "a queue block fits its QUEUE_BLOCK_BYTES");

struct queue {
    struct queue_block *head;
    struct queue_block *tail;
    struct queue_block *cursor;  /* compaction position; NULL when idle */
    uint64_t len;                /* entries held, dead ones included */
    uint64_t dead;               /* of which dead (kept by the policy) */
    uint64_t count;              /* live items of the segment */
    uint64_t weight;             /* their total weight */
    uint32_t blocks;             /* blocks held */
    uint8_t seg;                 /* enum evict_seg of the segment */
};

/* Compaction's question: is this entry dead? If it is, the callback has
 * done what dropping it needs (release) and the queue forgets it. */
typedef bool (*queue_drop_fn)(uint32_t ref, void *ctx);

void queue_init(struct queue *q, uint8_t seg);

/* Free every block; entries are forgotten without any callback. */
void queue_free(struct queue *q);

static inline bool
queue_empty(const struct queue *q)
{
    return q->len == 0;
}

/* The head entry (oldest), 0 when empty. */
static inline uint32_t
queue_peek(const struct queue *q)
{
    return q->len == 0 ? 0 : q->head->refs[q->head->lo];
}

void queue_push_head(struct queue *q, uint32_t ref);

/* Out-of-line halves of the inline push and pop below (queue.c): a push
 * into a new tail block, and the unlinking of the head block a pop has
 * emptied. Not for other callers. */
void queue__push_tail_block(struct queue *q, uint32_t ref);
void queue__drop_head(struct queue *q);

/* Inline: the policy pushes and pops once or twice per eviction. */
static inline void
queue_push_tail(struct queue *q, uint32_t ref)
{
    struct queue_block *b = q->tail;

    if (b == NULL || b->hi == QUEUE_BLOCK_REFS) {
        queue__push_tail_block(q, ref);
        return;
    }
    b->refs[b->hi++] = ref;
    q->len++;
}

/* Remove and return the head entry (the queue must not be empty). */
static inline uint32_t
queue_pop(struct queue *q)
{
    struct queue_block *b = q->head;
    uint32_t ref = b->refs[b->lo++];

    q->len--;
    if (b->lo == b->hi) {
        queue__drop_head(q);
    }
    return ref;
}

/* Append every entry of `from` to the tail of `to` (blocks relinked, O(1)
 * plus one partial block merge at most); `from` is left empty. Counts and
 * weights are added up. */
void queue_splice(struct queue *to, struct queue *from);

/* One compaction step at the cursor (starting a pass at the head when idle):
 * drop the dead entries of the cursor's block, fill it from the next
 * block(s), and move the cursor on once it is full. Returns the entries
 * examined (0 when there was nothing to do); the pass ends (cursor NULL) at
 * the tail. */
size_t queue_compact_step(struct queue *q, queue_drop_fn drop, void *ctx);

/* Bytes held by the blocks. */
static inline size_t
queue_bytes(const struct queue *q)
{
    return (size_t)q->blocks * QUEUE_BLOCK_BYTES;
}

#endif
