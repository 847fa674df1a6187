/*
 * topo.c -- the topology state machine (see topo.h for the rules).
 *
 * An entry is decoded whole into a struct entry first, so a truncated or
 * over-long entry is refused before anything is looked at; each type then has
 * one function that checks its expectations against the state and changes it
 * only once every check has passed. Nothing here may depend on anything but
 * the state and the entry: every node applies the same log and must end with
 * the same bytes.
 *
 * Snapshot encoding (topo_encode), little-endian, no padding, strings as
 * u8 length + bytes:
 *
 *   u8  version (1)
 *   u32 nvb, u32 rf, u32 vnodes       (all 0 before TOPO_E_INIT)
 *   u64 config_epoch, u64 applied, u32 next_num
 *   u32 nnodes, then per node in num order:
 *       u32 num, str id, u64 raft_id, str ip,
 *       u16 port, u16 resp_port, u16 bus_port, u16 raft_port,
 *       u32 flags, u64 join_epoch
 *   nvb times: u8 n, u32 nums[n], u64 epoch, u32 target, u64 copy_id
 *
 * Every field is stored as it is, and topo_decode refuses anything topo_apply
 * could not have produced (unsorted nums, unknown flags, a list naming an
 * unknown node, bytes left over), so decode and encode are inverses: the
 * same state has one encoding.
 */
#include "cluster/topo.h"

#include <stdlib.h>
#include <string.h>

#include "cluster/ring.h"
#include "util/buf.h"
#include "util/mem.h"

#define TOPO_ENCODING_VERSION 1
/* The smallest encoded node (1-byte id, no ip) and vbucket (empty list). */
#define NODE_MIN_BYTES (4 + 2 + 8 + 1 + 4 * 2 + 4 + 8)
#define VB_MIN_BYTES (1 + 8 + 4 + 8)

/* ---- little-endian reading and writing ------------------------------------ */

struct rd {
    const uint8_t *p;
    size_t left;
    bool bad; /* a read ran past the end or met a malformed string */
};

static uint64_t
rd_le(struct rd *r, unsigned bytes)
{
    if (r->bad || r->left < bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++) {
        v |= (uint64_t)r->p[i] << (8 * i);
    }
    r->p += bytes;
    r->left -= bytes;
    return v;
}

static uint8_t
rd_u8(struct rd *r)
{
    return (uint8_t)rd_le(r, 1);
}

static uint16_t
rd_u16(struct rd *r)
{
    return (uint16_t)rd_le(r, 2);
}

static uint32_t
rd_u32(struct rd *r)
{
    return (uint32_t)rd_le(r, 4);
}

static uint64_t
rd_u64(struct rd *r)
{
    return rd_le(r, 8);
}

/* Printable ASCII without space: ids and addresses go into CLUSTER NODES
 * lines and C strings, so no separator, control byte or NUL may hide in one. */
static bool
str_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= ' ' || s[i] > '~') {
            return false;
        }
    }
    return true;
}

/* A string of min..max bytes into dst (max + 1 bytes, NUL-terminated). */
static void
rd_str(struct rd *r, char *dst, size_t min, size_t max)
{
    size_t len = rd_u8(r);
    if (r->bad || len < min || len > max || len > r->left ||
        !str_ok((const char *)r->p, len)) {
        r->bad = true;
        dst[0] = '\0';
        return;
    }
    memcpy(dst, r->p, len);
    dst[len] = '\0';
    r->p += len;
    r->left -= len;
}

static void
wr_le(struct buf *b, uint64_t v, unsigned bytes)
{
    char *p = buf_reserve(b, bytes);
    for (unsigned i = 0; i < bytes; i++) {
        p[i] = (char)(uint8_t)(v >> (8 * i));
    }
    b->len += bytes;
}

static void
wr_u8(struct buf *b, uint8_t v)
{
    wr_le(b, v, 1);
}

static void
wr_u16(struct buf *b, uint16_t v)
{
    wr_le(b, v, 2);
}

static void
wr_u32(struct buf *b, uint32_t v)
{
    wr_le(b, v, 4);
}

static void
wr_u64(struct buf *b, uint64_t v)
{
    wr_le(b, v, 8);
}

/* Longer strings are cut at 255 bytes: apply refuses them anyway. */
static void
wr_str(struct buf *b, const char *s)
{
    size_t len = strlen(s);
    if (len > UINT8_MAX) {
        len = UINT8_MAX;
    }
    wr_u8(b, (uint8_t)len);
    buf_append(b, s, len);
}

static void
wr_list(struct buf *b, unsigned n, const uint32_t *nums)
{
    if (n > UINT8_MAX) {
        n = UINT8_MAX;
    }
    wr_u8(b, (uint8_t)n);
    for (unsigned i = 0; i < n; i++) {
        wr_u32(b, nums[i]);
    }
}

/* ---- entries -------------------------------------------------------------- */

/* One decoded entry; which fields mean something depends on type. */
struct entry {
    uint8_t type;
    uint32_t nvb, rf, vnodes;
    struct topo_node node; /* NODE_*: id; NODE_JOIN: its address too */
    uint32_t vb;
    uint64_t expect_epoch;
    uint32_t target;
    uint64_t copy_id;
    uint8_t n;
    uint32_t nums[TOPO_MAX_RF];
};

static void
rd_list(struct rd *r, struct entry *e)
{
    e->n = rd_u8(r);
    if (e->n > TOPO_MAX_RF) {
        r->bad = true;
        return;
    }
    for (unsigned i = 0; i < e->n; i++) {
        e->nums[i] = rd_u32(r);
    }
}

/* The length of the well-formed entry at the start of data, 0 if there is
 * none (truncated, unknown type, a bad string or list). */
static size_t
parse_entry(const void *data, size_t len, struct entry *e)
{
    struct rd r = { .p = data, .left = len };
    memset(e, 0, sizeof(*e));
    e->type = rd_u8(&r);
    switch (e->type) {
    case TOPO_E_INIT:
        e->nvb = rd_u32(&r);
        e->rf = rd_u32(&r);
        e->vnodes = rd_u32(&r);
        break;
    case TOPO_E_NODE_JOIN:
        rd_str(&r, e->node.id, 1, TOPO_ID_LEN);
        e->node.raft_id = rd_u64(&r);
        rd_str(&r, e->node.ip, 0, TOPO_IP_LEN - 1);
        e->node.port = rd_u16(&r);
        e->node.resp_port = rd_u16(&r);
        e->node.bus_port = rd_u16(&r);
        e->node.raft_port = rd_u16(&r);
        if (e->node.raft_id == 0) {
            r.bad = true;
        }
        break;
    case TOPO_E_NODE_LEAVE:
    case TOPO_E_NODE_FORGET:
        rd_str(&r, e->node.id, 1, TOPO_ID_LEN);
        break;
    case TOPO_E_VB_SET:
        e->vb = rd_u32(&r);
        e->expect_epoch = rd_u64(&r);
        rd_list(&r, e);
        break;
    case TOPO_E_MIGRATE_BEGIN:
        e->vb = rd_u32(&r);
        e->expect_epoch = rd_u64(&r);
        e->target = rd_u32(&r);
        e->copy_id = rd_u64(&r);
        break;
    case TOPO_E_MIGRATE_COMMIT:
        e->vb = rd_u32(&r);
        e->copy_id = rd_u64(&r);
        rd_list(&r, e);
        break;
    case TOPO_E_MIGRATE_ABORT:
        e->vb = rd_u32(&r);
        e->copy_id = rd_u64(&r);
        break;
    default:
        return 0;
    }
    return r.bad ? 0 : len - r.left;
}

size_t
topo_entry_len(const void *data, size_t len)
{
    struct entry e;
    return parse_entry(data, len, &e);
}

void
topo_entry_init(struct buf *out, uint32_t nvb, uint32_t rf, uint32_t vnodes)
{
    wr_u8(out, TOPO_E_INIT);
    wr_u32(out, nvb);
    wr_u32(out, rf);
    wr_u32(out, vnodes);
}

void
topo_entry_node_join(struct buf *out, const struct topo_node *n)
{
    wr_u8(out, TOPO_E_NODE_JOIN);
    wr_str(out, n->id);
    wr_u64(out, n->raft_id);
    wr_str(out, n->ip);
    wr_u16(out, n->port);
    wr_u16(out, n->resp_port);
    wr_u16(out, n->bus_port);
    wr_u16(out, n->raft_port);
}

void
topo_entry_node_leave(struct buf *out, const char *id)
{
    wr_u8(out, TOPO_E_NODE_LEAVE);
    wr_str(out, id);
}

void
topo_entry_node_forget(struct buf *out, const char *id)
{
    wr_u8(out, TOPO_E_NODE_FORGET);
    wr_str(out, id);
}

void
topo_entry_vb_set(struct buf *out, uint32_t vb, uint64_t expect_epoch, unsigned n,
                  const uint32_t *nums)
{
    wr_u8(out, TOPO_E_VB_SET);
    wr_u32(out, vb);
    wr_u64(out, expect_epoch);
    wr_list(out, n, nums);
}

void
topo_entry_migrate_begin(struct buf *out, uint32_t vb, uint64_t expect_epoch, uint32_t target,
                         uint64_t copy_id)
{
    wr_u8(out, TOPO_E_MIGRATE_BEGIN);
    wr_u32(out, vb);
    wr_u64(out, expect_epoch);
    wr_u32(out, target);
    wr_u64(out, copy_id);
}

void
topo_entry_migrate_commit(struct buf *out, uint32_t vb, uint64_t copy_id, unsigned n,
                          const uint32_t *nums)
{
    wr_u8(out, TOPO_E_MIGRATE_COMMIT);
    wr_u32(out, vb);
    wr_u64(out, copy_id);
    wr_list(out, n, nums);
}

void
topo_entry_migrate_abort(struct buf *out, uint32_t vb, uint64_t copy_id)
{
    wr_u8(out, TOPO_E_MIGRATE_ABORT);
    wr_u32(out, vb);
    wr_u64(out, copy_id);
}

/* ---- state and lookups ---------------------------------------------------- */

void
topo_init(struct topo *t)
{
    memset(t, 0, sizeof(*t));
    t->next_num = 1;
}

void
topo_deinit(struct topo *t)
{
    free(t->nodes);
    free(t->vb);
    topo_init(t);
}

static size_t
node_index_by_num(const struct topo *t, uint32_t num)
{
    size_t lo = 0, hi = t->nnodes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->nodes[mid].num < num) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < t->nnodes && t->nodes[lo].num == num ? lo : SIZE_MAX;
}

const struct topo_node *
topo_node_by_num(const struct topo *t, uint32_t num)
{
    size_t i = node_index_by_num(t, num);
    return i == SIZE_MAX ? NULL : &t->nodes[i];
}

static struct topo_node *
find_id(const struct topo *t, const char *id)
{
    for (size_t i = 0; i < t->nnodes; i++) {
        if (strcmp(t->nodes[i].id, id) == 0) {
            return &t->nodes[i];
        }
    }
    return NULL;
}

const struct topo_node *
topo_node_by_id(const struct topo *t, const char *id)
{
    return find_id(t, id);
}

static const struct topo_node *
node_by_raft_id(const struct topo *t, uint64_t raft_id)
{
    for (size_t i = 0; i < t->nnodes; i++) {
        if (t->nodes[i].raft_id == raft_id) {
            return &t->nodes[i];
        }
    }
    return NULL;
}

/* A list is valid when it fits rf and names distinct known nodes. */
static bool
list_valid(const struct topo *t, unsigned n, const uint32_t *nums)
{
    if (n > t->rf) {
        return false;
    }
    for (unsigned i = 0; i < n; i++) {
        if (node_index_by_num(t, nums[i]) == SIZE_MAX) {
            return false;
        }
        for (unsigned j = 0; j < i; j++) {
            if (nums[j] == nums[i]) {
                return false;
            }
        }
    }
    return true;
}

static bool
list_equal(const struct topo_vb *vb, unsigned n, const uint32_t *nums)
{
    return vb->n == n && memcmp(vb->nodes, nums, n * sizeof(*nums)) == 0;
}

static void
list_set(struct topo_vb *vb, unsigned n, const uint32_t *nums)
{
    /* the unused tail stays zero, so equal placements are equal structs */
    memset(vb->nodes, 0, sizeof(vb->nodes));
    memcpy(vb->nodes, nums, n * sizeof(*nums));
    vb->n = (uint8_t)n;
}

static bool
num_in_use(const struct topo *t, uint32_t num)
{
    for (uint32_t v = 0; v < t->nvb; v++) {
        const struct topo_vb *vb = &t->vb[v];
        if (vb->target == num) {
            return true;
        }
        for (unsigned i = 0; i < vb->n; i++) {
            if (vb->nodes[i] == num) {
                return true;
            }
        }
    }
    return false;
}

static bool
is_pow2(uint32_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* ---- apply, one function per entry type ----------------------------------- */

static enum topo_result
apply_init(struct topo *t, uint64_t index, const struct entry *e)
{
    if (!is_pow2(e->nvb) || e->nvb > TOPO_MAX_VB || e->rf == 0 || e->rf > TOPO_MAX_RF ||
        e->vnodes == 0 || e->vnodes > TOPO_MAX_VNODES) {
        return TOPO_EINVAL;
    }
    if (t->nvb != 0) {
        bool same = t->nvb == e->nvb && t->rf == e->rf && t->vnodes == e->vnodes;
        return same ? TOPO_NOOP : TOPO_STALE;
    }
    t->vb = xcalloc(e->nvb, sizeof(*t->vb));
    t->nvb = e->nvb;
    t->rf = e->rf;
    t->vnodes = e->vnodes;
    t->config_epoch = index;
    return TOPO_OK;
}

static bool
same_address(const struct topo_node *a, const struct topo_node *b)
{
    return a->raft_id == b->raft_id && strcmp(a->ip, b->ip) == 0 && a->port == b->port &&
           a->resp_port == b->resp_port && a->bus_port == b->bus_port &&
           a->raft_port == b->raft_port;
}

static enum topo_result
apply_node_join(struct topo *t, uint64_t index, const struct entry *e)
{
    struct topo_node *known = find_id(t, e->node.id);
    const struct topo_node *holder = node_by_raft_id(t, e->node.raft_id);
    if (holder != NULL && holder != known) {
        return TOPO_STALE; /* another node has that raft id */
    }
    if (known != NULL) {
        if (same_address(known, &e->node)) {
            return TOPO_NOOP;
        }
        known->raft_id = e->node.raft_id;
        memcpy(known->ip, e->node.ip, sizeof(known->ip));
        known->port = e->node.port;
        known->resp_port = e->node.resp_port;
        known->bus_port = e->node.bus_port;
        known->raft_port = e->node.raft_port;
        known->join_epoch = index;
        t->config_epoch = index;
        return TOPO_OK;
    }
    if (t->nnodes >= TOPO_MAX_NODES || t->next_num == UINT32_MAX) {
        return TOPO_STALE;
    }
    /* nums only grow, so appending keeps nodes[] sorted by num */
    t->nodes = xrealloc(t->nodes, (t->nnodes + 1) * sizeof(*t->nodes));
    struct topo_node *n = &t->nodes[t->nnodes++];
    *n = e->node;
    n->num = t->next_num++;
    n->flags = 0;
    n->join_epoch = index;
    t->config_epoch = index;
    return TOPO_OK;
}

static enum topo_result
apply_node_leave(struct topo *t, uint64_t index, const struct entry *e)
{
    struct topo_node *n = find_id(t, e->node.id);
    if (n == NULL) {
        return TOPO_STALE;
    }
    if (n->flags & TOPO_NODE_LEAVING) {
        return TOPO_NOOP;
    }
    n->flags |= TOPO_NODE_LEAVING;
    t->config_epoch = index;
    return TOPO_OK;
}

static enum topo_result
apply_node_forget(struct topo *t, uint64_t index, const struct entry *e)
{
    const struct topo_node *n = find_id(t, e->node.id);
    if (n == NULL) {
        return TOPO_NOOP; /* gone already: a retried forget */
    }
    if (num_in_use(t, n->num)) {
        return TOPO_STALE;
    }
    size_t i = (size_t)(n - t->nodes);
    memmove(&t->nodes[i], &t->nodes[i + 1], (t->nnodes - i - 1) * sizeof(*t->nodes));
    t->nnodes--;
    t->config_epoch = index;
    return TOPO_OK;
}

static enum topo_result
apply_vb_set(struct topo *t, uint64_t index, const struct entry *e)
{
    if (e->vb >= t->nvb || !list_valid(t, e->n, e->nums)) {
        return TOPO_EINVAL;
    }
    struct topo_vb *vb = &t->vb[e->vb];
    if (list_equal(vb, e->n, e->nums)) {
        return TOPO_NOOP;
    }
    if (vb->epoch != e->expect_epoch || vb->copy_id != 0) {
        return TOPO_STALE;
    }
    list_set(vb, e->n, e->nums);
    vb->epoch = index;
    t->config_epoch = index;
    return TOPO_OK;
}

static enum topo_result
apply_migrate_begin(struct topo *t, uint64_t index, const struct entry *e)
{
    if (e->vb >= t->nvb || e->copy_id == 0 || node_index_by_num(t, e->target) == SIZE_MAX) {
        return TOPO_EINVAL;
    }
    struct topo_vb *vb = &t->vb[e->vb];
    if (vb->copy_id == e->copy_id && vb->target == e->target) {
        return TOPO_NOOP;
    }
    const struct topo_node *target = topo_node_by_num(t, e->target);
    if (vb->epoch != e->expect_epoch || vb->copy_id != 0 || vb->n == 0 ||
        vb->nodes[0] == e->target || (target->flags & TOPO_NODE_LEAVING)) {
        return TOPO_STALE;
    }
    vb->target = e->target;
    vb->copy_id = e->copy_id;
    vb->epoch = index;
    t->config_epoch = index;
    return TOPO_OK;
}

static enum topo_result
apply_migrate_commit(struct topo *t, uint64_t index, const struct entry *e)
{
    if (e->vb >= t->nvb || e->copy_id == 0 || e->n == 0 || !list_valid(t, e->n, e->nums)) {
        return TOPO_EINVAL;
    }
    struct topo_vb *vb = &t->vb[e->vb];
    if (vb->copy_id != e->copy_id) {
        return list_equal(vb, e->n, e->nums) ? TOPO_NOOP : TOPO_STALE;
    }
    if (e->nums[0] != vb->target) {
        return TOPO_EINVAL; /* the copy moves the primary role to its target */
    }
    list_set(vb, e->n, e->nums);
    vb->target = 0;
    vb->copy_id = 0;
    vb->epoch = index;
    t->config_epoch = index;
    return TOPO_OK;
}

static enum topo_result
apply_migrate_abort(struct topo *t, uint64_t index, const struct entry *e)
{
    if (e->vb >= t->nvb || e->copy_id == 0) {
        return TOPO_EINVAL;
    }
    struct topo_vb *vb = &t->vb[e->vb];
    if (vb->copy_id != e->copy_id) {
        return vb->copy_id == 0 ? TOPO_NOOP : TOPO_STALE;
    }
    vb->target = 0;
    vb->copy_id = 0;
    vb->epoch = index;
    t->config_epoch = index;
    return TOPO_OK;
}

static enum topo_result
apply_entry(struct topo *t, uint64_t index, const struct entry *e)
{
    switch (e->type) {
    case TOPO_E_INIT: return apply_init(t, index, e);
    case TOPO_E_NODE_JOIN: return apply_node_join(t, index, e);
    case TOPO_E_NODE_LEAVE: return apply_node_leave(t, index, e);
    case TOPO_E_NODE_FORGET: return apply_node_forget(t, index, e);
    default: break;
    }
    /* the rest is about vbuckets, which do not exist before TOPO_E_INIT */
    if (t->nvb == 0) {
        return TOPO_STALE;
    }
    switch (e->type) {
    case TOPO_E_VB_SET: return apply_vb_set(t, index, e);
    case TOPO_E_MIGRATE_BEGIN: return apply_migrate_begin(t, index, e);
    case TOPO_E_MIGRATE_COMMIT: return apply_migrate_commit(t, index, e);
    case TOPO_E_MIGRATE_ABORT: return apply_migrate_abort(t, index, e);
    default: return TOPO_EINVAL;
    }
}

enum topo_result
topo_apply(struct topo *t, uint64_t index, const void *data, size_t len)
{
    if (index <= t->applied) {
        return TOPO_STALE;
    }
    struct entry e;
    bool whole = len > 0 && parse_entry(data, len, &e) == len;
    enum topo_result r = whole ? apply_entry(t, index, &e) : TOPO_EINVAL;
    t->applied = index;
    return r;
}

/* ---- the snapshot --------------------------------------------------------- */

void
topo_encode(const struct topo *t, struct buf *out)
{
    wr_u8(out, TOPO_ENCODING_VERSION);
    wr_u32(out, t->nvb);
    wr_u32(out, t->rf);
    wr_u32(out, t->vnodes);
    wr_u64(out, t->config_epoch);
    wr_u64(out, t->applied);
    wr_u32(out, t->next_num);
    wr_u32(out, (uint32_t)t->nnodes);
    for (size_t i = 0; i < t->nnodes; i++) {
        const struct topo_node *n = &t->nodes[i];
        wr_u32(out, n->num);
        wr_str(out, n->id);
        wr_u64(out, n->raft_id);
        wr_str(out, n->ip);
        wr_u16(out, n->port);
        wr_u16(out, n->resp_port);
        wr_u16(out, n->bus_port);
        wr_u16(out, n->raft_port);
        wr_u32(out, n->flags);
        wr_u64(out, n->join_epoch);
    }
    for (uint32_t v = 0; v < t->nvb; v++) {
        const struct topo_vb *vb = &t->vb[v];
        wr_list(out, vb->n, vb->nodes);
        wr_u64(out, vb->epoch);
        wr_u32(out, vb->target);
        wr_u64(out, vb->copy_id);
    }
}

static bool
decode_node(struct rd *r, const struct topo *t, size_t i, struct topo_node *n)
{
    memset(n, 0, sizeof(*n));
    n->num = rd_u32(r);
    rd_str(r, n->id, 1, TOPO_ID_LEN);
    n->raft_id = rd_u64(r);
    rd_str(r, n->ip, 0, TOPO_IP_LEN - 1);
    n->port = rd_u16(r);
    n->resp_port = rd_u16(r);
    n->bus_port = rd_u16(r);
    n->raft_port = rd_u16(r);
    n->flags = rd_u32(r);
    n->join_epoch = rd_u64(r);
    if (r->bad || n->num == 0 || n->num >= t->next_num || n->raft_id == 0 ||
        (n->flags & ~(uint32_t)TOPO_NODE_LEAVING) != 0 || n->join_epoch == 0 ||
        n->join_epoch > t->config_epoch) {
        return false;
    }
    for (size_t j = 0; j < i; j++) {
        const struct topo_node *o = &t->nodes[j];
        if (o->num >= n->num || o->raft_id == n->raft_id || strcmp(o->id, n->id) == 0) {
            return false;
        }
    }
    return true;
}

static bool
decode_vb(struct rd *r, const struct topo *t, struct topo_vb *vb)
{
    struct entry e = { 0 };
    rd_list(r, &e);
    vb->epoch = rd_u64(r);
    vb->target = rd_u32(r);
    vb->copy_id = rd_u64(r);
    if (r->bad || !list_valid(t, e.n, e.nums) || vb->epoch > t->config_epoch ||
        (vb->target == 0) != (vb->copy_id == 0)) {
        return false;
    }
    list_set(vb, e.n, e.nums);
    /* a copy in flight has a source and a known target that is not primary */
    if (vb->target != 0 && (vb->n == 0 || vb->nodes[0] == vb->target ||
                            node_index_by_num(t, vb->target) == SIZE_MAX)) {
        return false;
    }
    return true;
}

static bool
decode_into(struct topo *t, const void *data, size_t len)
{
    struct rd r = { .p = data, .left = len };
    if (rd_u8(&r) != TOPO_ENCODING_VERSION) {
        return false;
    }
    t->nvb = rd_u32(&r);
    t->rf = rd_u32(&r);
    t->vnodes = rd_u32(&r);
    t->config_epoch = rd_u64(&r);
    t->applied = rd_u64(&r);
    t->next_num = rd_u32(&r);
    uint32_t nnodes = rd_u32(&r);
    if (r.bad || t->config_epoch > t->applied || t->next_num == 0 || nnodes > TOPO_MAX_NODES ||
        nnodes >= t->next_num) {
        return false;
    }
    if (t->nvb == 0 ? t->rf != 0 || t->vnodes != 0
                    : !is_pow2(t->nvb) || t->nvb > TOPO_MAX_VB || t->rf == 0 ||
                          t->rf > TOPO_MAX_RF || t->vnodes == 0 ||
                          t->vnodes > TOPO_MAX_VNODES) {
        return false;
    }
    /* refuse a count the input cannot hold before allocating for it */
    if (nnodes > r.left / NODE_MIN_BYTES) {
        return false;
    }
    t->nodes = nnodes ? xmalloc(nnodes * sizeof(*t->nodes)) : NULL;
    for (size_t i = 0; i < nnodes; i++) {
        if (!decode_node(&r, t, i, &t->nodes[i])) {
            return false;
        }
        t->nnodes = i + 1;
    }
    if (t->nvb != 0) {
        if (t->nvb > r.left / VB_MIN_BYTES) {
            return false;
        }
        t->vb = xcalloc(t->nvb, sizeof(*t->vb));
        for (uint32_t v = 0; v < t->nvb; v++) {
            if (!decode_vb(&r, t, &t->vb[v])) {
                return false;
            }
        }
    }
    return !r.bad && r.left == 0;
}

enum topo_result
topo_decode(struct topo *t, const void *data, size_t len)
{
    struct topo tmp;
    topo_init(&tmp);
    if (!decode_into(&tmp, data, len)) {
        topo_deinit(&tmp);
        return TOPO_EINVAL;
    }
    topo_deinit(t);
    *t = tmp;
    return TOPO_OK;
}

/* ---- the leader's plan ---------------------------------------------------- */

int
topo_place_all(const struct topo *t, uint32_t *place, uint8_t *place_n)
{
    if (t->nvb == 0) {
        return -1;
    }
    struct ring_member *m = xmalloc((t->nnodes ? t->nnodes : 1) * sizeof(*m));
    size_t nm = 0;
    for (size_t i = 0; i < t->nnodes; i++) {
        if (!(t->nodes[i].flags & TOPO_NODE_LEAVING)) {
            m[nm].num = t->nodes[i].num;
            m[nm].id = t->nodes[i].id;
            nm++;
        }
    }
    /* With no member left there is nowhere to move the data: keep the lists
     * rather than unassigning every vbucket. */
    int rc = nm == 0 ? -1 : ring_place(m, nm, t->vnodes, t->nvb, t->rf, place, place_n);
    free(m);
    return rc;
}

size_t
topo_plan(const struct topo *t, struct buf *out, size_t max_entries)
{
    if (t->nvb == 0) {
        return 0;
    }
    uint32_t *place = xmalloc((size_t)t->nvb * t->rf * sizeof(*place));
    uint8_t *place_n = xmalloc(t->nvb);
    size_t emitted = 0;
    if (topo_place_all(t, place, place_n) == 0) {
        for (uint32_t v = 0; v < t->nvb; v++) {
            const struct topo_vb *vb = &t->vb[v];
            const uint32_t *want = place + (size_t)v * t->rf;
            if (max_entries != 0 && emitted == max_entries) {
                break;
            }
            if (vb->copy_id != 0 || list_equal(vb, place_n[v], want)) {
                continue;
            }
            topo_entry_vb_set(out, v, vb->epoch, place_n[v], want);
            emitted++;
        }
    }
    free(place_n);
    free(place);
    return emitted;
}

bool
topo_vb_list_equal(const struct topo *t, uint32_t vb, unsigned n, const uint32_t *nums)
{
    return list_equal(&t->vb[vb], n, nums);
}

/* ---- the view ------------------------------------------------------------- */

struct topo_view *
topo_view_build(const struct topo *t, const char *self_id)
{
    struct topo_view *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    /* before TOPO_E_INIT: one unassigned vbucket that every slot maps to */
    uint32_t nvb = t->nvb ? t->nvb : 1, rf = t->rf ? t->rf : 1;
    v->config_epoch = t->config_epoch;
    v->nvb = t->nvb;
    v->rf = t->rf;
    v->slot_shift = (uint32_t)__builtin_ctz(TOPO_SLOTS / nvb);
    v->self = TOPO_VIEW_NONE;
    v->nnodes = (uint16_t)t->nnodes;
    v->nodes = calloc(t->nnodes ? t->nnodes : 1, sizeof(*v->nodes));
    v->vb_n = calloc(nvb, sizeof(*v->vb_n));
    v->vb_nodes = calloc((size_t)nvb * rf, sizeof(*v->vb_nodes));
    v->vb_target = malloc(nvb * sizeof(*v->vb_target));
    if (v->nodes == NULL || v->vb_n == NULL || v->vb_nodes == NULL || v->vb_target == NULL) {
        topo_view_free(v);
        return NULL;
    }
    if (t->nnodes) {
        memcpy(v->nodes, t->nodes, t->nnodes * sizeof(*v->nodes));
    }
    for (size_t i = 0; i < t->nnodes; i++) {
        if (self_id != NULL && strcmp(t->nodes[i].id, self_id) == 0) {
            v->self = (uint16_t)i;
        }
    }
    for (uint32_t b = 0; b < t->nvb; b++) {
        const struct topo_vb *vb = &t->vb[b];
        v->vb_n[b] = vb->n;
        for (unsigned i = 0; i < vb->n; i++) {
            v->vb_nodes[(size_t)b * rf + i] = (uint16_t)node_index_by_num(t, vb->nodes[i]);
        }
        if (vb->n) {
            v->slots_assigned += TOPO_SLOTS / nvb;
        }
    }
    for (uint32_t b = 0; b < nvb; b++) {
        const struct topo_vb *vb = b < t->nvb ? &t->vb[b] : NULL;
        v->vb_target[b] = vb && vb->copy_id ? (uint16_t)node_index_by_num(t, vb->target)
                                            : TOPO_VIEW_NONE;
    }
    return v;
}

void
topo_view_free(struct topo_view *v)
{
    if (v == NULL) {
        return;
    }
    free(v->nodes);
    free(v->vb_n);
    free(v->vb_nodes);
    free(v->vb_target);
    free(v);
}
